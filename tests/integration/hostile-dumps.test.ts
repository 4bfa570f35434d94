/**
 * Backups are untrusted input: a hostile (or merely odd) dump must not run commands in the
 * sandbox's shell, break the SQL the driver writes around names it took from the dump, or
 * be read as an option by a tool. Archives are made by the host's pg_dump and then altered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../../services/logger.js';
import { archiveList, createRoles, listFile, sandboxQuery } from '../../workers/drivers/postgres/postgres.driver.js';
import { postgresDriver, waitForPostgres } from '../../workers/drivers/postgres/index.js';
import { createSandbox, type Sandbox } from '../../workers/sandbox/sandbox.js';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { readHeaderString, replaceHeaderString } from '../fixtures/archive-header.js';
import { asPostgres, dropHostDatabase, dumpHost, hostPsql, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';

// an extension the host has and no sandbox image has: the driver then writes a TOC list file
const EXT = 'ef_hostile_ext';
const EXT_DIR = '/usr/share/postgresql/15/extension';
const EXT_FILES = [join(EXT_DIR, `${EXT}.control`), join(EXT_DIR, `${EXT}--1.0.sql`)];
const EXT_DB = 'ef_rt_hostile_ext';
const ROLES_DB = 'ef_rt_hostile_roles';
const PLAIN_DB = 'ef_rt_hostile_plain';
const ROWS = 500;
// role names that end a dollar quote, an identifier and a literal if they are pasted into SQL unquoted
const ROLES = ['ef$$hostile', 'ef"hostile', "ef'hostile"];
// The remote server version string ("Dumped from database version …") is printed by `pg_restore -l`
// as it is, newlines included. This one ends the old heredoc (EF_EOF) and then runs a command that
// leaves a mark and stalls; the SQL block comment around it keeps the header comment that pg_restore
// also sends to the server valid SQL, so only a shell would ever execute it.
const MARK = '/tmp/ef-pwned';
const INJECTED = `15.18\n/*\nEF_EOF\n:>${MARK}; sleep 30 # */`;

const identSql = (s: string) => `"${s.replace(/"/g, '""')}"`;
const literalSql = (s: string) => `'${s.replace(/'/g, "''")}'`;
const codes = (run: { findings: { code: string }[] }) => run.findings.map((f) => f.code);

let h: Harness;
let dir: string;
let hostile: string;

beforeAll(async () => {
  dir = await makeTempDir('ef-hostile-');
  await writeFile(EXT_FILES[0]!, "default_version = '1.0'\nrelocatable = true\ncomment = 'ernstfall test fixture'\n");
  await writeFile(EXT_FILES[1]!, "CREATE FUNCTION ef_hostile_fn() RETURNS int LANGUAGE sql AS 'select 7';\n");
  await makeHostDatabase(EXT_DB, { rows: ROWS });
  await hostPsql(`create extension ${EXT}`, EXT_DB);
  // written through a pipe: the archive then has no absolute data offsets, so a header string of
  // another length still leaves a valid archive (pg_restore finds the data blocks by reading on)
  const piped = join(dir, 'piped.dump');
  const r = await asPostgres('bash', ['-o', 'pipefail', '-c', 'pg_dump -Fc -- "$1" | cat > "$2"', 'dump', EXT_DB, piped]);
  if (r.code !== 0) throw new Error(`pg_dump failed: ${r.stderr}`);
  const original = await readFile(piped);
  expect(readHeaderString(original, 'serverVersion')).toMatch(/^15\./);
  hostile = join(dir, 'hostile.dump');
  await writeFile(hostile, replaceHeaderString(original, 'serverVersion', INJECTED));
  expect(readHeaderString(await readFile(hostile), 'serverVersion')).toBe(INJECTED);

  // roles are cluster-global and never dropped (as in host-dumps.ts); a named dollar quote, since the names contain $$
  for (const role of ROLES) {
    await hostPsql(`do $ef$ begin create role ${identSql(role)} nologin; exception when duplicate_object or unique_violation then null; end $ef$`);
  }
  await makeHostDatabase(ROLES_DB, { rows: ROWS });
  await hostPsql(`alter table einwohner enable row level security;
    create policy nur_lesen on einwohner for select to ${ROLES.map(identSql).join(', ')} using (true);
    grant select on meldung to ${ROLES.map(identSql).join(', ')}`, ROLES_DB);
  await dumpHost(ROLES_DB, 'custom', join(dir, 'roles.dump'));
  await dumpHost(ROLES_DB, 'plain', join(dir, 'roles.sql'));
  await makeHostDatabase(PLAIN_DB, { rows: ROWS });
  h = await startHarness({ backupRoot: dir });
});

