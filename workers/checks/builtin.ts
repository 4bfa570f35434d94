import { finding, type Finding } from '../../services/findings.js';
import type { BuiltinChecks } from '../../services/plans/plan.types.js';

/**
 * What a restored database looks like, in names and numbers only (no row
 * data): stored with every run, compared with the last passed run's.
 */
export interface DbProfile {
  tables: { name: string; rows: number; exact: boolean; columns: string[] }[];
  indexes: string[];
  constraints: string[];
  views: string[];
  functions: string[];
  /** Sequences owned by (or identity of) an integer column: the next value they would give, and the column's maximum. */
  sequences: { name: string; column: string; next: number | null; max: number | null }[];
  /** The newest value of each date/time column (exact for small tables and for columns an index leads with, from the planner's statistics otherwise). */
  freshness: { table: string; column: string; newest: string | null; exact: boolean }[];
}

export const BUILTIN_NAMES = ['freshness', 'sequences', 'schema', 'volume'] as const;
export type BuiltinName = typeof BUILTIN_NAMES[number] | 'ransomware' | 'renames';

/** A database with nothing in it: what the checks see when none of them reads the restore. */
export const EMPTY_PROFILE: DbProfile = { tables: [], indexes: [], constraints: [], views: [], functions: [], sequences: [], freshness: [] };

export interface BuiltinResult {
  name: BuiltinName;
  status: 'passed' | 'failed' | 'warning' | 'info' | 'skipped';
  /** Names and numbers only. */
  actual: string;
  message: string;
}

export const DEFAULT_MAX_DROP_PERCENT = 50;
/** A table this small may lose rows without it meaning much; below it, a drop is not reported. */
const MIN_ROWS_FOR_DROP = 100;
/** Values further in the future than this (valid-until dates, birthdays of the year 9999) are not write times. */
export const FUTURE_SLACK_MS = 86_400_000;

export interface BuiltinInput {
  profile: DbProfile;
  /** The last passed run's profile: the baseline for drift. */
  baseline?: DbProfile;
  config: BuiltinChecks;
  backupCreatedAt: Date;
  rpoSeconds: number;
  /** The answer to the plan's `builtin.freshness.sql`, when it names the data's age by a query. */
  freshnessQuery?: { ok: true; value: string | null } | { ok: false; error: string };
}

const list = (xs: string[], n = 10) => (xs.length > n ? `${xs.slice(0, n).join(', ')} … (+${xs.length - n})` : xs.join(', '));

/**
 * The checks every database restore gets without a line in the plan: data
 * freshness, sequences, schema drift and per-table volume against the last
 * passed run. Each may be switched off in the plan with a reason, which is
 * recorded as `skipped`. Result messages are German like those of the plan's
 * checks (the run page and the protocol label them in the reader's
 * language); findings are English like all findings.
 */
