import { posix } from 'node:path';
import { finding, type Finding } from '../../../services/findings.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import type { QueryFn } from '../../checks/checks.js';
import { classifyRestoreOutput, clean, type ToolOutcome } from './classify.js';
import type { DumpInfo } from './dump-format.js';
import { createPlainScanner, type PlainScan } from './plain-scan.js';
import { SessionUnavailable, sessionRows, warmSessions } from './session.js';

export interface RestoreInput {
  sandbox: Sandbox;
  info: DumpInfo;
  database: string;
  jobs: number;
  plainScan?: PlainScan;
}

export interface RestoreOutcome {
  findings: Finding[];
  /** The data is in the sandbox (the restore tool finished and nothing proves otherwise). */
  restored: boolean;
  tool?: { name: string; exitCode: number | null; stderrLines: number };
  tables?: number;
  nonEmptyTables?: number;
  /** The restore tool's stderr (capped): kept as a prunable evidence attachment, never in findings. */
  log?: string;
  /** The database the data is in (the plan's, or the one a --create dump made). */
  database?: string;
}

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** Where the sandbox's server listens (unix socket only: the sandbox has no network). */
export const SOCKET_DIR = '/tmp';
const CHECK_TIMEOUT_MS = 600_000;

/**
 * Runs SQL as the superuser inside the sandbox, read-only; returns the first column of the first
 * row. Goes through a database session (session.ts); an image that cannot host the session's
 * relay gets one psql exec per query instead.
 */
export function sandboxQuery(sandbox: Sandbox, database: string): QueryFn {
  return async (sql) => {
    const r = await sandboxRows(sandbox, database, sql);
    if (!r.ok) return { ok: false, error: clean(r.error).slice(0, 200) };
    return { ok: true, value: r.value[0]?.[0] ?? null };
  };
}

/** Every row of the first result with rows, values as the server's text (read-only, like sandboxQuery). */
export async function sandboxRows(sandbox: Sandbox, database: string, sql: string, statementTimeoutMs = CHECK_TIMEOUT_MS): Promise<{ ok: true; value: (string | null)[][] } | { ok: false; error: string }> {
  try {
    // error messages can quote row data (e.g. invalid input syntax … "<value>"): callers clean them
    return await sessionRows(sandbox, database, SOCKET_DIR, sql, { statementTimeoutMs });
  } catch (err) {
    if (!(err instanceof SessionUnavailable)) throw err;
  }
  const r = await sandbox.exec(
    ['psql', '-X', '-q', '-A', '-t', '-F', '\x1f', '-P', 'null=\x1e', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', sql],
    { env: [`PGOPTIONS=-c default_transaction_read_only=on -c statement_timeout=${statementTimeoutMs}`], maxOutput: 64 * 1024 * 1024 },
  );
  if (r.exitCode !== 0) {
    // first ERROR line only: DETAIL/CONTEXT lines can quote row data
    const line = r.stderr.split('\n').find((l) => l.includes('ERROR:')) ?? r.stderr.split('\n')[0] ?? '';
    return { ok: false, error: line.replace(/^.*?ERROR:\s*/, '') || `psql exit ${r.exitCode}` };
  }
  if (r.stdoutTruncated) return { ok: false, error: 'the result is larger than 64 MiB' };
  const rows = r.stdout === '' ? [] : r.stdout.replace(/\n$/, '').split('\n').map((l) => l.split('\x1f').map((v) => (v === '\x1e' ? null : v)));
  return { ok: true, value: rows };
}

async function psqlAdmin(sandbox: Sandbox, sql: string, db = 'postgres') {
  return sandbox.exec(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql]);
}

/** Files ernstfall writes for the tools go into the data area: /tmp is a tmpfs, which putArchive cannot reach. */
export const rolesFile = (sandbox: Sandbox) => posix.join(sandbox.dataDir, 'ef-roles.sql');

