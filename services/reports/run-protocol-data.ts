import type { Repositories } from '../../db/repositories/index.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import { parseEnvelope } from '../evidence/ledger-format.js';
import { fingerprintOfKey } from '../evidence/signing-key.js';
import { Conflict, NotFound } from '../errors.js';
import type { Lang, RunProtocolData } from './report.types.js';

/** The Wiederherstellungsprotokoll's data: the run as its signed record says, plus reviews and measures; `now` ("generated at") from the caller's clock. */
export async function buildRunProtocolData(repos: Pick<Repositories, 'runs' | 'tenants' | 'reviews'>, ledger: LedgerService, tenantId: string, runId: string, lang: Lang, now: Date): Promise<RunProtocolData> {
  const run = await repos.runs.get(tenantId, runId);
  if (!run) throw new NotFound(`run ${runId}`);
  const record = (await ledger.repo.bySubject(tenantId, 'run', runId))[0];
  if (!record) throw new Conflict(`run ${runId} has no evidence record yet (status ${run.status})`);
  const env = parseEnvelope(record);
  const payload = env.payload as unknown as { run: RunProtocolData['run'] & { planId: string }; plan: { id?: string; title?: string; version: string; system?: RunProtocolData['plan']['system'] | null; targets?: RunProtocolData['plan']['targets']; controls?: string[] } };
  const tenant = { name: await repos.tenants.name(tenantId) };
  const reviews = await repos.reviews.reviewsForProtocol(tenantId, runId);
  const measures = await repos.reviews.measuresOfRun(tenantId, runId);
  const trusted = ledger.trusted();
  const key = trusted.get(record.keyId);
  return {
    lang,
    generatedAt: now.toISOString(),
    tenant: { name: tenant.name },
    plan: {
      id: payload.plan.id ?? payload.run.planId, title: payload.plan.title ?? payload.run.planId, version: payload.plan.version,
      system: payload.plan.system ?? undefined, targets: payload.plan.targets ?? { rtoSeconds: payload.run.rto?.targetSeconds ?? 0, rpoSeconds: payload.run.rpo?.targetSeconds ?? 0 },
      controls: payload.plan.controls ?? [],
    },
    run: payload.run,
    record: { seq: record.seq, hash: record.hash, prevHash: env.prevHash, signature: record.signature, keyId: record.keyId, createdAt: env.createdAt, retainUntil: env.retainUntil },
    reviews: reviews.map((r) => ({ decision: r.decision, comment: r.comment, reviewer: r.reviewer, at: r.created_at.toISOString(), recordHash: r.record_hash })),
    measures: measures.map((m) => ({ id: m.id, planId: m.plan_id, runId: m.run_id, title: m.title, owner: m.owner, dueDate: m.due_date, status: m.status, closedByRunId: m.closed_by_run_id, closedAt: m.closed_at?.toISOString() ?? null })),
    checkpoint: ledger.newestCheckpoint(tenantId),
    keys: [{ keyId: record.keyId, fingerprint: key ? fingerprintOfKey(key) : 'nicht vertrauenswürdig / not trusted' }],
    attachments: ((env.payload as { attachments?: { name: string; sha256: string; sizeBytes: number }[] }).attachments ?? [])
      .map((a) => ({ name: a.name, sha256: a.sha256, sizeBytes: a.sizeBytes })),
  };
}
