import { createHash } from 'node:crypto';
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { ExpectError, parseExpect } from './expect.js';
import { canonicalJson } from '../util/canonical-json.js';
import { CronExpressionParser } from 'cron-parser';

function validCron(expr: string): boolean {
  try {
    CronExpressionParser.parse(expr);
    return true;
  } catch {
    return false;
  }
}
import { byLine, keysOf, lineOf, openMap, resolve, suggest, type Ctx, type Obj } from './plan.reader.js';
import { EXERCISE_FORMATS, type BuiltinChecks, type ManualStep, type PlanCheck, type PlanIssue, type PlanNotify, type ProtectionNeed, type RestorePlan } from './plan.types.js';
import { parseRecipient } from '../notify/types.js';
import { parseServices } from './plan-services.js';
import { DRIVER_CHECK_KINDS, DRIVER_NAMES, DRIVER_RESTORE_KEYS, type DriverName } from '../../workers/drivers/plan-parts.js';
import { BASEBACKUP_SOURCE_KEYS, checkPitrCombination, parseBaseBackupSource, parsePitr } from './pitr.plan.js';
import { BYTE_UNITS, DEFAULT_POOL, formatBytes, isInside, parseBytes, POOL_NAME, type SandboxMax } from '../sandbox-policy.js';

/**
 * Restore plans from YAML or JSON (JSON is YAML). Every problem is collected
 * with its path and 1-based line; unknown keys are errors because a typo must
 * never silently disable a check.
 */

export type ParsePlanResult = { plan: RestorePlan; normalized: object } | { issues: PlanIssue[] };

/**
 * The operator's policy as it applies to the tenant storing the plan. Without
 * it the parser checks the plan's own shape only (e.g. `npm run plans:check`).
 */
export interface TenantPlanPolicy {
  tenant: string;
  roots: string[];
  allowedImages: string[];
  max: SandboxMax;
  /** Worker pools a plan may name (sandbox.pool). */
  pools: string[];
}

/** A system's id, as a plan's id. */
export const SYSTEM_ID = /^[a-z0-9][a-z0-9-]{1,62}$/;
const DEFAULT_TZ = 'Europe/Berlin';
const GIB = 1024 ** 3;
const HEX64 = /^[0-9a-fA-F]{64}$/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_$]*$/;
const SHAPES = '{name, sql, expect}, {tableRows: {table, min}}, {tableExists: {table}}, {canary: {sql, equals | equalsSha256}} ' +
  '(databases), {files: {min}}, {bytes: {min}}, {exists: {path}}, {manifest: {file | beside}}, {sample: {count}}, {drift: {maxDrop}} (files)';
const CHECK_KINDS = ['tableRows', 'tableExists', 'canary', 'files', 'bytes', 'exists', 'manifest', 'sample', 'drift'] as const;

/**
 * Paths inside a restored tree: relative, with `/`, no `..`, no empty parts;
 * one or a list. They are compared with what the inventory lists, never
 * handed to a shell.
 */
function relPaths(o: Obj, k: string): string[] | undefined {
  const node = resolve(o.ctx, o.entries.get(k)!.node);
  const items = isScalar(node) ? [node.value] : isSeq(node) ? node.items.map((i) => { const r = resolve(o.ctx, i); return isScalar(r) ? r.value : undefined; }) : [undefined];
  const out: string[] = [];
  for (const v of items) {
    const p = typeof v === 'string' ? v.trim().replace(/^\.\//, '').replace(/\/+$/, '') : '';
    if (!p || p.startsWith('/') || p.split('/').some((x) => x === '' || x === '..' || x === '.') || p.includes('\0')) {
      return void o.issue(k, `"${k}" must be ${isSeq(node) ? 'a list of paths' : 'a path'} inside the backup, relative to its root (like Bauamt/Akten/2026.pdf), without ".." or a leading "/"`);
    }
    out.push(p);
  }
  if (out.length === 0) return void o.issue(k, `"${k}" lists no path`);
  return out;
}

function tableName(o: Obj, k: string): string | undefined {
  const t = o.str(k, true);
  if (t === undefined) return undefined;
  const parts = t.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENT.test(p))) {
    return void o.issue(k, `"${t}" is not a table name; use table or schema.table (letters, digits, _)`);
  }
  return t;
}

