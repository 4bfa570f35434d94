import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeTempDir } from '../fixtures/host-dumps.js';
import { clockSkewMs, touchNow } from '../fixtures/test-clock.js';
import { mariadbDump } from '../fixtures/mariadb-dumps.js';

/**
 * Issue #11: MariaDB/MySQL dumps. The fixtures are made with the real
 * mariadb-dump, in a throw-away container of the sandbox image itself (no
 * MariaDB on the host, nothing pulled).
 */
const IMAGE = 'ernstfall/sandbox-mariadb:10.11';
const IMAGE_11 = 'ernstfall/sandbox-mariadb:11.8';
let h: Harness;
let dir: string;
let healthy: string;

let skewMs = 0;

/** A dump of `db` after `sql`, by the tests' clock (tests/fixtures/mariadb-dumps.ts). */
const dumpFrom = (sql: string, db: string, dumpArgs: string[] = [], image = IMAGE): Buffer => mariadbDump(sql, db, { image, skewMs, dumpArgs });

const HOSTILE = "-ge`werbe $$x'; DROP";
const HOSTILE_Q = `\`${HOSTILE.replace(/`/g, '``')}\``;
const HOSTILE_CREATE = `CREATE DATABASE ${HOSTILE_Q}`;
const SCHEMA = `
CREATE DATABASE gewerbe CHARACTER SET utf8mb4;
USE gewerbe;
CREATE TABLE betrieb (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) NOT NULL, angemeldet_am DATETIME NOT NULL);
CREATE TABLE ef_canary (token VARCHAR(64));
INSERT INTO ef_canary VALUES ('kanarienvogel-7f3a');
INSERT INTO betrieb (name, angemeldet_am) SELECT CONCAT('Bäckerei Müller ', seq), NOW() - INTERVAL seq MINUTE FROM seq_1_to_2500;`;

beforeAll(async () => {
  skewMs = await clockSkewMs();
  dir = await makeTempDir('ef-maria-');
  healthy = join(dir, 'gewerbe.sql');
  await writeFile(healthy, dumpFrom(SCHEMA, 'gewerbe'));
  execFileSync('gzip', ['-k', healthy]);
  execFileSync('zstd', ['-q', '-k', healthy]);
  await writeFile(join(dir, 'empty.sql'), dumpFrom('CREATE DATABASE leer; CREATE TABLE leer.t (id INT PRIMARY KEY);', 'leer'));
  // a dump made with --databases names its own database: here one whose name holds a backtick, $$, a quote and a leading dash
  await writeFile(join(dir, 'own-db.sql'), dumpFrom(SCHEMA.replace('CREATE DATABASE gewerbe', () => HOSTILE_CREATE).replace('USE gewerbe', () => `USE ${HOSTILE_Q}`), HOSTILE, ['--databases']));
  await writeFile(join(dir, 'stale.sql'), dumpFrom(`${SCHEMA} UPDATE betrieb SET angemeldet_am = angemeldet_am - INTERVAL 400 DAY;`, 'gewerbe'));
  // MariaDB 11.8's own mariadb-dump (trixie's server): its dump needs the 11.8 image
  await writeFile(join(dir, 'gewerbe-11.sql'), dumpFrom(SCHEMA, 'gewerbe', [], IMAGE_11));
  await writeFile(join(dir, 'lost.sql'), dumpFrom(`${SCHEMA} DROP TABLE ef_canary; DELETE FROM betrieb WHERE id % 100 <> 0;`, 'gewerbe'));
  await touchNow(dir); // the dumps' file times by the tests' clock
  h = await startHarness({ backupRoot: dir });
});
afterAll(async () => {
  await h?.close();
  await rm(dir, { recursive: true, force: true });
});

