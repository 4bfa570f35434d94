import { randomBytes } from 'node:crypto';
import type { Repositories } from '../../db/repositories/index.js';
import { hashToken } from '../auth/token.service.js';
import { Invalid, NotFound } from '../errors.js';
import type { RestorePlan } from '../plans/plan.types.js';
import { loadProgramme } from './programme.js';
import { addDuration } from '../util/calendar.js';
import { nextScheduledAt } from '../scheduling/slots.js';
import { buildIcs, type FeedLang, type IcsPlan } from './ics.js';
import type { Clock } from '../clock.js';

export const FEED_TOKEN_PREFIX = 'efcal_';
/** 'efcal_' + 32 random bytes in base64url (43 characters). */
const FEED_TOKEN_RE = /^efcal_[A-Za-z0-9_-]{43}$/;

export interface CalendarFeedView {
  id: string;
  name: string;
  lang: FeedLang;
  createdAt: string;
  createdBy: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface CreatedFeed {
  id: string;
  name: string;
  lang: FeedLang;
  createdAt: string;
  /** Shown once, like the token in it. */
  url: string;
  token: string;
}

/**
 * iCalendar feeds per tenant. Calendar clients cannot send a bearer token, so
 * the secret is the URL itself: stored only as SHA-256, shown once, revocable.
 */
export class CalendarFeedService {
  private readonly repo: Repositories['calendarFeeds'];
  private readonly statuses: Repositories['planStatus'];
  private readonly reports: Repositories['reports'];
  private readonly publicUrl: string;
  private readonly clock: Clock;

  private readonly horizon: string;
  /** Per plan and kind of occurrence: a nightly schedule over a long horizon stays readable for calendar clients. */
  static readonly MAX_EVENTS_PER_PLAN = 100;

  constructor(repos: Pick<Repositories, 'calendarFeeds' | 'planStatus' | 'reports'>, opts: { publicUrl?: string; clock: Clock; horizon?: string }) {
    this.horizon = opts.horizon ?? 'P90D';
    this.repo = repos.calendarFeeds;
    this.statuses = repos.planStatus;
    this.reports = repos.reports;
    this.publicUrl = (opts.publicUrl ?? '').replace(/\/+$/, '');
    this.clock = opts.clock;
  }

  /** The feed's address: absolute with ERNSTFALL_PUBLIC_URL, else relative to the API's host. */
  feedUrl(token: string): string {
    return `${this.publicUrl}/calendar/${token}.ics`;
  }

  async create(tenantId: string, input: { name: string; lang?: FeedLang }, createdBy: string): Promise<CreatedFeed> {
    const name = input.name.trim();
    if (!name) throw new Invalid('invalid calendar feed', [{ path: 'name', message: 'must not be empty' }]);
    const lang = input.lang ?? 'de';
    const token = `${FEED_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const row = await this.repo.insert({ tenantId, name, lang, tokenHash: hashToken(token), createdBy });
    return { id: row.id, name: row.name, lang: row.lang, createdAt: row.created_at.toISOString(), url: this.feedUrl(token), token };
  }

  async list(tenantId: string): Promise<CalendarFeedView[]> {
    return (await this.repo.list(tenantId)).map((f) => ({
      id: f.id, name: f.name, lang: f.lang, createdAt: f.created_at.toISOString(), createdBy: f.created_by,
      revokedAt: f.revoked_at?.toISOString() ?? null, lastUsedAt: f.last_used_at?.toISOString() ?? null,
    }));
  }

  async revoke(tenantId: string, id: string): Promise<void> {
    if (!(await this.repo.revoke(tenantId, id))) throw new NotFound(`calendar feed ${id}`);
  }

  /**
   * The feed a token opens, or undefined (malformed, unknown or revoked alike).
   * Looked up by the token's hash: the database never compares the secret itself.
   */
  async resolve(token: string) {
    if (!FEED_TOKEN_RE.test(token)) return undefined;
    return this.repo.byHash(hashToken(token));
  }

  /** The .ics for a token, or undefined; records when the feed was last fetched. */
  async render(token: string): Promise<string | undefined> {
    const feed = await this.resolve(token);
    if (!feed) return undefined;
    const now = this.clock();
    const until = addDuration(now, this.horizon, 'Europe/Berlin');
    const [tenant, plans, statuses, programme] = await Promise.all([
      this.repo.tenant(feed.tenant_id), this.repo.plans(feed.tenant_id), this.statuses.statusAll(feed.tenant_id, now),
      loadProgramme(this.reports, feed.tenant_id, now, until, now, CalendarFeedService.MAX_EVENTS_PER_PLAN),
    ]);
    const ahead = new Map(programme.map((p) => [p.planId, p]));
    const byPlan = new Map(statuses.map((s) => [s.planId, s]));
    const items: IcsPlan[] = [];
    for (const p of plans) {
      const st = byPlan.get(p.id);
      if (!st) continue;
      const cadence = (p.definition as Partial<RestorePlan> | null)?.cadence;
      const paused = p.paused_at ? { at: p.paused_at, reason: p.paused_reason ?? '' } : null;
      items.push({
        id: p.id, title: p.title, status: st.status, nextDueAt: st.nextDueAt, lastPassedAt: st.lastPassedAt,
        hasSchedule: Boolean(cadence?.schedule),
        nextScheduledAt: cadence?.schedule && !paused ? nextScheduledAt({ cadence }, p.last_slot, now) : null,
        paused,
        kind: ahead.get(p.id)?.kind ?? 'restore',
        // what lies ahead: scheduled slots and due dates (an overdue one is today's overdue event instead)
        occurrences: [
          // the due date the status counts with, also when it has passed (the plan is overdue)
          ...(st.nextDueAt ? [{ at: st.nextDueAt, type: 'due' as const, projected: false }] : []),
          ...(ahead.get(p.id)?.occurrences ?? [])
            .filter((o): o is typeof o & { type: 'scheduled' | 'due' } => (o.type === 'scheduled' || o.type === 'due') && o.state === 'planned')
            .filter((o) => !(o.type === 'due' && st.nextDueAt && o.at.getTime() === st.nextDueAt.getTime()))
            .map((o) => ({ at: o.at, type: o.type, projected: o.projected })),
        ],
      });
    }
    const ics = buildIcs({
      tenantId: feed.tenant_id, tenantName: tenant?.name ?? '', lang: feed.lang, plans: items, now,
      publicUrl: this.publicUrl || undefined,
    });
    await this.repo.touch(feed.id);
    return ics;
  }
}