function parseCheck(ctx: Ctx, node: unknown, path: string, line: number): PlanCheck | undefined {
  const keys = keysOf(ctx, node);
  const kinds = CHECK_KINDS.filter((k) => keys.includes(k));
  if (kinds.length > 1) {
    ctx.issues.push({ path, line, message: `a check has exactly one of ${kinds.join(', ')}; split it into separate checks` });
    return undefined;
  }
  const kind = kinds[0] ?? (keys.includes('sql') || keys.includes('expect') ? 'sql' : undefined);
  if (!kind) {
    const near = keys.map((k) => suggest(k, ['sql', 'expect', ...CHECK_KINDS])).find(Boolean);
    const message = `a check must be one of ${SHAPES}${near ? ` (did you mean "${near}"?)` : ''}`;
    ctx.issues.push({ path, line: lineOf(ctx, resolve(ctx, node), line), message });
    return undefined;
  }
  const o = openMap(ctx, node, path, line, kind === 'sql' ? ['name', 'sql', 'expect'] : ['name', kind], `a check must be one of ${SHAPES}`);
  if (!o) return undefined;
  const name = o.str('name', kind === 'sql');

  if (kind === 'sql') {
    const sql = o.str('sql', true);
    const raw = o.has('expect') ? resolve(ctx, o.entries.get('expect')!.node) : undefined;
    let expect;
    if (raw === undefined) o.issue('expect', 'missing required key "expect"');
    else if (!isScalar(raw) || (typeof raw.value !== 'string' && typeof raw.value !== 'number')) {
      o.issue('expect', '"expect" must be a comparison like ">= 1000" or a number');
    } else {
      try {
        expect = parseExpect(raw.value);
      } catch (err) {
        if (!(err instanceof ExpectError)) throw err;
        o.issue('expect', err.message);
      }
    }
    return name && sql && expect ? { kind, name, sql, expect } : undefined;
  }
  if (kind === 'tableRows') {
    const b = o.obj('tableRows', ['table', 'min', 'maxDropVsLastGood']);
    if (!b) return undefined;
    const table = tableName(b, 'table');
    const min = b.num('min', { int: true, min: 0 });
    if (!b.has('min')) b.issue('min', 'missing required key "min"');
    let maxDropPercent: number | undefined;
    if (b.has('maxDropVsLastGood')) {
      const t = b.str('maxDropVsLastGood');
      const m = t === undefined ? null : /^(\d+(?:\.\d+)?)\s*%$/.exec(t.trim());
      if (m && Number(m[1]) <= 100) maxDropPercent = Number(m[1]);
      else if (t !== undefined) b.issue('maxDropVsLastGood', `"maxDropVsLastGood" must be a percentage from 0% to 100%, e.g. 5%`);
    }
    if (table === undefined || min === undefined) return undefined;
    const check: PlanCheck = { kind, name: name ?? `Zeilen in ${table} >= ${min}`, table, min };
    return maxDropPercent === undefined ? check : { ...check, maxDropPercent };
  }
  if (kind === 'tableExists') {
    const b = o.obj('tableExists', ['table']);
    const table = b && tableName(b, 'table');
    return table ? { kind, name: name ?? `Tabelle ${table} vorhanden`, table } : undefined;
  }
  if (kind === 'files') {
    const b = o.obj('files', ['min']);
    const min = b?.num('min', { int: true, min: 0 });
    if (b && !b.has('min')) b.issue('min', 'missing required key "min"');
    return min !== undefined ? { kind, name: name ?? `mindestens ${min} Dateien`, min } : undefined;
  }
  if (kind === 'bytes') {
    const b = o.obj('bytes', ['min']);
    if (!b) return undefined;
    if (!b.has('min')) return void b.issue('min', `missing required key "min" (${BYTE_UNITS})`);
    const node = resolve(ctx, b.entries.get('min')!.node);
    const min = isScalar(node) && typeof node.value === 'number' && Number.isInteger(node.value) && node.value >= 0 ? node.value
      : isScalar(node) && typeof node.value === 'string' ? parseBytes(node.value) : NaN;
    if (!Number.isFinite(min)) return void b.issue('min', `"min" must be a size, ${BYTE_UNITS}`);
    return { kind, name: name ?? `mindestens ${formatBytes(min)}`, min };
  }
  if (kind === 'exists') {
    const b = o.obj('exists', ['path']);
    if (!b) return undefined;
    const paths = b.has('path') ? relPaths(b, 'path') : void b.issue('path', 'missing required key "path" (one path or a list)');
    return paths ? { kind, name: name ?? (paths.length === 1 ? `${paths[0]} vorhanden` : `${paths.length} Pfade vorhanden`), paths } : undefined;
  }
  if (kind === 'sample') {
    const b = o.obj('sample', ['count']);
    const count = b?.num('count', { int: true, min: 1, max: 10_000 });
    if (b && !b.has('count')) b.issue('count', 'missing required key "count"');
    return count !== undefined ? { kind, name: name ?? `${count} Stichproben`, count } : undefined;
  }
  if (kind === 'drift') {
    const b = o.obj('drift', ['maxDrop']);
    const t = b?.str('maxDrop', true);
    const m = t === undefined ? null : /^(\d+(?:\.\d+)?)\s*%$/.exec(t.trim());
    if (t !== undefined && !(m && Number(m[1]) <= 100)) return void b!.issue('maxDrop', '"maxDrop" must be a percentage from 0% to 100%, e.g. 10%');
    return m ? { kind, name: name ?? `höchstens ${m[1]} % weniger als zuletzt`, maxDropPercent: Number(m[1]) } : undefined;
  }
  if (kind === 'manifest') {
    const b = o.obj('manifest', ['file', 'beside']);
    if (!b) return undefined;
    if (b.has('file') === b.has('beside')) {
      return void b.issue(b.has('file') ? 'beside' : 'file', 'a manifest needs exactly one of "file" (its path inside the backup) or "beside" (its name next to the backup, e.g. "{name}.sha256")', b.line);
    }
    if (b.has('beside')) {
      const beside = b.str('beside', true);
      if (beside === undefined) return undefined;
      if (!beside || beside.includes('/') || beside.includes('\\') || beside.includes('\0') || beside === '.' || beside === '..' || Buffer.byteLength(beside) > 255) {
        return void b.issue('beside', '"beside" is a file name in the backup\'s own folder (no "/"); "{name}" stands for the backup\'s name');
      }
      return { kind, name: name ?? `Manifest ${beside} neben der Sicherung`, beside };
    }
    const file = relPaths(b, 'file')?.[0];
    return file ? { kind, name: name ?? `Manifest ${file}`, file } : undefined;
  }
  const b = o.obj('canary', ['sql', 'equals', 'equalsSha256']);
  if (!b) return undefined;
  const sql = b.str('sql', true);
  if (b.has('equals') === b.has('equalsSha256')) {
    b.issue('equals', 'a canary needs exactly one of "equals" or "equalsSha256"', b.line);
    return undefined;
  }
  if (b.has('equals')) {
    const equals = b.str('equals');
    // the plain value is never stored: from here on only its SHA-256 exists (compared the same way)
    return sql && equals !== undefined ? { kind, name: name ?? 'Canary', sql, equalsSha256: createHash('sha256').update(equals).digest('hex') } : undefined;
  }
  const sha = b.str('equalsSha256', false, HEX64, '"equalsSha256" must be 64 hex characters (a SHA-256)');
  return sql && sha ? { kind, name: name ?? 'Canary', sql, equalsSha256: sha.toLowerCase() } : undefined;
}

