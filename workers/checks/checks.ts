import { createHash, timingSafeEqual } from 'node:crypto';
import type { PlanCheck } from '../../services/plans/plan.types.js';
import { evaluateExpect } from '../../services/plans/expect.js';

export type CheckStatus = 'passed' | 'failed' | 'error' | 'skipped';

export interface CheckResult {
  name: string;
  kind: PlanCheck['kind'];
  status: CheckStatus;
  expected: string;
  actual: string | null;
  message: string;
  /** `actual` was longer than ACTUAL_MAX characters and is cut: evidence keeps what a check needs, not row data. */
  actualTruncated?: boolean;
}

/**
 * Check results are kept in the signed evidence for ten years: a value from
 * the backup is kept only as far as a comparison needs it (counts, flags,
 * short scalars), never a whole row or document.
 */
export const ACTUAL_MAX = 200;

function cut(value: string | null): { actual: string | null; actualTruncated?: true } {
  if (value === null || [...value].length <= ACTUAL_MAX) return { actual: value };
  return { actual: `${[...value].slice(0, ACTUAL_MAX).join('')}…`, actualTruncated: true };
}

/** One value from the restored database: first column of the first row (null for SQL NULL or no row). */
export type QueryFn = (sql: string) => Promise<{ ok: true; value: string | null } | { ok: false; error: string }>;

export function quoteTable(table: string, dialect: SqlDialect = 'postgres'): string {
  const q = dialect === 'mariadb' ? '`' : '"';
  return table.split('.').map((p) => `${q}${p.split(q).join(q + q)}${q}`).join('.');
}

/** The SQL a database driver speaks, for the checks ernstfall writes itself (tableRows, tableExists). */
export type SqlDialect = 'postgres' | 'mariadb';

function tableExistsSql(table: string, dialect: SqlDialect): string {
  if (dialect === 'postgres') return `select to_regclass('${quoteTable(table).replace(/'/g, "''")}') is not null`;
  // names are letters, digits and _ (the plan parser's rule); compared as strings, never as SQL
  const [schema, name] = table.includes('.') ? table.split('.') : [null, table];
  return `select case when count(*) > 0 then 't' else 'f' end from information_schema.tables where table_schema = ${schema ? `'${schema}'` : 'database()'} and table_name = '${name}'`;
}

function expectedOf(check: PlanCheck): string {
  switch (check.kind) {
    case 'sql': return check.expect.text;
    case 'tableRows': return `>= ${check.min}`;
    case 'tableExists': return 'vorhanden';
    case 'canary': return check.equals !== undefined ? 'Wert (geschwärzt)' : `sha256:${check.equalsSha256!.slice(0, 12)}…`;
    case 'files': return `>= ${check.min}`;
    case 'bytes': return `>= ${check.min}`;
    case 'exists': return check.paths.length === 1 ? 'vorhanden' : `${check.paths.length} vorhanden`;
    case 'manifest': return 'jede Datei mit ihrem Hash';
    case 'sample': return `${check.count} passend`;
    case 'drift': return `höchstens ${check.maxDropPercent} % weniger`;
  }
}

/** Runs one check against the restore; each driver answers the kinds it knows. */
export type CheckRunner = (check: PlanCheck) => Promise<CheckResult>;

/** The base of a result: name, kind and what was expected. */
export function checkBase(check: PlanCheck): Pick<CheckResult, 'name' | 'kind' | 'expected'> {
  return { name: check.name, kind: check.kind, expected: expectedOf(check) };
}

/** Row counts of the tableRows checks of an earlier run, by check name. */
export function lastGoodCounts(checks: unknown[] | undefined): LastGood {
  const m: LastGood = new Map();
  for (const c of (checks ?? []) as Partial<CheckResult>[]) {
    if (c.kind === 'tableRows' && c.status === 'passed' && c.name && c.actual && /^\d+$/.test(c.actual)) m.set(c.name, Number(c.actual));
  }
  return m;
}

export function skippedChecks(checks: PlanCheck[], reason: string): CheckResult[] {
  return checks.map((c) => ({ name: c.name, kind: c.kind, status: 'skipped', expected: expectedOf(c), actual: null, message: reason }));
}