export function evaluateBuiltins(input: BuiltinInput): { results: BuiltinResult[]; findings: Finding[] } {
  const { profile, baseline, config } = input;
  const results: BuiltinResult[] = [];
  const findings: Finding[] = [];
  const off = switchedOff(results);

  // ---- freshness: the data's own age, not only the dump's
  if (!off('freshness', config.freshness?.off)) {
    const dumpTime = input.backupCreatedAt.getTime();
    const q = input.freshnessQuery;
    const named = config.freshness?.table !== undefined || q !== undefined;
    const label = q !== undefined ? 'builtin.freshness.sql' : `${config.freshness?.table}.${config.freshness?.column}`;
    const observed = q !== undefined
      ? (q.ok && q.value !== null ? [{ table: 'builtin.freshness', column: 'sql', newest: q.value }] : [])
      : profile.freshness.filter((f) => f.newest !== null && (!named || (f.table === config.freshness!.table && f.column === config.freshness!.column)));
    const candidates = observed.map((f) => ({ ...f, t: parseDbTime(f.newest!) }))
      .filter((f) => Number.isFinite(f.t) && f.t <= dumpTime + FUTURE_SLACK_MS);
    if (q !== undefined && !q.ok) {
      results.push({ name: 'freshness', status: 'failed', actual: 'Abfragefehler', message: `die Abfrage des Plans (builtin.freshness.sql) schlug fehl: ${q.error.slice(0, 200)}` });
      findings.push(finding('CHECK_ERROR', `the plan's freshness query (builtin.freshness.sql) could not be evaluated: ${q.error.slice(0, 200)}`));
    } else if (named && candidates.length === 0) {
      const got = q?.ok && q.value !== null ? `"${q.value.slice(0, 40)}" is not a date/time` : 'it has no values';
      results.push({ name: 'freshness', status: 'failed', actual: 'keine Werte', message: `${label} liefert keinen Datums-/Zeitwert` });
      findings.push(finding('DATA_STALE', `the freshness ${q !== undefined ? 'query' : 'column'} ${label} named by the plan gives no date/time: ${got}`));
    } else if (candidates.length === 0) {
      results.push({ name: 'freshness', status: 'info', actual: 'keine Zeitspalte', message: 'keine Datums-/Zeitspalte mit Werten: das Alter der Daten selbst ist nicht bestimmbar' });
      findings.push(finding('DATA_FRESHNESS_UNKNOWN', 'no date or time column with values in the restored database: the data\'s own age cannot be told (name one with builtin.freshness)'));
    } else {
      const newest = candidates.reduce((a, b) => (b.t > a.t ? b : a));
      const ageSeconds = Math.max(0, Math.round((dumpTime - newest.t) / 1000));
      const actual = `${newest.table}.${newest.column} = ${new Date(newest.t).toISOString()} (${Math.round(ageSeconds / 3600)} h vor dem Dump)`;
      if (ageSeconds > input.rpoSeconds) {
        // detected by ernstfall: a warning (an application may simply write rarely); named in the plan: a failure
        const code = named ? 'DATA_STALE' : 'DATA_STALE_SUSPECTED';
        results.push({ name: 'freshness', status: named ? 'failed' : 'warning', actual, message: `die neuesten Daten sind älter als das RPO von ${Math.round(input.rpoSeconds / 3600)} h` });
        findings.push(finding(code, `the newest value in the restored data (${actual}) is older than the RPO (${Math.round(input.rpoSeconds / 3600)} h), though the dump is newer: was the source still being written?`));
      } else {
        results.push({ name: 'freshness', status: 'passed', actual, message: 'die Daten sind so aktuell, wie das RPO verlangt' });
      }
    }
  }

  // ---- sequences: the first insert after a switch-over must not collide
  if (!off('sequences', config.sequences?.off)) {
    const behind = profile.sequences.filter((s) => s.next !== null && s.max !== null && s.next <= s.max);
    if (behind.length) {
      const what = behind.map((s) => `${s.name} next ${s.next} <= max(${s.column}) ${s.max} (gap ${s.max! - s.next! + 1})`);
      results.push({ name: 'sequences', status: 'failed', actual: `${behind.length} von ${profile.sequences.length} zurück`, message: list(what, 5) });
      findings.push(finding('SEQUENCE_BEHIND', `${behind.length} sequence(s) stand at or below the highest value of their column; the next insert would collide: ${list(what, 5)}`));
    } else {
      results.push({ name: 'sequences', status: 'passed', actual: `${profile.sequences.length} Sequenz(en)`, message: 'jede Sequenz steht über dem höchsten Wert ihrer Spalte' });
    }
  }

  // ---- schema drift against the last passed run: lost objects fail, new ones are listed
  if (!off('schema', config.schema?.off)) {
    if (!baseline) {
      results.push({ name: 'schema', status: 'info', actual: summary(profile), message: 'erstes Profil dieses Plans: als Basis gespeichert' });
    } else {
      const lost: string[] = [];
      const added: string[] = [];
      for (const [kind, a, b] of objectSets(baseline, profile)) {
        for (const x of a) if (!b.has(x)) lost.push(`${kind} ${x}`);
        for (const x of b) if (!a.has(x)) added.push(`${kind} ${x}`);
      }
      if (lost.length) {
        results.push({ name: 'schema', status: 'failed', actual: `${lost.length} fehlen, ${added.length} neu`, message: list(lost) });
        findings.push(finding('SCHEMA_DRIFT', `${lost.length} object(s) of the last passed run are missing: ${list(lost)}`));
      } else {
        results.push({ name: 'schema', status: 'passed', actual: `${added.length} neu`, message: 'nichts aus dem letzten bestandenen Test fehlt' });
      }
      if (added.length) findings.push(finding('SCHEMA_ADDED', `${added.length} object(s) are new since the last passed run: ${list(added)}`));
    }
  }

  // ---- volume: every table, not only those a plan names
  if (!off('volume', config.volume?.off)) {
    const maxDrop = config.volume?.maxDropPercent ?? DEFAULT_MAX_DROP_PERCENT;
    if (!baseline) {
      results.push({ name: 'volume', status: 'info', actual: `${profile.tables.length} Tabelle(n)`, message: 'erstes Profil dieses Plans: Zeilenzahlen als Basis gespeichert' });
    } else {
      const now = new Map(profile.tables.map((t) => [t.name, t.rows]));
      const dropped = baseline.tables
        .filter((t) => t.rows >= MIN_ROWS_FOR_DROP && now.has(t.name))
        .map((t) => ({ name: t.name, before: t.rows, after: now.get(t.name)! }))
        .filter((t) => t.after < t.before * (1 - maxDrop / 100));
      if (dropped.length) {
        const what = dropped.map((t) => `${t.name} ${t.before} -> ${t.after}`);
        results.push({ name: 'volume', status: 'failed', actual: `${dropped.length} Tabelle(n)`, message: list(what) });
        findings.push(finding('VOLUME_DROP', `${dropped.length} table(s) lost more than ${maxDrop} % of their rows since the last passed run: ${list(what)}`));
      } else {
        results.push({ name: 'volume', status: 'passed', actual: `${profile.tables.length} Tabelle(n)`, message: `keine Tabelle hat mehr als ${maxDrop} % ihrer Zeilen verloren` });
      }
    }
  }
  return { results, findings };
}