/** A list of recipients (a single one may be written without brackets); duplicates are dropped. */
function recipients(o: Obj, k: string): string[] | undefined {
  if (!o.has(k)) return undefined;
  const node = resolve(o.ctx, o.entries.get(k)!.node);
  if (isScalar(node)) {
    const r = typeof node.value === 'string' ? parseRecipient(node.value) : `"${k}" must be a list of recipients like [mail:it@musterstadt.de]`;
    if (typeof r === 'string') return void o.issue(k, r);
    return [r.raw];
  }
  const out: string[] = [];
  for (const item of o.list(k) ?? []) {
    const n = resolve(o.ctx, item.node);
    const r = isScalar(n) && typeof n.value === 'string' ? parseRecipient(n.value) : 'a recipient must be a text like mail:it@musterstadt.de or webhook:teams-it';
    if (typeof r === 'string') o.ctx.issues.push({ path: item.path, line: item.line, message: r });
    else if (!out.includes(r.raw)) out.push(r.raw);
  }
  return out;
}

function parseNotify(top: Obj): PlanNotify | undefined {
  const o = top.obj('notify', ['failure', 'overdue', 'dueSoon', 'escalate', 'digest', 'language']);
  if (!o) return undefined;
  const failure = recipients(o, 'failure') ?? [];
  const overdue = recipients(o, 'overdue') ?? [];
  const dueSoon = recipients(o, 'dueSoon');
  const digest = recipients(o, 'digest') ?? [];
  const language = o.enumOf('language', ['de', 'en'] as const, 'language');
  const escalate: PlanNotify['escalate'] = [];
  let previous: { seconds: number; path: string } | undefined;
  for (const item of o.list('escalate') ?? []) {
    const step = openMap(o.ctx, item.node, item.path, item.line, ['after', 'to'], 'an escalation step is a mapping {after: P2D, to: [mail:isb@musterstadt.de]}');
    if (!step) continue;
    const after = step.duration('after', true);
    const to = recipients(step, 'to');
    if (!step.has('to')) step.issue('to', 'missing required key "to"');
    else if (to && to.length === 0) step.issue('to', '"to" needs at least one recipient');
    if (after && previous && after.seconds <= previous.seconds) {
      step.issue('after', `"after" must be later than the step before (${previous.path}); steps are counted from when the problem began`);
    }
    if (after) previous = { seconds: after.seconds, path: item.path };
    if (after && to?.length) escalate.push({ after: after.text, to });
  }
  return { failure, overdue, ...(dueSoon && { dueSoon }), escalate, digest, ...(language && { language }) };
}

/** `builtin:` tunes or switches off (`off: <reason>`) the checks every database restore gets. */
function parseBuiltin(top: Obj, driver: DriverName | undefined): BuiltinChecks | undefined {
  const files = driver === 'files';
  const b = top.obj('builtin', files ? ['freshness', 'volume', 'ransomware', 'renames'] : ['freshness', 'sequences', 'schema', 'volume']);
  if (!b) return undefined;
  const out: BuiltinChecks = {};
  const reason = (o: Obj) => {
    const r = o.str('off');
    if (r !== undefined && r.trim().length < 5) o.issue('off', '"off" needs a reason (at least a few words): it is recorded with every run');
    return r?.trim();
  };
  const f = b.obj('freshness', files ? ['off'] : ['table', 'column', 'sql', 'off']);
  if (f) {
    const table = f.str('table');
    const column = f.str('column');
    const sql = f.str('sql')?.trim();
    if ((table === undefined) !== (column === undefined)) f.issue(table === undefined ? 'table' : 'column', '"table" and "column" go together: the column whose newest value is the data\'s age');
    if (sql !== undefined && table !== undefined) f.issue('sql', '"sql" or "table"/"column", not both: one of them names the data\'s age');
    if (sql !== undefined && !/^(select|with)\b/i.test(sql)) f.issue('sql', '"sql" must be one query (select … or with …) that returns the newest date/time');
    const off = reason(f);
    out.freshness = { ...(table !== undefined && { table }), ...(column !== undefined && { column }), ...(sql !== undefined && { sql }), ...(off !== undefined && { off }) };
  }
  for (const k of ['sequences', 'schema'] as const) {
    const o = b.obj(k, ['off']);
    if (o) {
      const off = reason(o);
      out[k] = off !== undefined ? { off } : {};
    }
  }
  const v = b.obj('volume', ['maxDrop', 'off']);
  if (v) {
    const t = v.str('maxDrop');
    const m = t === undefined ? null : /^(\d+(?:\.\d+)?)\s*%$/.exec(t.trim());
    if (t !== undefined && !(m && Number(m[1]) <= 100)) v.issue('maxDrop', '"maxDrop" must be a percentage from 0% to 100%, e.g. 30%');
    const off = reason(v);
    out.volume = { ...(m && { maxDropPercent: Number(m[1]) }), ...(off !== undefined && { off }) };
  }
  const rw = files ? b.obj('ransomware', ['notes', 'extensions', 'encryptedMin', 'off']) : undefined;
  if (rw) {
    const notes = rw.has('notes') ? strings(rw, 'notes') : undefined;
    const extensions = rw.has('extensions') ? strings(rw, 'extensions') : undefined;
    if (extensions?.some((e) => !/^\.?[A-Za-z0-9_-]{1,15}$/.test(e))) rw.issue('extensions', '"extensions" are file name endings like .locked (letters, digits, _ and -)');
    const encryptedMin = rw.num('encryptedMin', { int: true, min: 1 });
    const off = reason(rw);
    out.ransomware = { ...(notes && { notes }), ...(extensions && { extensions }), ...(encryptedMin !== undefined && { encryptedMin }), ...(off !== undefined && { off }) };
  }
  const rn = files ? b.obj('renames', ['maxShare', 'off']) : undefined;
  if (rn) {
    const t = rn.str('maxShare');
    const m = t === undefined ? null : /^(\d+(?:\.\d+)?)\s*%$/.exec(t.trim());
    if (t !== undefined && !(m && Number(m[1]) <= 100)) rn.issue('maxShare', '"maxShare" must be a percentage from 0% to 100%, e.g. 20%');
    const off = reason(rn);
    out.renames = { ...(m && { maxSharePercent: Number(m[1]) }), ...(off !== undefined && { off }) };
  }
  return out;
}

