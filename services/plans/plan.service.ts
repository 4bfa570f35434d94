import { readdir, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { DB, PlanRow } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { PlanRepository } from '../../db/repositories/plan.repository.js';
import { Conflict, Invalid, NotFound } from '../errors.js';
import { formatPlanIssues, parsePlanText, planContentHash, redactPlan } from './plan.parser.js';
import { resolvePlanSystem } from '../systems/system.service.js';
import type { PlanIssue, RestorePlan } from './plan.types.js';
import type { AuditActor, AuditService } from '../audit/audit.service.js';
import type { LedgerRecord } from '../evidence/ledger-format.js';
import type { PlanPolicyService } from './plan-policy.js';
import type { Clock } from '../clock.js';

export interface PlanView {
  id: string;
  title: string;
  origin: 'file' | 'api';
  sourceFile: string | null;
  version: string;
  createdAt: string;
  updatedAt: string;
  /** The definition as stored, with canary values redacted. */
  definition: RestorePlan;
}

export function toPlanView(row: PlanRow): PlanView {
  return {
    id: row.id,
    title: row.title,
    origin: row.origin,
    sourceFile: row.source_file,
    version: row.version_hash,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    definition: redactPlan(row.definition as RestorePlan),
  };
}

export class PlanService {
  readonly repo: PlanRepository;
  /** With `audit`, every new version of a plan (API or file) is an audit record committed with it. */
  constructor(
    private readonly db: Kysely<DB>, private readonly repos: Pick<Repositories, 'plans' | 'systems' | 'tenants'>, private readonly log: Logger, private readonly audit: AuditService | undefined,
    /** Business time: created_at/updated_at come from here, never from the database's now(). */
    private readonly clock: Clock,
    /** The operator's policy per tenant (backup roots, images, limits); without it only the plan's shape is checked. */
    private readonly policy?: PlanPolicyService,
  ) {
    this.repo = repos.plans;
  }

  /** 'plan.changed' in the transaction of the write; returns the record to anchor after the commit. */
  private async recordChange(
    trx: Transaction<DB>, tenantId: string, id: string, res: { created: boolean; changed: boolean }, version: string, previous: string | null,
    by: { actor: AuditActor; ip?: string } | undefined,
  ): Promise<LedgerRecord | undefined> {
    if (!this.audit || !by || !res.changed) return undefined;
    return this.audit.record({
      tenantId, action: 'plan.changed', actor: by.actor, ...(by.ip && { ip: by.ip }), subject: { type: 'plan', id },
      details: { version, previousVersion: previous, created: res.created },
    }, trx);
  }

  async get(tenantId: string, id: string): Promise<PlanRow> {
    const row = await this.repo.get(tenantId, id);
    if (!row) throw new NotFound(`plan ${id}`);
    return row;
  }

  list(tenantId: string): Promise<PlanRow[]> {
    return this.repo.list(tenantId);
  }

  /** The plan, or undefined (no 404): for views of a run or an alert whose plan may be gone. */
  find(tenantId: string, id: string): Promise<PlanRow | undefined> {
    return this.repo.get(tenantId, id);
  }

  /** The definition of one stored version of a plan (what a run ran). */
  async version(tenantId: string, planId: string, hash: string): Promise<RestorePlan | undefined> {
    return (await this.repo.getVersion(tenantId, planId, hash)) as RestorePlan | undefined;
  }

  /** PUT over the API: JSON or YAML text, validated where lines are known. `by` (who sends it) makes a new version an audit record. */
  async put(
    tenantId: string, id: string, text: string, contentType: 'yaml' | 'json', by?: { actor: AuditActor; ip?: string },
  ): Promise<{ row: PlanRow; created: boolean; changed: boolean }> {
    const parsed = parsePlanText(text, { contentType, policy: await this.policy?.forTenant(tenantId) });
    if ('issues' in parsed) throw new Invalid('invalid restore plan', parsed.issues);
    if (parsed.plan.id !== id) {
      throw new Invalid('plan id in the body differs from the id in the URL', [{ path: 'id', line: undefined, message: `is "${parsed.plan.id}", URL says "${id}"` }]);
    }
    parsed.plan = await resolvePlanSystem(this.repos.systems, tenantId, parsed.plan);
    const out = await this.db.transaction().execute(async (trx) => {
      // serialises concurrent PUTs of the same (possibly new) plan id
      await this.repo.lockId(tenantId, id, trx);
      const existing = await this.repo.getForUpdate(tenantId, id, trx);
      if (existing?.origin === 'file') {
        throw new Conflict(`plan ${id} is defined by the file ${existing.source_file} and is read-only over the API; change the file instead`, { sourceFile: existing.source_file });
      }
      const versionHash = planContentHash(parsed.plan);
      const res = await this.repo.upsert({
        tenantId, id, title: parsed.plan.title, origin: 'api', sourceFile: null, versionHash, definition: parsed.plan, at: this.clock(),
      }, trx);
      const record = await this.recordChange(trx, tenantId, id, res, versionHash, existing?.version_hash ?? null, by);
      const row = (await this.repo.get(tenantId, id, trx))!;
      return { row, ...res, record };
    });
    if (out.record) this.audit!.anchor(out.record);
    return { row: out.row, created: out.created, changed: out.changed };
  }

  /**
   * Plans as code: every *.yaml / *.yml file in the folder. A file directly in
   * the folder belongs to the default tenant, a file in a sub-folder to the
   * tenant of that slug. Invalid files are reported and skipped, never half-loaded.
   */
  async syncFromDir(dir: string): Promise<{ loaded: string[]; invalid: { file: string; issues: PlanIssue[] }[] }> {
    const loaded: string[] = [];
    const invalid: { file: string; issues: PlanIssue[] }[] = [];
    const tenants = await this.repos.tenants.idsBySlug();
    const files = await listPlanFiles(dir);
    for (const file of files) {
      const rel = relative(dir, file);
      const parts = rel.split('/');
      const tenantSlug = parts.length > 1 ? parts[0]! : 'default';
      const tenantId = tenants.get(tenantSlug);
      if (!tenantId) {
        invalid.push({ file: rel, issues: [{ path: '', message: `no tenant "${tenantSlug}" (the sub-folder names the tenant)` }] });
        continue;
      }
      const parsed = parsePlanText(await readFile(file, 'utf8'), { file: rel, policy: await this.policy?.forTenant(tenantId) });
      if (!('issues' in parsed)) {
        try {
          parsed.plan = await resolvePlanSystem(this.repos.systems, tenantId, parsed.plan);
        } catch (err) {
          const details = (err as { details?: PlanIssue[] }).details;
          if (!details) throw err;
          Object.assign(parsed, { issues: details });
        }
      }
      if ('issues' in parsed) {
        invalid.push({ file: rel, issues: parsed.issues });
        this.log.error({ file: rel, issues: formatPlanIssues(parsed.issues, `restore-plans/${rel}`) }, 'invalid restore plan file skipped');
        continue;
      }
      await this.db.transaction().execute(async (trx) => {
        await this.repo.lockId(tenantId, parsed.plan.id, trx);
        const existing = await this.repo.getForUpdate(tenantId, parsed.plan.id, trx);
        // a renamed file keeps its plan; two files with one id at the same time are refused
        if (existing && existing.origin === 'file' && existing.source_file !== rel && existsSync(join(dir, existing.source_file ?? ''))) {
          throw new Conflict(`plan ${parsed.plan.id} is defined twice: ${existing.source_file} and ${rel}`);
        }
        const versionHash = planContentHash(parsed.plan);
        const res = await this.repo.upsert({
          tenantId, id: parsed.plan.id, title: parsed.plan.title, origin: 'file', sourceFile: rel, versionHash, definition: parsed.plan, at: this.clock(),
        }, trx);
        // the file is the author: an unchanged file on a restart records nothing (upsert says changed only for a new version)
        return this.recordChange(trx, tenantId, parsed.plan.id, res, versionHash, existing?.version_hash ?? null,
          { actor: { kind: 'system', name: `restore-plans/${rel}` } });
      }).then((record) => {
        if (record) this.audit!.anchor(record);
        loaded.push(rel);
      }, (err: Error) => invalid.push({ file: rel, issues: [{ path: 'id', message: err.message }] }));
    }
    // a plan whose file is gone stays (its runs and evidence refer to it) but is reported every start
    for (const row of await this.repo.fromFiles()) {
      if (row.source_file && !existsSync(join(dir, row.source_file))) {
        this.log.warn({ planId: row.id, file: row.source_file }, 'the file of this plan is gone; the plan is kept, still read-only over the API');
      }
    }
    return { loaded, invalid };
  }
}

async function listPlanFiles(dir: string, depth = 0): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.name.startsWith('.')) continue; // e.g. Kubernetes' ..data folders
    // stat follows symlinks (ConfigMap mounts are all symlinks)
    const st = await stat(join(dir, e.name)).catch(() => undefined);
    if (st?.isDirectory() && depth === 0) out.push(...(await listPlanFiles(join(dir, e.name), 1)));
    else if (st?.isFile() && /\.ya?ml$/.test(e.name)) out.push(join(dir, e.name));
  }
  return out;
}