afterAll(async () => {
  await h?.close();
  await dropHostDatabase(EXT_DB).catch(() => undefined);
  await dropHostDatabase(ROLES_DB).catch(() => undefined);
  await dropHostDatabase(PLAIN_DB).catch(() => undefined);
  for (const f of EXT_FILES) await rm(f, { force: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function runPlan(id: string, path: string, over: Record<string, unknown> = {}) {
  await h.putPlan(pgPlan(id, path, over));
  const run = await h.waitForRun(await h.trigger(id));
  expect(await h.sandboxesLeft()).toBe(0);
  return run;
}

/** A sandbox as the worker starts one (the postgres driver's recipe, the backup copied in), for calling driver functions directly. */
async function withSandbox<T>(backup: string, fn: (s: Sandbox) => Promise<T>): Promise<T> {
  const image = 'ernstfall/sandbox-postgres:15';
  const imageId = (await h.c.docker.getImage(image).inspect()).Id;
  const sandbox = await createSandbox(h.c.docker, {
    image, runId: `unit-${randomBytes(4).toString('hex')}`, planId: 'hostile-unit', tenantId: 'hostile-unit',
    instance: `${h.config.instance}-unit`, memoryBytes: 512 * 2 ** 20, cpus: 1, pids: 256,
    recipe: postgresDriver.sandbox({ plan: {}, inspection: {} } as never), transfer: 'copy', backupPath: backup, backupIsDirectory: false,
  }, imageId, createLogger('silent'));
  try {
    await sandbox.copyBackup({ path: backup, realPath: backup, isDirectory: false, mtime: new Date() }, new AbortController().signal);
    await sandbox.start();
    await waitForPostgres(sandbox, 120_000);
    return await fn(sandbox);
  } finally {
    await sandbox.destroy();
  }
}

describe('a header string that ends the old heredoc and runs shell commands', () => {
  it('is stored verbatim as data in the list file; nothing is executed', async () => {
    await withSandbox(hostile, async (sandbox) => {
      const missing: string[] = [];
      const started = Date.now();
      const list = await archiveList(sandbox, sandbox.backupPath, 'custom', missing);
      const took = Date.now() - started;
      expect(list).toBe(listFile(sandbox));
      expect(missing).toEqual([EXT]);
      // the injected command would have left its mark and slept 30 s
      expect((await sandbox.exec(['test', '-e', MARK])).exitCode, `${MARK} exists: the header was run by a shell`).toBe(1);
      expect(took).toBeLessThan(20_000);
      const cat = await sandbox.exec(['cat', '--', listFile(sandbox)]);
      expect(cat.exitCode).toBe(0);
      const lines = cat.stdout.split('\n');
      // the hostile lines are in the file exactly as pg_restore printed them
      expect(lines).toEqual(expect.arrayContaining(['EF_EOF', `:>${MARK}; sleep 30 # */`, '/*']));
      expect(cat.stdout).toContain(`Dumped from database version: ${INJECTED}\n`);
      // the missing extension is commented out, everything else is still listed
      expect(lines.some((l) => new RegExp(`^;\\d+;.*EXTENSION - ${EXT}\\b`).test(l))).toBe(true);
      expect(lines.some((l) => /^\d+;.* TABLE DATA public einwohner /.test(l))).toBe(true);
      const stat = await sandbox.exec(['stat', '-c', '%a %u', listFile(sandbox)]);
      // written by ernstfall (root-owned), readable by the tools, not changeable by anything in the sandbox
      expect(stat.stdout.trim()).toBe('644 0');
    });
  });

  it('a whole run: EXTENSION_MISSING, the data restored, no stall from the injected sleep', async () => {
    const run = await runPlan('hostile-header', hostile, { checks: [{ name: 'Einwohner', sql: 'select count(*) from einwohner', expect: `== ${ROWS}` }] });
    const restore = run.phases.find((p: { name: string }) => p.name === 'restore');
    expect(restore.status).toBe('ok');
    expect(restore.durationMs).toBeLessThan(20_000);
    // the restore tool read the archive and the list: only the extension is missing
    expect(codes(run), JSON.stringify(run.findings)).toContain('EXTENSION_MISSING');
    expect(run.findings.find((f: { code: string }) => f.code === 'EXTENSION_MISSING').message).toContain(EXT);
    expect(codes(run)).not.toEqual(expect.arrayContaining(['ARCHIVE_UNREADABLE']));
    expect(codes(run)).not.toContain('RESTORE_ERROR');
    expect(codes(run)).not.toContain('EMPTY_RESTORE');
    expect(run.verdict).toBe('error'); // EXTENSION_MISSING, as for any archive needing a missing extension
    expect(run.checks[0]).toMatchObject({ status: 'passed', actual: String(ROWS) });
  });
});

describe('role names with $$, " and \' that the dump references', () => {
  it('createRoles creates each of them, also when some already exist', async () => {
    await withSandbox(hostile, async (sandbox) => {
      await createRoles(sandbox, [ROLES[0]!]);
      await createRoles(sandbox, [...ROLES, 'ef_plain_role']);
      const q = sandboxQuery(sandbox, 'postgres');
      const r = await q(`select count(*) from pg_roles where rolname in (${[...ROLES, 'ef_plain_role'].map(literalSql).join(', ')}) and not rolcanlogin`);
      expect(r).toEqual({ ok: true, value: '4' });
    });
  });

  it.each(['roles.dump', 'roles.sql'])('%s restores and passes: the roles are created, no SQL error from quoting', async (file) => {
    const run = await runPlan(`roles-${file.replace('.', '-')}`, file, {
      checks: [
        { name: 'Einwohner', sql: 'select count(*) from einwohner', expect: `== ${ROWS}` },
        { name: 'Policy', sql: "select count(*) from pg_policies where policyname = 'nur_lesen' and cardinality(roles) = 3", expect: '== 1' },
        { name: 'Rollen', sql: `select count(*) from pg_roles where rolname in (${ROLES.map(literalSql).join(', ')})`, expect: '== 3' },
      ],
    });
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(codes(run)).toContain('ROLES_CREATED');
    expect(codes(run)).not.toContain('RESTORE_ERROR');
  });
});

// The sandbox sees the backup as /backup/<name> (absolute), and pg_restore is given it after "--":
// a name starting with "-" must never be taken for an option (-L, --list, --help, …).
describe('backup names that look like options', () => {
  it.each([
    ['-rf.dump', 'custom'],
    ['--help.dump', 'custom'],
    ['-L.tar', 'tar'],
    ['--version.sql', 'plain'],
    ['-n.sql.gz', 'plain-gzip'],
    ['--list.tar', 'directory-tar'],
  ] as const)('%s (%s) is read as a file and restores normally', async (name, format) => {
    const path = join(dir, name);
    await dumpHost(PLAIN_DB, format, join(dir, `src-${format}`));
    await copyFile(join(dir, `src-${format}`), path);
    const run = await runPlan(`optlike-${format}-${name.replace(/[^a-z]/g, '')}`, path, {
      checks: [{ name: 'Einwohner', sql: 'select count(*) from einwohner', expect: `== ${ROWS}` }],
    });
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.backup.format).toBe(format);
    expect(run.checks[0].actual).toBe(String(ROWS));
  });
});
