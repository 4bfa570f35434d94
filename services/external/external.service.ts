import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { RunRow } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import { Conflict, Invalid, NotFound } from '../errors.js';
import { finding, type Finding } from '../findings.js';
import type { RestorePlan } from '../plans/plan.types.js';
import type { RunFinisher } from '../runs/run-finisher.js';
import { decideVerdict, measureTargets } from '../runs/verdict.js';
import type { Attachment } from '../evidence/ledger.service.js';
import { parseAwsRestoreValidation, parseBorgCheck, parseResticCheck, parseVeeamSyslog, UnreadableResult, type ExternalStatus, type ParsedResult } from './parsers.js';

export const INGEST_PREFIX = 'efi_';
export const hashIngestToken = (t: string) => createHash('sha256').update(t).digest('hex');

/** What a tool (or a person over the API) reports: the plain shape, or a tool's own words with `format`. */
export interface ResultInput {
  status?: ExternalStatus;
  startedAt?: string;
  finishedAt?: string;
  measuredRtoSeconds?: number;
  backupCreatedAt?: string;
  message?: string;
  details?: Record<string, unknown>;
  externalId?: string;
  /** veeam-syslog: `message` is the raw syslog line; restic-check / borg-check: `output` (+ `exitCode`); aws-restore-validation: `validation`. */
  format?: 'veeam-syslog' | 'restic-check' | 'borg-check' | 'aws-restore-validation';
  output?: string;
  exitCode?: number;
  validation?: unknown;
  attachments?: { name: string; mediaType?: string; contentBase64: string }[];
}

/** Attachments of one result, together (they are stored like tool output, hashed into the record). */
export const MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024;
/** A reported time this far in the future is a wrong clock, not a result. */
const FUTURE_SKEW_MS = 5 * 60_000;

/**
 * Results of restore tests other tools ran become runs like ernstfall's own
 * (origin `external`): the same verdict rules, a signed ledger record in the
 * same transaction, plan status, alerts and reports. What a tool sends is
 * read strictly: a message ernstfall cannot read, or one about another job,
 * is recorded as an `error` run (so it shows and alerts), never as a pass.
 */
export class ExternalResultService {
  private readonly plans: Repositories['plans'];
  private readonly runs: Repositories['runs'];
  constructor(repos: Pick<Repositories, 'plans' | 'runs'>, private readonly finisher: RunFinisher, private readonly clock: () => Date) {
    this.plans = repos.plans;
    this.runs = repos.runs;
  }

  /** 404 before anything else (body validation included) for a plan this tenant does not have. */
  async mustExist(tenantId: string, planId: string): Promise<void> {
    if (!(await this.plans.get(tenantId, planId))) throw new NotFound(`plan ${planId}`);
  }

  async record(tenantId: string, planId: string, input: ResultInput, by: string): Promise<{ run: RunRow; created: boolean }> {
    const plan = await this.plans.get(tenantId, planId);
    if (!plan) throw new NotFound(`plan ${planId}`);
    const def = plan.definition as RestorePlan;
    if (def.kind !== 'external') {
      throw new Conflict(`plan ${planId} is restored by ernstfall itself; results of other tools go to plans with kind: external`);
    }
    const now = this.clock();
    const parsed = readInput(input, def, now);
    const externalId = input.externalId ?? parsed.externalId;
    if (externalId !== undefined) {
      const existing = await this.runs.byExternalId(tenantId, planId, externalId);
      if (existing) return { run: existing, created: false };
    }
    const finishedAt = parsed.finishedAt ?? now;
    const startedAt = parsed.startedAt ?? finishedAt;
    const measured = input.measuredRtoSeconds ?? (parsed.startedAt && parsed.finishedAt ? (parsed.finishedAt.getTime() - parsed.startedAt.getTime()) / 1000 : null);
    const backupCreatedAt = input.backupCreatedAt !== undefined ? date(input.backupCreatedAt, 'backupCreatedAt') : undefined;
    const age = backupCreatedAt ? Math.max(0, (startedAt.getTime() - backupCreatedAt.getTime()) / 1000) : null;
    const targets = measureTargets(def.targets, measured, age);
    const findings: Finding[] = [...parsed.findings];
    if (targets.rto.met === false) findings.push(finding('RTO_EXCEEDED', `the test took ${Math.round(measured!)}s, RTO is ${def.targets.rtoSeconds}s`));
    if (targets.rpo.met === false) findings.push(finding('RPO_EXCEEDED', `backup is ${Math.round(age! / 3600)}h old, RPO is ${Math.round(def.targets.rpoSeconds / 3600)}h`));
    const verdict = decideVerdict({ findings, checks: [], restored: true });
    const attachments = readAttachments(input.attachments);
    const raw = input.format === 'veeam-syslog' ? input.message : input.format === 'restic-check' || input.format === 'borg-check' ? input.output : undefined;
    if (raw) attachments.push({ name: `${input.format}.txt`, content: Buffer.from(raw, 'utf8') });
    const id = randomUUID();
    const row = await this.finisher.recordFinished({
      id, tenant_id: tenantId, plan_id: planId, plan_version_hash: plan.version_hash, status: 'finished',
      trigger: 'external', triggered_by: by, origin: 'external', external_id: externalId ?? null,
    }, {
      verdict, findings, checks: [], phases: [], ...targets,
      restore: {
        tool: def.external?.tool ?? null, ...(input.format && { format: input.format }), message: parsed.message,
        ...(parsed.details && Object.keys(parsed.details).length && { details: parsed.details }),
        ...(backupCreatedAt && { backupCreatedAt: backupCreatedAt.toISOString() }),
      },
      finishedAt,
    }, startedAt, attachments).catch(async (err: unknown) => {
      // the same externalId sent twice at once: the second insert loses the unique index, the first run is the answer
      if ((err as { code?: string }).code === '23505' && externalId !== undefined) {
        const existing = await this.runs.byExternalId(tenantId, planId, externalId);
        if (existing) return existing;
      }
      throw err;
    });
    return { run: row, created: row.id === id };
  }
}

