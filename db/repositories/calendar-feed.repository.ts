import type { Kysely } from 'kysely';
import type { DB } from '../schema.js';
import type { Clock } from '../../services/clock.js';

const feedColumns = ['id', 'tenant_id', 'name', 'lang', 'created_by', 'created_at', 'revoked_at', 'last_used_at'] as const;

/** A plan as the calendar needs it: its cadence (in the definition) and its schedule state. */
export interface CalendarPlanRow {
  id: string;
  title: string;
  definition: unknown;
  last_slot: Date | null;
  paused_at: Date | null;
  paused_reason: string | null;
}

export class CalendarFeedRepository {
  constructor(private readonly db: Kysely<DB>, private readonly clock: Clock) {}

  async insert(f: { tenantId: string; name: string; lang: 'de' | 'en'; tokenHash: string; createdBy: string }) {
    return this.db.insertInto('calendar_feeds')
      .values({ tenant_id: f.tenantId, name: f.name, lang: f.lang, token_hash: f.tokenHash, created_by: f.createdBy, created_at: this.clock() })
      .returning(feedColumns)
      .executeTakeFirstOrThrow();
  }

  list(tenantId: string) {
    return this.db.selectFrom('calendar_feeds').select(feedColumns).where('tenant_id', '=', tenantId).orderBy('created_at').orderBy('id').execute();
  }

  /** A feed that is not revoked; the token is looked up by its hash only. */
  byHash(hash: string) {
    return this.db.selectFrom('calendar_feeds').select(feedColumns).where('token_hash', '=', hash).where('revoked_at', 'is', null).executeTakeFirst();
  }

  async revoke(tenantId: string, id: string): Promise<boolean> {
    const r = await this.db.updateTable('calendar_feeds').set({ revoked_at: this.clock() })
      .where('tenant_id', '=', tenantId).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async touch(id: string): Promise<void> {
    await this.db.updateTable('calendar_feeds').set({ last_used_at: this.clock() }).where('id', '=', id).execute();
  }

  tenant(tenantId: string) {
    return this.db.selectFrom('tenants').select(['id', 'slug', 'name']).where('id', '=', tenantId).executeTakeFirst();
  }

  /** Every plan of the tenant with its schedule state, in one query. */
  plans(tenantId: string): Promise<CalendarPlanRow[]> {
    return this.db.selectFrom('plans as p')
      .leftJoin('plan_schedules as s', (j) => j.onRef('s.tenant_id', '=', 'p.tenant_id').onRef('s.plan_id', '=', 'p.id'))
      .select(['p.id', 'p.title', 'p.definition', 's.last_slot', 's.paused_at', 's.paused_reason'])
      .where('p.tenant_id', '=', tenantId)
      .orderBy('p.id')
      .execute();
  }
}