/**
 * A date/time as a database prints it: ISO 8601, or PostgreSQL's and
 * MariaDB's `2026-12-05 22:00:00.123+01` (zone as ±HH, ±HH:MM or none = UTC),
 * or a date alone. NaN when it is none of these.
 */
export function parseDbTime(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}(?::?\d{2})?)?)?$/.exec(text.trim());
  if (!m) return NaN;
  if (!m[2]) return Date.parse(`${m[1]}T00:00:00Z`);
  const zone = !m[3] || m[3] === 'Z' ? 'Z' : m[3].length === 3 ? `${m[3]}:00` : m[3].includes(':') ? m[3] : `${m[3].slice(0, 3)}:${m[3].slice(3)}`;
  return Date.parse(`${m[1]}T${m[2]}${zone}`);
}

/**
 * For a list of results: `off(name, reason)` records a check the plan
 * switched off (with its reason, as `skipped`) and says whether it was.
 */
export function switchedOff(results: BuiltinResult[]): (name: BuiltinName, reason: string | undefined) => boolean {
  return (name, reason) => {
    if (reason === undefined) return false;
    results.push({ name, status: 'skipped', actual: '', message: `abgeschaltet: ${reason}` });
    return true;
  };
}

function summary(p: DbProfile): string {
  return `${p.tables.length} Tabellen, ${p.indexes.length} Indizes, ${p.constraints.length} Constraints, ${p.views.length} Views, ${p.functions.length} Funktionen`;
}

function objectSets(a: DbProfile, b: DbProfile): [string, Set<string>, Set<string>][] {
  const cols = (p: DbProfile) => new Set(p.tables.flatMap((t) => t.columns.map((c) => `${t.name}.${c}`)));
  return [
    ['table', new Set(a.tables.map((t) => t.name)), new Set(b.tables.map((t) => t.name))],
    ['column', cols(a), cols(b)],
    ['index', new Set(a.indexes), new Set(b.indexes)],
    ['constraint', new Set(a.constraints), new Set(b.constraints)],
    ['view', new Set(a.views), new Set(b.views)],
    ['function', new Set(a.functions), new Set(b.functions)],
  ];
}