function date(v: string, path: string): Date {
  const d = new Date(v);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}T/.test(v)) throw new Invalid('invalid result', [{ path, message: 'must be an ISO 8601 date-time with a zone, e.g. 2026-12-06T22:10:00+01:00' }]);
  return d;
}

/** The reported result in ernstfall's terms: findings that decide the verdict, times, the tool's words. */
function readInput(input: ResultInput, plan: RestorePlan, now: Date): { findings: Finding[]; message: string; startedAt?: Date; finishedAt?: Date; externalId?: string; details?: Record<string, unknown> } {
  let parsed: ParsedResult;
  if (input.format) {
    try {
      switch (input.format) {
        case 'veeam-syslog':
          if (typeof input.message !== 'string') throw new Invalid('invalid result', [{ path: 'message', message: 'veeam-syslog: "message" is the syslog message as Veeam sent it' }]);
          parsed = parseVeeamSyslog(input.message);
          break;
        case 'restic-check':
        case 'borg-check':
          if (typeof input.output !== 'string') throw new Invalid('invalid result', [{ path: 'output', message: `${input.format}: "output" is what the command printed` }]);
          parsed = input.format === 'restic-check' ? parseResticCheck(input.output, input.exitCode) : parseBorgCheck(input.output, input.exitCode);
          break;
        case 'aws-restore-validation':
          parsed = parseAwsRestoreValidation(input.validation);
          break;
      }
    } catch (err) {
      if (!(err instanceof UnreadableResult)) throw err;
      return { findings: [finding('EXTERNAL_UNREADABLE', `${input.format}: ${err.message}`)], message: err.message, finishedAt: now };
    }
    if (input.format === 'veeam-syslog' && parsed.jobName !== undefined) {
      const want = plan.external?.veeamJob;
      if (want === undefined || want !== parsed.jobName) {
        const reason = want === undefined ? 'the plan names no Veeam job (external.veeamJob)' : `the plan's job is '${want}'`;
        return { findings: [finding('EXTERNAL_UNMAPPED', `the SureBackup event is about job '${parsed.jobName.slice(0, 200)}'; ${reason}`)], message: parsed.message, ...(parsed.finishedAt && { finishedAt: parsed.finishedAt }), details: parsed.details };
      }
    }
  } else {
    if (input.status === undefined) throw new Invalid('invalid result', [{ path: 'status', message: 'send "status" (passed, failed or error), or "format" with the tool\'s own output' }]);
    const startedAt = input.startedAt !== undefined ? date(input.startedAt, 'startedAt') : undefined;
    const finishedAt = input.finishedAt !== undefined ? date(input.finishedAt, 'finishedAt') : undefined;
    parsed = {
      status: input.status,
      message: (input.message ?? '').slice(0, 300) || `reported ${input.status}`,
      ...(startedAt && { startedAt }),
      ...(finishedAt && { finishedAt }),
      details: (input.details ?? {}) as ParsedResult['details'],
    };
  }
  if (parsed.startedAt && parsed.finishedAt && parsed.startedAt > parsed.finishedAt) {
    throw new Invalid('invalid result', [{ path: 'startedAt', message: 'startedAt is after finishedAt' }]);
  }
  for (const [k, d] of [['startedAt', parsed.startedAt], ['finishedAt', parsed.finishedAt]] as const) {
    if (d && d.getTime() > now.getTime() + FUTURE_SKEW_MS) throw new Invalid('invalid result', [{ path: k, message: `${d.toISOString()} is in the future (ernstfall's clock: ${now.toISOString()}); check the reporting host's clock` }]);
  }
  const findings: Finding[] = [];
  if (parsed.status === 'failed') findings.push(finding('EXTERNAL_FAILED', parsed.message));
  else if (parsed.status === 'error') findings.push(finding('EXTERNAL_ERROR', parsed.message));
  else findings.push(finding('EXTERNAL_PASSED', parsed.message));
  return { findings, message: parsed.message, ...(parsed.startedAt && { startedAt: parsed.startedAt }), ...(parsed.finishedAt && { finishedAt: parsed.finishedAt }), ...(parsed.externalId && { externalId: parsed.externalId }), details: parsed.details };
}