/**
 * Role names come from the dump: each is only ever a double-quoted identifier (never inside a
 * dollar-quoted block, which a name containing `$$` would end). One statement per line, run by
 * psql without ON_ERROR_STOP, each in its own transaction: a role that already exists (or a
 * name the server refuses) fails alone and the others are still created.
 */
export async function createRoles(sandbox: Sandbox, roles: string[]): Promise<void> {
  const stmts = roles.map((r) => `create role ${ident(r)} nologin;\n`).join('');
  await sandbox.putFile(rolesFile(sandbox), Buffer.from(stmts, 'utf8'), { mode: 0o644 });
  await sandbox.exec(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=0', '-d', 'postgres', '-f', rolesFile(sandbox)]);
}

async function availableExtensions(sandbox: Sandbox): Promise<Set<string>> {
  const r = await sandbox.exec(['psql', '-X', '-A', '-t', '-d', 'postgres', '-c', 'select name from pg_available_extensions']);
  return new Set(r.stdout.split('\n').map((s) => s.trim()).filter(Boolean));
}

export const listFile = (sandbox: Sandbox) => posix.join(sandbox.dataDir, 'ef-restore.list');

/**
 * Archive formats: the TOC names the extensions; entries for missing ones are left out so the rest restores.
 * `pg_restore -l` prints strings from the archive header (database name, versions) as they are, so the
 * list is untrusted text: it goes into the sandbox as a file through the engine (putFile), never through a shell.
 */
export async function archiveList(sandbox: Sandbox, path: string, format: string, missingOut: string[]): Promise<string | undefined> {
  const fmt = format === 'tar' ? 't' : format === 'custom' ? 'c' : 'd';
  const r = await sandbox.exec(['pg_restore', '-l', '-F', fmt, '--', path]);
  if (r.exitCode !== 0) return undefined; // the restore itself will report why
  const have = await availableExtensions(sandbox);
  const lines = r.stdout.split('\n');
  const missing = new Set<string>();
  for (const l of lines) {
    const m = /^\d+;\s+\d+\s+\d+\s+EXTENSION\s+-\s+(\S+)/.exec(l);
    if (m && !have.has(m[1]!)) missing.add(m[1]!);
  }
  if (missing.size === 0) return undefined;
  missingOut.push(...missing);
  const filtered = lines.map((l) => {
    const m = /^\d+;\s+\d+\s+\d+\s+(EXTENSION|COMMENT)\s+-\s+(?:EXTENSION\s+)?(\S+)/.exec(l);
    return m && missing.has(m[2]!) ? `;${l}` : l;
  });
  await sandbox.putFile(listFile(sandbox), Buffer.from(`${filtered.join('\n')}\n`, 'utf8'), { mode: 0o644 });
  return listFile(sandbox);
}

function restoreCommand(info: DumpInfo, path: string, database: string, jobs: number, listFile?: string): { tool: ToolOutcome['tool']; cmd: string[] } {
  const common = ['-d', database, '--no-owner', '--no-privileges', ...(listFile ? ['-L', listFile] : [])];
  switch (info.format) {
    case 'custom':
      return { tool: 'pg_restore', cmd: ['pg_restore', '-F', 'c', ...common, '-j', String(jobs), '--', path] };
    case 'directory':
      return { tool: 'pg_restore', cmd: ['pg_restore', '-F', 'd', ...common, '-j', String(jobs), '--', path] };
    case 'tar': // pg_restore cannot restore a tar archive in parallel
      return { tool: 'pg_restore', cmd: ['pg_restore', '-F', 't', ...common, '--', path] };
    case 'plain':
    case 'plain-gzip':
    case 'plain-zstd': {
      // everything runs as postgres on a read-only root file system, so a dump's \! meta-commands cannot
      // touch the sandbox's programs that the checks rely on; the script is a constant, names come as "$1" "$2"
      const dec = info.format === 'plain-gzip' ? 'gzip -dc --' : info.format === 'plain-zstd' ? 'zstd -dcq --' : 'cat --';
      return {
        tool: 'psql',
        cmd: ['bash', '-o', 'pipefail', '-c',
          `${dec} "$1" | psql -X -q -v ON_ERROR_STOP=1 -o /dev/null -d "$2" -f -`,
          'restore', path, database],
      };
    }
    default:
      throw new Error(`unsupported format ${info.format}`);
  }
}

export async function countTables(sandbox: Sandbox, database: string): Promise<{ tables: number; nonEmpty: number }> {
  const q = sandboxQuery(sandbox, database);
  const list = await sandboxRows(sandbox, database,
    `select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'`);
  const tables = list.ok ? list.value.map((r) => r[0]).filter((t): t is string => !!t) : [];
  let nonEmpty = 0;
  for (let i = 0; i < tables.length; i += 200) {
    const part = tables.slice(i, i + 200).map((t) => `(select count(*) from (select 1 from ${t} limit 1) x)`).join(' + ');
    const r = await q(`select ${part}`);
    if (r.ok) nonEmpty += Number(r.value ?? 0);
  }
  return { tables: tables.length, nonEmpty };
}

/** Restores the dump with PostgreSQL's own tools and classifies what they said. */
export async function restorePostgres(input: RestoreInput): Promise<RestoreOutcome> {
  const { sandbox, info } = input;
  let database = input.database;
  const findings: Finding[] = [];
  if (input.plainScan?.cluster) {
    return { restored: false, findings: [finding('DUMP_UNSUPPORTED', 'this is pg_dumpall output (a whole cluster with roles); restore tests need a single-database dump (pg_dump)')] };
  }
  // pg_dump --create: the dump creates its database and connects to it; psql starts in `postgres` and the checks run in that database
  const created = input.plainScan?.createsDatabase;
  if (created !== undefined) database = created;
  if (database !== 'postgres' && created === undefined) {
    const r = await psqlAdmin(sandbox, `create database ${ident(database)}`);
    if (r.exitCode !== 0) {
      return { restored: false, findings: [finding('SANDBOX_FAILED', `could not create database ${database} in the sandbox`)] };
    }
  }

  let path = sandbox.backupPath;
  if (info.format === 'directory-tar') {
    // unpacked into the data area (bounded), not /tmp; tar reads the archive by its fixed in-sandbox name
    const dir = posix.join(sandbox.dataDir, 'ef-dir');
    const mk = await sandbox.exec(['mkdir', '-p', '--', dir]);
    const r = mk.exitCode === 0 ? await sandbox.exec(['tar', '--no-same-owner', '--no-same-permissions', '-x', '-f', path, '-C', dir, '--']) : mk;
    if (r.exitCode !== 0) {
      const truncated = /unexpected EOF|Unexpected EOF|truncated/i.test(r.stderr);
      return { restored: false, findings: [finding(truncated ? 'ARCHIVE_TRUNCATED' : 'ARCHIVE_UNREADABLE', `tar could not unpack the folder dump: ${r.stderr.split('\n')[0]?.slice(0, 200) ?? ''}`)] };
    }
    path = posix.join(dir, posix.dirname(info.tocPathInTar ?? 'toc.dat'));
    info.format = 'directory';
  }

  let listFile: string | undefined;
  if (info.format.startsWith('plain')) {
    const scan = input.plainScan;
    if (scan) {
      const have = await availableExtensions(sandbox);
      const missing = scan.extensions.filter((e) => !have.has(e));
      if (missing.length) {
        return { restored: false, findings: [finding('EXTENSION_MISSING', `the dump needs extension(s) ${missing.join(', ')}, which the sandbox image lacks; use an image that has them (restore.image)`)] };
      }
      if (scan.roles.length) {
        await createRoles(sandbox, scan.roles);
        findings.push(finding('ROLES_CREATED', `${scan.roles.length} role(s) the dump references were created in the sandbox (without login)`));
      }
    }
  } else {
    // --no-owner/--no-privileges cover owners and grants, not roles named in policies or user mappings:
    // read the archive's schema (no data) and create the roles it names, so they cannot bury real errors
    const fmt = info.format === 'tar' ? 't' : info.format === 'custom' ? 'c' : 'd';
    const schema = await sandbox.exec(['pg_restore', '-s', '-F', fmt, '-f', '-', '--', path], { maxOutput: 32 * 1024 * 1024 });
    if (schema.exitCode === 0) {
      const scanner = createPlainScanner('plain');
      // owners and grants are skipped by --no-owner/--no-privileges: only policies and user mappings need roles
      const needing = schema.stdout.split('\n').filter((l) => /^CREATE (POLICY|USER MAPPING)\b/.test(l)).join('\n');
      await scanner.write(Buffer.from(`${needing}\n`, 'utf8'));
      const roles = (await scanner.end()).roles;
      if (roles.length) {
        await createRoles(sandbox, roles);
        findings.push(finding('ROLES_CREATED', `${roles.length} role(s) the dump references were created in the sandbox (without login)`));
      }
    }
    const missing: string[] = [];
    listFile = await archiveList(sandbox, path, info.format, missing);
    if (missing.length) {
      findings.push(finding('EXTENSION_MISSING', `the dump needs extension(s) ${missing.join(', ')}, which the sandbox image lacks; objects that depend on them cannot be verified`));
    }
  }

  const { tool, cmd } = restoreCommand(info, path, created !== undefined ? 'postgres' : database, input.jobs, listFile);
  const r = await sandbox.exec(cmd);
  const classified = classifyRestoreOutput(
    { tool, exitCode: r.exitCode, stderr: r.stderr },
    { plainComplete: input.plainScan ? input.plainScan.complete && !input.plainScan.decompressError : undefined },
  );
  // a parallel restore that failed may report only the first worker's SQL error while the real cause is a
  // damaged archive: read the whole archive once without a database to tell the two apart
  if (tool === 'pg_restore' && r.exitCode !== 0 && !classified.some((f) => f.code === 'ARCHIVE_TRUNCATED' || f.code === 'ARCHIVE_UNREADABLE')) {
    const fmt = info.format === 'tar' ? 't' : info.format === 'custom' ? 'c' : 'd';
    const scan = await sandbox.exec(['pg_restore', '-F', fmt, '-f', '/dev/null', '--', path]);
    if (scan.exitCode !== 0) {
      const integrity = classifyRestoreOutput({ tool, exitCode: scan.exitCode, stderr: scan.stderr }, {})
        .filter((f) => f.code === 'ARCHIVE_TRUNCATED' || f.code === 'ARCHIVE_UNREADABLE');
      classified.unshift(...integrity);
    }
  }
  findings.push(...classified);
  const toolInfo = { name: tool, exitCode: r.exitCode, stderrLines: r.stderr.split('\n').filter(Boolean).length };
  const log = r.stderr;
  if (classified.some((f) => f.severity === 'error' || f.severity === 'failure')) {
    return { restored: false, findings, tool: toolInfo, log };
  }

  // the checks (the plan's and the built-in ones, side by side) find their sessions open
  const [counts] = await Promise.all([countTables(sandbox, database), warmSessions(sandbox, database, SOCKET_DIR, 2, { statementTimeoutMs: CHECK_TIMEOUT_MS })]);
  if (counts.tables === 0) {
    findings.push(finding('EMPTY_RESTORE', 'the restore produced no tables'));
  } else if (counts.nonEmpty === 0) {
    findings.push(finding('EMPTY_RESTORE', `the restore produced ${counts.tables} table(s), all of them empty`));
  }
  // an empty restore still gets its checks run: they document what is missing
  return { restored: true, findings, tool: toolInfo, tables: counts.tables, nonEmptyTables: counts.nonEmpty, log, database };
}