function memoryBytes(o: Obj): number | undefined {
  if (!o.has('memory')) return GIB;
  const s = o.str('memory');
  if (s === undefined) return undefined;
  const bytes = parseBytes(s);
  if (!(bytes >= 64 * 1024 ** 2)) return void o.issue('memory', `"memory" must be at least 64m, ${BYTE_UNITS}`);
  return bytes;
}

const SOURCE_KEYS = {
  file: ['type', 'path', 'match', 'select', 'settle', 'sha256', 'size', 'timezone'],
  restic: ['type', 'repository', 'passwordFile', 'snapshot', 'tags', 'host', 'path', 'readData', 'settle'],
  borg: ['type', 'repository', 'passphraseFile', 'archive', 'match', 'verifyData', 'settle'],
  basebackup: BASEBACKUP_SOURCE_KEYS,
} as const;
const SOURCE_TYPES = Object.keys(SOURCE_KEYS) as (keyof typeof SOURCE_KEYS)[];

/** A path on the worker's disk: absolute inside the tenant's roots, or relative to its first root; never "..". */
function workerPath(o: Obj, k: string, policy: TenantPlanPolicy | undefined, what: string): string | undefined {
  const path = o.str(k, true);
  // relative paths are resolved against the first backup root (ERNSTFALL_BACKUP_ROOTS) when the test runs
  if (path !== undefined && (path === '' || path.split('/').includes('..'))) {
    o.issue(k, `"${k}" must be a path without ".." (absolute, e.g. /srv/backups/ewo, or relative to the first backup root)`);
  }
  if (policy && path !== undefined && path.startsWith('/') && !policy.roots.some((r) => isInside(path, r))) {
    o.issue(k, policy.roots.length
      ? `"${path}" is outside the backup roots of tenant ${policy.tenant} (${policy.roots.join(', ')}); ${what} must be inside them`
      : `"${path}": tenant ${policy.tenant} has no backup roots; the operator assigns them (ERNSTFALL_TENANT_ROOTS_FILE)`);
  }
  return path;
}

