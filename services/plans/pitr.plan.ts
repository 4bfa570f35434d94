import { isMap, isScalar } from 'yaml';
import { resolve, type Obj } from './plan.reader.js';
import type { BaseBackupSource, PitrTarget, PlanSource } from './plan.types.js';

/**
 * Point-in-time recovery in a plan (decisions/020): `source: {type: basebackup, path, wal}`
 * and `restore: {driver: postgres, pitr: {target}}`. Kept apart from the parser so the
 * parser only calls in; nothing here reads a file.
 */

export const BASEBACKUP_SOURCE_KEYS = ['type', 'path', 'match', 'wal', 'settle'] as const;

/** An LSN as PostgreSQL prints it: two hex numbers of at most 8 digits. */
const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;
/** A moment with a date, a time and an explicit offset (Z or ±hh:mm): without one the moment is ambiguous. */
const MOMENT = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)$/;

type PathOf = (o: Obj, k: string, what: string) => string | undefined;

export function parseBaseBackupSource(o: Obj, pathOf: PathOf, settleSeconds?: number): BaseBackupSource {
  const path = pathOf(o, 'path', 'the base backup');
  const match = o.str('match');
  if (match?.includes('/')) o.issue('match', '"match" is a pattern on the folder name and must not contain "/"');
  const wal = pathOf(o, 'wal', 'the WAL archive');
  if (path !== undefined && wal !== undefined && path.replace(/\/+$/, '') === wal.replace(/\/+$/, '')) {
    o.issue('wal', '"wal" is the WAL archive folder, not the base backup\'s own folder');
  }
  return { type: 'basebackup', path: path!, wal: wal!, ...(match !== undefined && { match }), ...(settleSeconds !== undefined && { settleSeconds }) };
}

/** A moment as written, checked, and as UTC ISO; undefined when it is not one. */
export function parseMoment(text: string): string | undefined {
  const m = MOMENT.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const off = zone === 'Z' ? 'Z' : zone!.length === 3 ? `${zone}:00` : zone!.includes(':') ? zone! : `${zone!.slice(0, 3)}:${zone!.slice(3)}`;
  const ms = frac ? frac.slice(0, 4).padEnd(4, '0') : '.000';
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${ms}${off}`;
  const t = new Date(iso);
  // the fields must exist as written (no 31 February, no hour 25)
  if (Number.isNaN(t.getTime()) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s ?? 0) > 59) return undefined;
  const check = new Date(`${y}-${mo}-${d}T00:00:00Z`);
  if (check.getUTCDate() !== Number(d)) return undefined;
  return t.toISOString();
}

const TARGET_HELP = '"target" is a moment with its offset (e.g. \'2026-12-05T22:00:00+01:00\'), latest, or {beforeLsn: \'0/3000060\'}';

/** `restore.pitr: {target}`; undefined (with the issue recorded) when it is not valid. */
export function parsePitr(rs: Obj): { target: PitrTarget } | undefined {
  const p = rs.obj('pitr', ['target']);
  if (!p) return undefined;
  if (!p.has('target')) return void p.issue('target', `missing required key "target": ${TARGET_HELP}`);
  const node = resolve(p.ctx, p.entries.get('target')!.node);
  if (isMap(node)) {
    const t = p.obj('target', ['beforeLsn']);
    if (!t) return undefined;
    const lsn = t.str('beforeLsn', true, LSN, '"beforeLsn" is an LSN as PostgreSQL prints it, e.g. 0/3000060');
    return lsn === undefined ? undefined : { target: { kind: 'beforeLsn', lsn: lsn.toUpperCase() } };
  }
  if (!isScalar(node) || typeof node.value !== 'string') return void p.issue('target', TARGET_HELP);
  const text = node.value.trim();
  if (text === 'latest') return { target: { kind: 'latest' } };
  const iso = parseMoment(text);
  if (!iso) {
    const zoneless = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text);
    return void p.issue('target', zoneless ? `"${text}" has no offset; write it with one (+01:00, Z), since a wall time alone is ambiguous` : TARGET_HELP);
  }
  return { target: { kind: 'time', text, iso } };
}

/**
 * The combinations a PITR plan must keep: a base backup is only ever replayed (postgres, with
 * pitr), pitr needs a base backup, and pg_restore's jobs mean nothing for it.
 */
export function checkPitrCombination(rs: Obj | undefined, driver: string | undefined, source: PlanSource | undefined): void {
  if (!rs || !driver) return;
  const base = source?.type === 'basebackup';
  if (base && driver !== 'postgres') rs.issue('driver', `a base backup (source type basebackup) is restored by the postgres driver with "pitr", not by ${driver}`);
  else if (base && !rs.has('pitr')) rs.issue('pitr', 'a base backup (source type basebackup) needs "pitr: {target: ...}": the moment its WAL archive is replayed to (or latest)', rs.line);
  if (rs.has('pitr') && source && !base) rs.issue('pitr', `"pitr" replays a WAL archive onto a base backup: it needs source type basebackup (with "wal"), not ${source.type}`);
  if (rs.has('pitr') && rs.has('jobs')) rs.issue('jobs', '"jobs" is for pg_restore of a dump; a base backup is replayed, not restored by pg_restore');
}
