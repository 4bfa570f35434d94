import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../services/logger.js';
import { sandboxQuery, sandboxRows } from '../../workers/drivers/postgres/postgres.driver.js';
import { SessionUnavailable, sessionRows } from '../../workers/drivers/postgres/session.js';
import { postgresDriver, waitForPostgres } from '../../workers/drivers/postgres/index.js';
import { createSandbox, type Sandbox } from '../../workers/sandbox/sandbox.js';

// Queries reach the sandbox's server through long-lived sessions (one exec of a relay each), not one
// psql exec per query. These tests pin what that must not change: every query starts read-only and
// from a clean session, values come back whole, and nothing outlives the sandbox.

const docker = new Docker();
let dir: string;
let sandbox: Sandbox;

/** A PostgreSQL sandbox as the worker starts one (the driver's recipe, an empty backup copied in), its server up. */
async function startSandbox(name: string): Promise<Sandbox> {
  const backup = join(dir, `${name}.dump`);
  await writeFile(backup, '');
  const image = 'ernstfall/sandbox-postgres:15';
  const imageId = (await docker.getImage(image).inspect()).Id;
  const s = await createSandbox(docker, {
    image, runId: `session-${randomBytes(4).toString('hex')}`, planId: 'session-test', tenantId: 'session-test',
    instance: 'ef-test-session', memoryBytes: 512 * 2 ** 20, cpus: 1, pids: 256,
    recipe: postgresDriver.sandbox({ plan: {}, inspection: {} } as never), transfer: 'copy', backupPath: backup, backupIsDirectory: false,
  }, imageId, createLogger('silent'));
  await s.copyBackup({ path: backup, realPath: backup, isDirectory: false, mtime: new Date() }, new AbortController().signal);
  await s.start();
  await waitForPostgres(s, 120_000);
  return s;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ef-session-'));
  sandbox = await startSandbox('empty');
}, 180_000);

afterAll(async () => {
  await sandbox?.destroy();
  await rm(dir, { recursive: true, force: true });
});

const sessions = async () => {
  const r = await sandbox.exec(['psql', '-X', '-A', '-t', '-d', 'postgres', '-c', "select count(*) from pg_stat_activity where application_name = 'ernstfall'"]);
  return Number(r.stdout.trim());
};

describe('database sessions into the sandbox', () => {
  it('returns the first value of the first result with rows, as the server prints it, nulls as null', async () => {
    const q = sandboxQuery(sandbox, 'postgres');
    expect(await q('select 42')).toEqual({ ok: true, value: '42' });
    expect(await q('select true, 1')).toEqual({ ok: true, value: 't' });
    expect(await q('select null::int')).toEqual({ ok: true, value: null });
    expect(await q("set timezone = 'UTC'; select timestamptz '2026-12-07 10:00:00+01'")).toEqual({ ok: true, value: '2026-12-07 09:00:00+00' });
    expect(await q('select 1 where false')).toEqual({ ok: true, value: null });
    // a value with a newline and the old field separator comes back whole
    expect(await q("select E'a\\nb\\x1fc'")).toEqual({ ok: true, value: 'a\nb\x1fc' });
  });

  it('reports server errors by their message, and the session goes on', async () => {
    const q = sandboxQuery(sandbox, 'postgres');
    expect(await q('select 1/0')).toEqual({ ok: false, error: 'division by zero' });
    expect(await q('selec 1')).toMatchObject({ ok: false, error: expect.stringContaining('syntax error') });
    expect(await q('select 2')).toEqual({ ok: true, value: '2' });
  });

  it('is read-only for every query, even after a query turned read-only off or left a transaction open', async () => {
    const q = sandboxQuery(sandbox, 'postgres');
    expect(await q('create table t_write (a int)')).toMatchObject({ ok: false, error: expect.stringContaining('read-only transaction') });
    // one query tries to make the session writable, another leaves a transaction open; the next starts clean
    expect(await q('set default_transaction_read_only = off; select 1')).toEqual({ ok: true, value: '1' });
    expect(await q('begin; set transaction read write; select 1')).toEqual({ ok: true, value: '1' });
    for (let i = 0; i < 4; i++) {
      expect(await q('create table t_write (a int)')).toMatchObject({ ok: false, error: expect.stringContaining('read-only transaction') });
    }
    expect(await q('show default_transaction_read_only')).toEqual({ ok: true, value: 'on' });
    expect(await q("select count(*) from pg_class where relname = 't_write'")).toEqual({ ok: true, value: '0' });
  });

  it('runs queries side by side on at most three sessions, reused, not one per query', async () => {
    const q = sandboxQuery(sandbox, 'postgres');
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => q(`select ${i}, pg_sleep(0.05)`)));
    expect(results.map((r) => (r.ok ? r.value : r.error))).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
    const open = await sessions();
    expect(open).toBeGreaterThanOrEqual(1);
    expect(open).toBeLessThanOrEqual(3);
  });

  it('a result heavier than the worker may hold is cut with a clear error; the next query gets a new session', async () => {
    const q = sandboxQuery(sandbox, 'postgres');
    const r = await q("select repeat('x', 1024 * 1024) from generate_series(1, 70)");
    expect(r).toEqual({ ok: false, error: expect.stringContaining('larger than 64 MiB') });
    // just below the limit is fine, and the session afterwards too
    expect(await q("select length(string_agg(v, '')) from (select repeat('x', 1024 * 1024) v from generate_series(1, 60)) x")).toEqual({ ok: true, value: String(60 * 1024 * 1024) });
    expect(await q('select 3')).toEqual({ ok: true, value: '3' });
  });

  it('returns every row for callers that need rows', async () => {
    const r = await sandboxRows(sandbox, 'postgres', 'select g, g * 2 from generate_series(1, 3) g');
    expect(r).toEqual({ ok: true, value: [['1', '2'], ['2', '4'], ['3', '6']] });
  });

  it('says the session is unavailable when the relay cannot reach a server, so callers fall back to psql', async () => {
    await expect(sessionRows(sandbox, 'postgres', '/nonexistent', 'select 1', { statementTimeoutMs: 1000 })).rejects.toBeInstanceOf(SessionUnavailable);
  });

  it('a query in a database that does not exist is an error, not a crash', async () => {
    const r = await sandboxQuery(sandbox, 'ef_no_such_db')('select 1');
    expect(r.ok).toBe(false);
  });
});

describe('when the sandbox goes away', () => {
  it('closes its sessions: a query after removal fails cleanly and nothing is left running', async () => {
    const s2 = await startSandbox('empty2');
    const q = sandboxQuery(s2, 'postgres');
    expect(await q('select 1')).toEqual({ ok: true, value: '1' });
    // a long query is running when the sandbox is removed
    const running = q('select pg_sleep(30)');
    await new Promise((r) => setTimeout(r, 300));
    await s2.destroy();
    const r = await running;
    expect(r.ok).toBe(false);
    await expect(docker.getContainer(s2.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
  }, 120_000);
});
