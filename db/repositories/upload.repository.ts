import type { Kysely, Transaction } from 'kysely';
import type { DB } from '../schema.js';

type Db = Kysely<DB> | Transaction<DB>;

/**
 * Files people hand in for an open manual test (run_uploads): kept with the
 * run until it ends, then hashed into its record; the rows keep name and hash,
 * the content moves into the record's attachments.
 */
export class UploadRepository {
  constructor(private readonly db: Kysely<DB>) {}

  /** Names and sizes of a run's files (the per-run limits, unique names). */
  existing(tenantId: string, runId: string, trx: Db = this.db) {
    return trx.selectFrom('run_uploads').select(['name', 'size_bytes']).where('tenant_id', '=', tenantId).where('run_id', '=', runId).execute();
  }

  async insert(
    u: { id: string; tenantId: string; runId: string; stepIndex: number; name: string; mediaType: string; sha256: string; content: Buffer; uploadedBy: string; uploadedAt: Date },
    trx: Db = this.db,
  ): Promise<void> {
    await trx.insertInto('run_uploads').values({
      id: u.id, tenant_id: u.tenantId, run_id: u.runId, step_index: u.stepIndex, name: u.name, media_type: u.mediaType, sha256: u.sha256,
      size_bytes: u.content.length, content: u.content, uploaded_by: u.uploadedBy, uploaded_at: u.uploadedAt,
    }).execute();
  }

  /** The files whose content is still here (not yet in a record), in step and upload order. */
  withContent(tenantId: string, runId: string, trx: Db = this.db) {
    return trx.selectFrom('run_uploads').select(['id', 'name', 'content']).where('tenant_id', '=', tenantId).where('run_id', '=', runId)
      .where('content', 'is not', null).orderBy('step_index').orderBy('uploaded_at').orderBy('name').execute();
  }

  /** Ids of the files whose content is still here. */
  idsWithContent(tenantId: string, runId: string, trx: Db = this.db) {
    return trx.selectFrom('run_uploads').select('id').where('tenant_id', '=', tenantId).where('run_id', '=', runId).where('content', 'is not', null).execute();
  }

  /** The contents went into the run's record: the rows keep their names and hashes. */
  async dropContent(tenantId: string, ids: string[], trx: Db = this.db): Promise<void> {
    await trx.updateTable('run_uploads').set({ content: null }).where('tenant_id', '=', tenantId).where('id', 'in', ids).execute();
  }

  byName(tenantId: string, runId: string, name: string, trx: Db = this.db) {
    return trx.selectFrom('run_uploads').select(['name', 'media_type', 'sha256', 'content'])
      .where('tenant_id', '=', tenantId).where('run_id', '=', runId).where('name', '=', name).executeTakeFirst();
  }

  /** The file as the run's record keeps it (content null once its retention pruned it). */
  inRecord(tenantId: string, runId: string, name: string, trx: Db = this.db) {
    return trx.selectFrom('ledger_attachments as a').innerJoin('ledger_records as r', (j) => j.onRef('r.hash', '=', 'a.record_hash').onRef('r.tenant_id', '=', 'a.tenant_id'))
      .select(['a.name', 'a.sha256', 'a.content']).where('a.tenant_id', '=', tenantId).where('r.kind', '=', 'run').where('r.subject_id', '=', runId).where('a.name', '=', name)
      .executeTakeFirst();
  }
}