function parseSource(top: Obj, policy?: TenantPlanPolicy): RestorePlan['source'] | undefined {
  const node = resolve(top.ctx, top.entries.get('source')?.node);
  const typeNode = isMap(node) ? node.get('type', true) : undefined;
  const named = isScalar(typeNode) && typeof typeNode.value === 'string' ? typeNode.value : 'file';
  // an unknown type is reported once, as such, and not its keys as typos
  const type = (SOURCE_TYPES as string[]).includes(named) ? named as keyof typeof SOURCE_KEYS : undefined;
  const o = top.obj('source', type ? SOURCE_KEYS[type] : keysOf(top.ctx, node), true);
  if (!o) return undefined;
  o.enumOf('type', SOURCE_TYPES, 'source type');
  if (!type) return undefined;
  const settle = o.duration('settle');
  const settleSeconds = settle && { settleSeconds: settle.seconds };
  if (type === 'restic') {
    const repository = workerPath(o, 'repository', policy, 'the repository');
    const passwordFile = workerPath(o, 'passwordFile', policy, 'the password file');
    const snapshot = o.str('snapshot') ?? 'latest';
    if (snapshot !== 'latest' && !/^[0-9a-f]{8,64}$/.test(snapshot)) o.issue('snapshot', '"snapshot" is latest or a snapshot ID (8 to 64 hex digits, as `restic snapshots` shows it)');
    const tags = o.has('tags') ? strings(o, 'tags') : undefined;
    const host = o.str('host');
    const path = o.str('path');
    const readData = o.str('readData');
    if (readData !== undefined && !/^(\d+(\.\d+)?%|\d+\/\d+|\d+[kKmMgGtT]?)$/.test(readData)) {
      o.issue('readData', '"readData" is the share of data packs `restic check` reads: 10%, 2.5%, 1/5 or a size like 500m');
    }
    return {
      type, repository: repository!, passwordFile: passwordFile!, snapshot,
      ...(tags && { tags }), ...(host !== undefined && { host }), ...(path !== undefined && { path }), ...(readData !== undefined && { readData }), ...settleSeconds,
    };
  }
  if (type === 'basebackup') return parseBaseBackupSource(o, (b, k, what) => workerPath(b, k, policy, what), settle?.seconds);
  if (type === 'borg') {
    const repository = workerPath(o, 'repository', policy, 'the repository');
    const passphraseFile = workerPath(o, 'passphraseFile', policy, 'the passphrase file');
    const archive = o.str('archive') ?? 'newest';
    if (archive.startsWith('-') || archive.includes('::') || archive.includes('/')) o.issue('archive', '"archive" is newest or an archive name (no "::", "/" or leading "-")');
    const match = o.str('match');
    if (match !== undefined && archive !== 'newest') o.issue('match', '"match" chooses among archives for archive: newest; a named archive needs none');
    const verifyData = o.bool('verifyData');
    return {
      type, repository: repository!, passphraseFile: passphraseFile!, archive,
      ...(match !== undefined && { match }), ...(verifyData !== undefined && { verifyData }), ...settleSeconds,
    };
  }
  const path = workerPath(o, 'path', policy, 'the backup');
  const match = o.str('match');
  if (match?.includes('/')) o.issue('match', '"match" is a pattern on the file name and must not contain "/"');
  const select = o.enumOf('select', ['newest'] as const, 'select') ?? 'newest';
  const sha256 = o.str('sha256', false, HEX64, '"sha256" must be 64 hex characters');
  const sizeBytes = o.num('size', { int: true, min: 0 });
  const timezone = o.timezone('timezone');
  // Only used when the whole plan is free of issues, so path is set then.
  return {
    type: 'file',
    path: path!,
    ...(match !== undefined && { match }),
    select,
    ...settleSeconds,
    ...(sha256 !== undefined && { sha256: sha256.toLowerCase() }),
    ...(sizeBytes !== undefined && { sizeBytes }),
    ...(timezone !== undefined && { timezone }),
  };
}

/** One string or a list of them, none empty. */
function strings(o: Obj, k: string): string[] | undefined {
  const node = resolve(o.ctx, o.entries.get(k)!.node);
  const items = isSeq(node) ? node.items.map((i) => resolve(o.ctx, i)) : [node];
  const out = items.map((i) => (isScalar(i) && (typeof i.value === 'string' || typeof i.value === 'number') ? String(i.value).trim() : ''));
  if (out.some((x) => !x)) return void o.issue(k, `"${k}" must be a text or a list of texts`);
  return out;
}

/** Deepest nesting of flow collections ([ and {) outside quotes; a plan needs fewer than ten. */
function flowDepth(text: string): { depth: number; line: number } {
  let depth = 0;
  let max = 0;
  let line = 1;
  let maxLine = 1;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\n') line++;
    if (quote) {
      if (ch === quote && text[i - 1] !== '\\') quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else if (ch === '[' || ch === '{') {
      depth++;
      if (depth > max) [max, maxLine] = [depth, line];
    } else if (ch === ']' || ch === '}') depth = Math.max(0, depth - 1);
  }
  return { depth: max, line: maxLine };
}

const MAX_DEPTH = 32;