function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** Row counts per check name from the last passed run, for `maxDropVsLastGood`. */
export type LastGood = Map<string, number>;

async function runOne(check: PlanCheck, query: QueryFn, lastGood: LastGood, dialect: SqlDialect): Promise<CheckResult> {
  if (check.kind !== 'sql' && check.kind !== 'tableRows' && check.kind !== 'tableExists' && check.kind !== 'canary') {
    // the plan parser keeps file checks away from database drivers; this is the second line
    return { ...checkBase(check), status: 'error', actual: null, message: `ein ${check.kind}-Check passt nicht zu einer Datenbank` };
  }
  const prev = check.kind === 'tableRows' && check.maxDropPercent !== undefined ? lastGood.get(check.name) : undefined;
  const floor = prev !== undefined && check.kind === 'tableRows' ? Math.ceil(prev * (1 - check.maxDropPercent! / 100)) : undefined;
  const base = {
    name: check.name, kind: check.kind,
    expected: floor !== undefined && check.kind === 'tableRows' ? `>= ${Math.max(check.min, floor)} (höchstens ${check.maxDropPercent}% weniger als zuletzt ${prev})` : expectedOf(check),
  };
  const sql =
    check.kind === 'tableRows' ? `select count(*) from ${quoteTable(check.table, dialect)}`
    : check.kind === 'tableExists' ? tableExistsSql(check.table, dialect)
    : check.sql;
  const r = await query(sql);
  if (!r.ok) {
    // a canary query's error could quote the secret value itself: say only that it failed
    const message = check.kind === 'canary' ? 'Abfrage fehlgeschlagen' : `Abfrage fehlgeschlagen: ${r.error}`;
    return { ...base, status: 'error', actual: null, message };
  }
  switch (check.kind) {
    case 'sql': {
      const ok = evaluateExpect(check.expect, r.value);
      const shown = cut(r.value);
      return { ...base, status: ok ? 'passed' : 'failed', ...shown, message: ok ? 'erfüllt' : `erwartet ${check.expect.text}, erhalten ${shown.actual ?? 'NULL'}` };
    }
    case 'tableRows': {
      const n = Number(r.value);
      if (n < check.min) return { ...base, status: 'failed', actual: String(n), message: `${n} Zeilen, mindestens ${check.min} erwartet` };
      if (floor !== undefined && n < floor) {
        return { ...base, status: 'failed', actual: String(n), message: `${n} Zeilen: mehr als ${check.maxDropPercent}% weniger als beim letzten bestandenen Test (${prev})` };
      }
      return { ...base, status: 'passed', actual: String(n), message: 'erfüllt' };
    }
    case 'tableExists': {
      const ok = r.value === 't';
      return { ...base, status: ok ? 'passed' : 'failed', actual: ok ? 'vorhanden' : 'fehlt', message: ok ? 'erfüllt' : `Tabelle ${check.table} fehlt` };
    }
    case 'canary': {
      // the canary value is compared here and never stored, logged or returned
      const value = r.value;
      const ok = value !== null && (check.equals !== undefined
        ? sameSecret(value, check.equals)
        : sameSecret(createHash('sha256').update(value).digest('hex'), check.equalsSha256!.toLowerCase()));
      return { ...base, status: ok ? 'passed' : 'failed', actual: ok ? 'übereinstimmend' : value === null ? 'kein Wert' : 'abweichend', message: ok ? 'Canary gefunden' : 'Canary stimmt nicht überein' };
    }
  }
}

/** The runner of the SQL checks (sql, tableRows, tableExists, canary) on one query function. */
export function sqlCheckRunner(query: QueryFn, lastGood: LastGood = new Map(), dialect: SqlDialect = 'postgres'): CheckRunner {
  return (check) => runOne(check, query, lastGood, dialect);
}

export async function runChecks(checks: PlanCheck[], runner: CheckRunner, signal?: AbortSignal): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const c of checks) {
    if (signal?.aborted) {
      results.push(...skippedChecks(checks.slice(results.length), 'abgebrochen'));
      break;
    }
    results.push(await runner(c));
  }
  return results;
}