function readAttachments(list: ResultInput['attachments']): Attachment[] {
  const out: Attachment[] = [];
  let total = 0;
  for (const [i, a] of (list ?? []).entries()) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$/.test(a.name)) throw new Invalid('invalid result', [{ path: `attachments[${i}].name`, message: 'a file name of letters, digits, ".", "_", "-" and spaces (at most 100)' }]);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(a.contentBase64)) throw new Invalid('invalid result', [{ path: `attachments[${i}].contentBase64`, message: 'must be base64' }]);
    const content = Buffer.from(a.contentBase64, 'base64');
    total += content.length;
    if (total > MAX_ATTACHMENT_BYTES) throw new Invalid('invalid result', [{ path: `attachments[${i}]`, message: `attachments are at most ${MAX_ATTACHMENT_BYTES / 2 ** 20} MiB together` }]);
    out.push({ name: a.name, content });
  }
  return out;
}

/** Per-plan ingest tokens: they report that plan's results and can do nothing else. Shown once, stored as SHA-256. */
export class IngestTokenService {
  constructor(private readonly repos: Pick<Repositories, 'plans' | 'ingestTokens'>, private readonly clock: () => Date) {}

  async create(tenantId: string, planId: string, name: string, createdBy: string) {
    const plan = await this.repos.plans.get(tenantId, planId);
    if (!plan) throw new NotFound(`plan ${planId}`);
    if ((plan.definition as RestorePlan).kind !== 'external') throw new Conflict(`plan ${planId} is restored by ernstfall itself; ingest tokens are for plans with kind: external`);
    const token = `${INGEST_PREFIX}${randomBytes(32).toString('base64url')}`;
    const id = randomUUID();
    const createdAt = this.clock();
    await this.repos.ingestTokens.insert({ id, tenantId, planId, name, tokenHash: hashIngestToken(token), createdBy, createdAt });
    return { id, planId, name, createdAt: createdAt.toISOString(), token };
  }

  async list(tenantId: string, planId: string) {
    if (!(await this.repos.plans.get(tenantId, planId))) throw new NotFound(`plan ${planId}`);
    const rows = await this.repos.ingestTokens.list(tenantId, planId);
    return rows.map((r) => ({
      id: r.id, planId: r.plan_id, name: r.name, createdBy: r.created_by, createdAt: r.created_at.toISOString(),
      revokedAt: r.revoked_at?.toISOString() ?? null, lastUsedAt: r.last_used_at?.toISOString() ?? null,
    }));
  }

  async revoke(tenantId: string, planId: string, id: string): Promise<void> {
    const revoked = /^[0-9a-f-]{36}$/i.test(id) && await this.repos.ingestTokens.revoke(tenantId, planId, id, this.clock());
    if (!revoked) throw new NotFound(`ingest token ${id}`);
  }

  /** The live token a request presents, or nothing. */
  async resolve(presented: string): Promise<{ id: string; tenantId: string; planId: string; name: string } | undefined> {
    if (!presented.startsWith(INGEST_PREFIX)) return undefined;
    const row = await this.repos.ingestTokens.byHash(hashIngestToken(presented));
    if (!row) return undefined;
    void this.repos.ingestTokens.touch(row.id, this.clock()).catch(() => undefined);
    return { id: row.id, tenantId: row.tenant_id, planId: row.plan_id, name: row.name };
  }
}