const CHECKS = [
  { name: 'Betriebe', sql: 'select count(*) from betrieb', expect: '== 2500' },
  { tableRows: { table: 'betrieb', min: 2000 } },
  { tableExists: { table: 'betrieb' } },
  { canary: { sql: 'select token from ef_canary', equals: 'kanarienvogel-7f3a' } },
];
async function run(id: string, path: string, over: Record<string, unknown> = {}) {
  await h.putPlan({
    id, title: `MariaDB ${id}`, targets: { rto: '1h', rpo: '26h' }, source: { type: 'file', path },
    restore: { driver: 'mariadb', database: 'gewerbe' }, sandbox: { memory: '1g', cpus: 1, timeout: '10m' }, checks: CHECKS, ...over,
  });
  return h.waitForRun(await h.trigger(id));
}
const codes = (r: { findings: { code: string }[] }) => r.findings.map((f) => f.code);

describe('mariadb driver', () => {
  it.each([['plain', 'gewerbe.sql'], ['plain-gzip', 'gewerbe.sql.gz'], ['plain-zstd', 'gewerbe.sql.zst']])(
    'a %s dump of mariadb-dump: passed; every check, the version and the dump\'s own completion time recorded', async (format, name) => {
      const r = await run(`maria-${format}`, join(dir, name));
      expect(r.verdict, JSON.stringify({ f: r.findings, c: r.checks })).toBe('passed');
      expect(r.backup).toMatchObject({ format, flavor: 'mariadb', createdAtSource: 'header' });
      expect(r.backup.serverVersion).toMatch(/^10\.11\./);
      expect(Math.abs(Date.parse(r.backup.createdAt) - (await stat(join(dir, 'gewerbe.sql'))).mtimeMs)).toBeLessThan(5 * 60_000);
      expect(r.sandbox).toMatchObject({ image: 'ernstfall/sandbox-mariadb:10.11', user: 'mysql', network: 'none' });
      expect(r.restore).toMatchObject({ tool: { name: 'mariadb', exitCode: 0 }, tables: 2, nonEmptyTables: 2, database: 'gewerbe' });
      expect(r.checks.map((c: { status: string }) => c.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
      expect(JSON.stringify(r)).not.toContain('kanarienvogel');
    });

  it('a dump of MariaDB 11.8: the header\'s version picks the 11.8 image (trixie), and it passes there', async () => {
    const r = await run('maria-11', join(dir, 'gewerbe-11.sql'));
    expect(r.verdict, JSON.stringify({ f: r.findings, c: r.checks })).toBe('passed');
    expect(r.backup.serverVersion).toMatch(/^11\.8\./);
    expect(r.sandbox).toMatchObject({ image: IMAGE_11, user: 'mysql', network: 'none' });
    expect(r.checks.map((c: { status: string }) => c.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    // a plan that pins a version gets that image, whatever the header says
    const pinned = await run('maria-11-pinned', join(dir, 'gewerbe-11.sql'), { restore: { driver: 'mariadb', database: 'gewerbe', version: '10.11' } });
    expect(pinned.sandbox).toMatchObject({ image: IMAGE });
  });

  it('a dump cut in half: ARCHIVE_TRUNCATED, never passed; a compressed one too', async () => {
    const cut = join(dir, 'cut.sql');
    await cp(healthy, cut);
    await truncate(cut, Math.floor((await stat(cut)).size / 2));
    const r = await run('maria-cut', cut);
    expect(r.verdict).not.toBe('passed');
    expect(codes(r)).toContain('ARCHIVE_TRUNCATED');
    const cz = join(dir, 'cut.sql.zst');
    await cp(`${healthy}.zst`, cz);
    await truncate(cz, Math.floor((await stat(cz)).size / 2));
    const z = await run('maria-cut-zst', cz);
    expect(z.verdict).not.toBe('passed');
    expect(codes(z)).toContain('ARCHIVE_TRUNCATED');
  });

  it('tables without rows: EMPTY_RESTORE, failed; a file that is no dump: ARCHIVE_UNREADABLE', async () => {
    const r = await run('maria-empty', join(dir, 'empty.sql'), { restore: { driver: 'mariadb', database: 'leer' }, checks: [] });
    expect(r.verdict).toBe('failed');
    expect(codes(r)).toContain('EMPTY_RESTORE');
    await writeFile(join(dir, 'notes.sql'), 'hello, this is not a dump\n');
    const j = await run('maria-junk', join(dir, 'notes.sql'), { checks: [] });
    expect(j.verdict).toBe('failed');
    expect(codes(j)).toContain('ARCHIVE_UNREADABLE');
  });

  it('a broken statement in the middle: RESTORE_ERROR naming code and line, no row data', async () => {
    const text = (await import('node:fs/promises')).readFile(healthy, 'utf8');
    const broken = (await text).replace('INSERT INTO `betrieb` VALUES\n', 'INSERT INTO `betrieb` VALUES\n((');
    expect(broken).not.toBe(await text);
    await writeFile(join(dir, 'broken.sql'), broken);
    const r = await run('maria-broken', join(dir, 'broken.sql'));
    expect(r.verdict).toBe('failed');
    const f = r.findings.find((x: { code: string }) => x.code === 'RESTORE_ERROR');
    expect(f.message).toMatch(/ERROR 1064 \(42000\) at line \d+/);
    expect(f.message).not.toContain('Bäckerei');
  });

  it('the built-in checks, as for PostgreSQL: a healthy dump twice fires nothing; stale data warns; a lost table and lost rows fail', async () => {
    const builtin = (r: { restore: { builtin: { name: string; status: string }[] } }) => Object.fromEntries(r.restore.builtin.map((b) => [b.name, b.status]));
    const first = await run('maria-bi', healthy, { checks: [] });
    expect(first.verdict, JSON.stringify(first.findings)).toBe('passed');
    expect(builtin(first)).toEqual({ freshness: 'passed', sequences: 'passed', schema: 'info', volume: 'info' });
    expect(first.restore.profile.tables.map((t: { name: string; rows: number; exact: boolean }) => `${t.name}:${t.rows}:${t.exact}`)).toEqual(['gewerbe.betrieb:2500:true', 'gewerbe.ef_canary:1:true']);
    const second = await run('maria-bi', healthy, { checks: [] });
    expect(builtin(second)).toEqual({ freshness: 'passed', sequences: 'passed', schema: 'passed', volume: 'passed' });
    const stale = await run('maria-stale', join(dir, 'stale.sql'), { checks: [] });
    expect(codes(stale)).toContain('DATA_STALE_SUSPECTED');
    const lost = await run('maria-bi', join(dir, 'lost.sql'), { checks: [] });
    expect(lost.verdict).toBe('failed');
    expect(codes(lost)).toEqual(expect.arrayContaining(['SCHEMA_DRIFT', 'VOLUME_DROP']));
    expect(lost.findings.find((f: { code: string }) => f.code === 'SCHEMA_DRIFT').message).toContain('table gewerbe.ef_canary');
  });

  it('a dump that creates its own database with a hostile name: restored under that name, checks answered, nothing interpreted', async () => {
    const r = await run('maria-own', join(dir, 'own-db.sql'));
    expect(r.verdict, JSON.stringify({ f: r.findings, c: r.checks })).toBe('passed');
    expect(r.restore).toMatchObject({ database: HOSTILE, tables: 2, nonEmptyTables: 2 });
  });

  it('plans: a MariaDB version that has no image is refused by the worker; SQL checks fit, file checks do not', async () => {
    const v = await run('maria-v', healthy, { restore: { driver: 'mariadb', database: 'gewerbe', version: '11.4' } });
    expect(v.verdict).toBe('error');
    expect(codes(v)).toContain('VERSION_UNSUPPORTED');
    const bad = await h.request('PUT', '/api/v1/plans/maria-files', {
      id: 'maria-files', title: 'x', targets: { rto: '1h', rpo: '1d' }, source: { type: 'file', path: healthy },
      restore: { driver: 'mariadb', database: 'gewerbe', jobs: 4 }, checks: [{ files: { min: 1 } }],
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('\\"jobs\\" is not a key of the mariadb driver');
    expect(JSON.stringify(bad.body)).toContain('a files check does not fit the mariadb driver');
  });
});