// JSON is YAML: one parser serves both content types, so positions are reported the same way.
export function parsePlanText(text: string, opts: { file?: string; contentType?: 'yaml' | 'json'; policy?: TenantPlanPolicy } = {}): ParsePlanResult {
  const policy = opts.policy;
  // deeply nested input can exhaust the YAML parser's memory and abort the whole process: refuse it first
  const nesting = flowDepth(text);
  if (nesting.depth > MAX_DEPTH) return { issues: [{ path: '', line: nesting.line, message: `nested more than ${MAX_DEPTH} levels deep; a plan is not` }] };
  if (text.length > 256 * 1024) return { issues: [{ path: '', line: 1, message: 'a plan is at most 256 KiB' }] };
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: true, uniqueKeys: false, prettyErrors: false });
  const ctx: Ctx = { doc, lc, issues: [] };
  for (const e of [...doc.errors, ...doc.warnings]) {
    const message = e.code === 'MULTIPLE_DOCS' ? 'a plan is one YAML document; remove the second "---"' : e.message;
    ctx.issues.push({ path: '', line: lc.linePos(e.pos[0]).line, message: e.name === 'YAMLParseError' ? `YAML syntax error: ${message}` : message });
  }
  // After a syntax error the recovered tree is unreliable; more issues would be noise.
  if (doc.errors.length > 0) return { issues: byLine(ctx.issues) };
  if (doc.contents === null) return { issues: [{ path: '', line: 1, message: 'the plan is empty' }] };

  const top = openMap(ctx, doc.contents, '', 1, ['id', 'title', 'kind', 'system', 'targets', 'cadence', 'source', 'restore', 'sandbox', 'checks', 'controls', 'notify', 'builtin', 'external', 'steps', 'exercise', 'services']);
  if (!top) return { issues: byLine(ctx.issues) };

  const id = top.str('id', true, /^[a-z0-9][a-z0-9-]{1,62}$/, '"id" must be 2 to 63 characters: a-z, 0-9 and "-", not starting with "-"');
  const title = top.str('title', true);

  // a system is named by its id (`system: ewo`, an object of the tenant: PUT /api/v1/systems/{id}) or described in the plan
  const sysEntry = top.entries.get('system');
  const sysIsRef = sysEntry !== undefined && isScalar(resolve(ctx, sysEntry.node));
  const sysRef = sysIsRef ? top.str('system', false, SYSTEM_ID, '"system" is a system\'s id (2 to 63 characters: a-z, 0-9 and "-") or {name, process, protectionNeed}') : undefined;
  const sys = sysIsRef ? undefined : top.obj('system', ['name', 'process', 'protectionNeed']);
  const sysName = sys?.str('name', true);
  const sysProcess = sys?.str('process');
  const need = sys?.enumOf<ProtectionNeed>('protectionNeed', ['normal', 'hoch', 'sehr hoch'], 'protectionNeed');

  const tg = top.obj('targets', ['rto', 'rpo'], true);
  const rto = tg?.duration('rto', true);
  const rpo = tg?.duration('rpo', true);

  const cad = top.obj('cadence', ['schedule', 'timezone', 'requiredEvery', 'grace']);
  const schedule = cad?.str('schedule');
  if (schedule !== undefined && (!/^\S+(\s+\S+){4}$/.test(schedule.trim()) || !validCron(schedule.trim()))) {
    cad!.issue('schedule', `"schedule" must be a valid cron expression with 5 fields (minute hour day month weekday), e.g. "0 2 * * *"`);
  }
  const cadTz = cad?.timezone('timezone');
  const requiredEvery = cad?.duration('requiredEvery');
  const grace = cad?.duration('grace');
  if (grace && !cad!.has('requiredEvery')) cad!.issue('grace', '"grace" only has a meaning together with "requiredEvery"');

  const kind = top.enumOf('kind', ['restore', 'external', 'manual', 'exercise'] as const, 'plan kind');
  const controlsOf = () => {
    const out: string[] = [];
    for (const item of top.list('controls') ?? []) {
      const n = resolve(ctx, item.node);
      if (isScalar(n) && typeof n.value === 'string' && n.value.trim()) out.push(n.value.trim());
      else ctx.issues.push({ path: item.path, line: item.line, message: 'a control must be a text like BSI-CON.3.A15' });
    }
    return out;
  };
  const head = () => ({
    id: id!,
    title: title!,
    ...(sys && { system: { name: sysName!, ...(sysProcess !== undefined && { process: sysProcess }), ...(need && { protectionNeed: need }) } }),
    // filled from the system object when the plan is stored (name, process, protection need as they are then)
    ...(sysRef && { system: { id: sysRef, name: sysRef } }),
    targets: { rtoSeconds: rto!.seconds, rpoSeconds: rpo!.seconds },
    cadence: {
      ...(schedule !== undefined && { schedule: schedule.trim() }),
      timezone: cadTz ?? DEFAULT_TZ,
      ...(requiredEvery && { requiredEvery: requiredEvery.text }),
      ...(grace && { grace: grace.text }),
    },
  });

  if (kind === 'external') {
    // another tool tests; ernstfall records its results: nothing here restores anything
    for (const k of ['source', 'restore', 'sandbox', 'checks', 'builtin', 'services']) {
      if (top.has(k)) top.issue(k, `an external plan has no "${k}": another tool runs the test and reports its result (POST /api/v1/plans/{id}/results)`);
    }
    const ex = top.obj('external', ['tool', 'veeamJob'], true);
    const tool = ex?.str('tool', true);
    const veeamJob = ex?.str('veeamJob');
    if (veeamJob !== undefined && (!veeamJob.trim() || veeamJob.length > 200)) ex!.issue('veeamJob', '"veeamJob" is the name of the SureBackup job as Veeam shows it (1 to 200 characters)');
    const controls = controlsOf();
    const notify = parseNotify(top);
    if (ctx.issues.length > 0) return { issues: byLine(ctx.issues) };
    const plan: RestorePlan = {
      ...head(),
      kind: 'external',
      checks: [],
      controls,
      ...(notify !== undefined && { notify }),
      external: { tool: tool!.trim(), ...(veeamJob !== undefined && { veeamJob: veeamJob.trim() }) },
    };
    return { plan, normalized: JSON.parse(canonicalJson(plan)) as object };
  }
  if (top.has('external')) top.issue('external', '"external" belongs to plans with kind: external');
  if (kind === 'manual') {
    // people restore by a written procedure; ernstfall records each step, its time and result
    for (const k of ['source', 'restore', 'sandbox', 'checks', 'builtin', 'services']) {
      if (top.has(k)) top.issue(k, `a manual plan has no "${k}": people carry out its steps and record them (POST /api/v1/plans/{id}/manual-runs)`);
    }
    const steps: ManualStep[] = [];
    const items = top.list('steps') ?? [];
    if (!top.has('steps')) top.issue('steps', 'missing required key "steps": the manual test\'s steps, in order');
    else if (items.length === 0 || items.length > 100) top.issue('steps', 'a manual test has 1 to 100 steps');
    for (const item of items) {
      const so = openMap(ctx, item.node, item.path, item.line, ['title', 'instructions', 'expected', 'evidenceRequired', 'restoresService']);
      if (!so) continue;
      const stitle = so.str('title', true);
      const instructions = so.str('instructions');
      const expected = so.str('expected');
      const evidenceRequired = so.bool('evidenceRequired');
      const restoresService = so.bool('restoresService');
      if (stitle !== undefined) {
        steps.push({ title: stitle.trim(), ...(instructions !== undefined && { instructions }), ...(expected !== undefined && { expected }),
          ...(evidenceRequired && { evidenceRequired: true }), ...(restoresService && { restoresService: true }) });
      }
    }
    if (steps.filter((x) => x.restoresService).length > 1) top.issue('steps', 'at most one step has "restoresService: true" (the measured RTO ends there; default the last step)');
    const controls = controlsOf();
    const notify = parseNotify(top);
    if (ctx.issues.length > 0) return { issues: byLine(ctx.issues) };
    const plan: RestorePlan = { ...head(), kind: 'manual', checks: [], controls, ...(notify !== undefined && { notify }), steps };
    return { plan, normalized: JSON.parse(canonicalJson(plan)) as object };
  }
  if (top.has('steps')) top.issue('steps', '"steps" belong to plans with kind: manual');
  if (kind === 'exercise') {
    // people rehearse a scenario; ernstfall records participants, observations and the findings that become measures
    for (const k of ['source', 'restore', 'sandbox', 'checks', 'builtin', 'services']) {
      if (top.has(k)) top.issue(k, `an exercise has no "${k}": people rehearse its scenario and record what they observe (POST /api/v1/plans/{id}/exercises)`);
    }
    const ex = top.obj('exercise', ['scenario', 'format', 'roles'], true);
    const scenario = ex?.str('scenario', true);
    if (scenario !== undefined && (!scenario.trim() || scenario.length > 4000)) ex!.issue('scenario', '"scenario" says what is rehearsed (1 to 4000 characters)');
    const format = ex?.enumOf('format', EXERCISE_FORMATS, 'exercise format', true);
    const roles: string[] = [];
    for (const item of ex?.list('roles') ?? []) {
      const n = resolve(ctx, item.node);
      if (isScalar(n) && typeof n.value === 'string' && n.value.trim() && n.value.length <= 100) roles.push(n.value.trim());
      else ctx.issues.push({ path: item.path, line: item.line, message: 'a role is a text of at most 100 characters, e.g. "Krisenstab"' });
    }
    const controls = controlsOf();
    const notify = parseNotify(top);
    if (ctx.issues.length > 0) return { issues: byLine(ctx.issues) };
    const plan: RestorePlan = {
      ...head(), kind: 'exercise', checks: [], controls, ...(notify !== undefined && { notify }),
      exercise: { scenario: scenario!.trim(), format: format!, ...(roles.length && { roles }) },
    };
    return { plan, normalized: JSON.parse(canonicalJson(plan)) as object };
  }
  if (top.has('exercise')) top.issue('exercise', '"exercise" belongs to plans with kind: exercise');

  const source = parseSource(top, policy);

  // the registry of drivers names which keys each adds; unknown keys are errors, as everywhere
  const rs = top.obj('restore', ['driver', 'image', ...new Set(DRIVER_NAMES.flatMap((d) => DRIVER_RESTORE_KEYS[d]))], true);
  const driver = rs?.enumOf('driver', DRIVER_NAMES, 'restore driver', true);
  if (rs && driver) {
    // each driver takes its own keys: a key of another driver is a mistake, not a silent no-op
    const own: readonly string[] = DRIVER_RESTORE_KEYS[driver];
    for (const k of rs.entries.keys()) {
      if (k !== 'driver' && k !== 'image' && !own.includes(k)) {
        rs.issue(k, `"${k}" is not a key of the ${driver} driver${own.length ? ` (it takes ${own.map((x) => `"${x}"`).join(', ')} and "image")` : ' (it takes only "image")'}`);
      }
    }
  }
  checkPitrCombination(rs, driver, source);
  const pitr = driver === 'postgres' && rs?.has('pitr') ? parsePitr(rs) : undefined;
  if (rs && driver && source && source.type !== 'file' && source.type !== 'basebackup' && driver !== 'files') {
    rs.issue('driver', `a ${source.type} repository is restored by the files driver (driver: files), not by ${driver}`);
  }
  const database = driver === 'postgres' || driver === 'mariadb' || driver === undefined
    ? rs?.str('database', driver === 'postgres' || driver === 'mariadb', /^[A-Za-z_][A-Za-z0-9_]{0,62}$/, '"database" must be a name of letters, digits and _ (at most 63), not starting with a digit')
    : undefined;
  const image = rs?.str('image');
  if (policy && image !== undefined && !policy.allowedImages.includes(image)) {
    rs!.issue('image', policy.allowedImages.length
      ? `"${image}" is not among the images the operator allows (ERNSTFALL_SANDBOX_IMAGES: ${policy.allowedImages.join(', ')}); leave "image" out to let the driver choose`
      : `"${image}": the operator allows no images of the plan's choosing (ERNSTFALL_SANDBOX_IMAGES); leave "image" out to let the driver choose`);
  }
  const jobs = rs?.num('jobs', { int: true, min: 1, max: 16 });
  const version = driver === 'mariadb' ? undefined : rs?.num('version', { int: true, min: 9, max: 99 });
  const mariaVersion = driver === 'mariadb' ? rs?.str('version', false, /^\d+\.\d+$/, '"version" is a MariaDB version like 10.11') : undefined;
  if ((version !== undefined || mariaVersion !== undefined) && image !== undefined) rs!.issue('version', '"version" and "image" exclude each other: the image decides the version');

  const sb = top.obj('sandbox', ['network', 'memory', 'cpus', 'pids', 'timeout', 'disk', 'pool']);
  sb?.enumOf('network', ['none'] as const, 'sandbox network');
  const pool = sb?.str('pool', false, POOL_NAME, '"pool" is a pool name: lower-case letters, digits and -, at most 32');
  if (policy && pool !== undefined && POOL_NAME.test(pool) && !policy.pools.includes(pool)) {
    sb!.issue('pool', `"${pool}" is not a worker pool the operator set up (ERNSTFALL_POOLS: ${policy.pools.join(', ')})`);
  }
  const memory = sb ? memoryBytes(sb) : GIB;
  const cpus = sb?.num('cpus', { gt: 0, max: 256 });
  const pids = sb?.num('pids', { int: true, min: 1 });
  const timeout = sb?.duration('timeout');
  const diskText = sb?.str('disk');
  const disk = diskText === undefined ? undefined : parseBytes(diskText);
  if (diskText !== undefined && !(disk! >= 64 * 1024 ** 2)) sb!.issue('disk', `"disk" must be at least 64m, ${BYTE_UNITS}`);
  // beyond a day a sandbox is a leak, not a test (and Node timers overflow past 24.8 days)
  if (timeout && timeout.seconds > 86_400) sb!.issue('timeout', '"timeout" is at most 24h');
  if (policy && sb) {
    const over = (k: string, value: number | undefined, max: number, show: (n: number) => string) => {
      if (value !== undefined && value > max) sb.issue(k, `"${k}" is ${show(value)}, above the operator's limit of ${show(max)}`);
    };
    over('memory', memory, policy.max.memoryBytes, formatBytes);
    over('cpus', cpus, policy.max.cpus, String);
    over('pids', pids, policy.max.pids, String);
    over('timeout', timeout?.seconds, policy.max.timeoutSeconds, (n) => `${n}s`);
    over('disk', disk, policy.max.diskBytes, formatBytes);
  }

  const checks: PlanCheck[] = [];
  const names = new Map<string, string>();
  for (const item of top.list('checks') ?? []) {
    const c = parseCheck(ctx, item.node, item.path, item.line);
    if (!c) continue;
    const kinds: readonly string[] | undefined = driver && DRIVER_CHECK_KINDS[driver];
    if (kinds && !kinds.includes(c.kind)) {
      ctx.issues.push({ path: item.path, line: item.line, message: `a ${c.kind} check does not fit the ${driver} driver; it answers ${kinds.join(', ')} checks` });
      continue;
    }
    const first = names.get(c.name);
    if (first) ctx.issues.push({ path: item.path, line: item.line, message: `check name "${c.name}" is already used by ${first}; names identify checks in evidence` });
    names.set(c.name, item.path);
    checks.push(c);
  }
  const controls = controlsOf();
  const notify = parseNotify(top);
  const builtin = parseBuiltin(top, driver);
  const services = parseServices(top, { allowedImages: policy?.allowedImages, driver, timeoutSeconds: timeout?.seconds ?? 7200 });
  if (services?.length && pitr) {
    // not combined yet: the replay's server listens on no network (docs/decisions/021-application-groups.md)
    rs!.issue('pitr', '"services" and "pitr" are not supported in one plan yet: test the application against a dump restore, and the point in time in a plan of its own');
  }

  if (ctx.issues.length > 0) return { issues: byLine(ctx.issues) };
  const plan: RestorePlan = {
    ...head(),
    source: source!,
    restore: driver === 'files'
      ? { driver, ...(image !== undefined && { image }) }
      : driver === 'mariadb'
        ? { driver, database: database!, ...(image !== undefined && { image }), ...(mariaVersion !== undefined && { version: mariaVersion }) }
        : { driver: 'postgres', database: database!, ...(image !== undefined && { image }), ...(jobs !== undefined && { jobs }), ...(version !== undefined && { version }), ...(pitr && { pitr }) },
    sandbox: { network: 'none', memoryBytes: memory!, cpus: cpus ?? 1, pids: pids ?? 512, timeoutSeconds: timeout?.seconds ?? 7200, ...(disk !== undefined && { diskBytes: disk }), ...(pool !== undefined && pool !== DEFAULT_POOL && { pool }) },
    checks,
    controls,
    ...(notify !== undefined && { notify }),
    ...(builtin !== undefined && { builtin }),
    ...(services !== undefined && { services }),
  };
  return { plan, normalized: JSON.parse(canonicalJson(plan)) as object };
}

/** `file:line path: message`, one line per issue. */
export function formatPlanIssues(issues: PlanIssue[], file?: string): string[] {
  return issues.map((i) => {
    const where = file ? (i.line ? `${file}:${i.line}` : file) : i.line ? `line ${i.line}` : '';
    const head = [where, i.path].filter(Boolean).join(' ');
    return head ? `${head}: ${i.message}` : i.message;
  });
}

/** A deep copy safe to show: canary `equals` values never leave the plan store. */
export function redactPlan(plan: RestorePlan): RestorePlan {
  const copy = structuredClone(plan);
  for (const c of copy.checks) if (c.kind === 'canary' && c.equals !== undefined) c.equals = '[redacted]';
  return copy;
}


/**
 * SHA-256 over the canonical JSON of the validated plan (defaults filled in),
 * so reordering keys or spelling a default out does not make a new version.
 */
export function planContentHash(plan: RestorePlan): string {
  return createHash('sha256').update(canonicalJson(plan)).digest('hex');
}
