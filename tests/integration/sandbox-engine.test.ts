import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';
import { touchNow } from '../fixtures/test-clock.js';
import { LABELS } from '../../workers/sandbox/docker.js';

/**
 * The sandbox nobody can steer, seen from outside (docker inspect of a live
 * sandbox) and from inside; and infrastructure failures that are not the
 * backup's fault: out of memory, a full data area, an engine that is gone.
 */
const SRC = 'ef_engine_src';
const ROWS = 100_000;
let h: Harness;
let dir: string;
const count = { name: 'Einwohner', sql: 'select count(*) from einwohner', expect: `== ${ROWS}` };
const codes = (run: { findings: { code: string }[] }) => run.findings.map((f) => f.code);

/** A plain SQL dump as pg_dump writes them, with the given statements as its body. */
function plainDump(body: string): string {
  return ['--', '-- PostgreSQL database dump', '--', '', 'SET statement_timeout = 0;', body, '', '--', '-- PostgreSQL database dump complete', '--', ''].join('\n');
}

beforeAll(async () => {
  dir = await makeTempDir('ef-engine-');
  await makeHostDatabase(SRC, { rows: ROWS });
  await dumpHost(SRC, 'custom', join(dir, 'ewo.dump'));
  // 300,000 rows of 1,000 bytes (stored uncompressed: below the TOAST threshold): about 330 MB restored
  await writeFile(join(dir, 'grows.sql'), plainDump("CREATE TABLE big AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 300000) g;"));
  // one statement that needs 400 MB of memory in the server process
  await writeFile(join(dir, 'hungry.sql'), plainDump("CREATE TABLE hungry AS SELECT length(string_agg(repeat('x', 1000000), '')) AS n FROM generate_series(1, 400);"));
  // written now by the tests' clock (a plain dump's time is its file time; npm run test:date-ahead moves only the tests' clock)
  await touchNow(join(dir, 'grows.sql'));
  await touchNow(join(dir, 'hungry.sql'));
  h = await startHarness({ backupRoot: dir, env: { ERNSTFALL_HEARTBEAT_MS: '300', ERNSTFALL_SANDBOX_MAX_DISK: '4g' } });
});
afterAll(async () => {
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

describe('a live sandbox', () => {
  it('runs as an unprivileged user with no capabilities, a read-only root, no network and its own bounded data area', async () => {
    // a slow check keeps the sandbox alive long enough to look at it
    await h.putPlan(pgPlan('inspect', 'ewo.dump', {
      sandbox: { memory: '768m', cpus: 1, pids: 300, timeout: '10m', disk: '2g' },
      checks: [count, { name: 'langsam', sql: 'select count(*) from (select pg_sleep(6)) s', expect: '== 1' }],
    }));
    const id = await h.trigger('inspect');
    await h.waitForPhase(id, 'verify');
    const [c] = await h.c.docker.listContainers({ filters: { label: [`${LABELS.instance}=${h.config.instance}`, `${LABELS.runId}=${id}`] } });
    expect(c, 'the sandbox of the run is running').toBeDefined();
    const info = await h.c.docker.getContainer(c!.Id).inspect();
    expect(info.Config.User).toBe('postgres');
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.CapAdd ?? []).toEqual([]);
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.HostConfig.Memory).toBe(768 * 1024 ** 2);
    expect(info.HostConfig.PidsLimit).toBe(300);
    expect(info.HostConfig.NanoCpus).toBe(1e9);
    expect(Object.keys(info.HostConfig.Tmpfs ?? {}).sort()).toEqual(['/run', '/tmp']);
    // one writable data area, a volume of its own; the backup is not a bind mount of the host's file
    expect(info.Mounts.map((m) => `${m.Type}:${m.Destination}:${m.RW}`)).toEqual(['volume:/var/lib/postgresql:true']);
    // and from inside: not root, no effective capabilities, the programs cannot be changed, the copy cannot be changed
    const exec = async (cmd: string[]) => {
      const e = await h.c.docker.getContainer(c!.Id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await e.start({ hijack: true, stdin: false });
      let out = '';
      stream.on('data', (b: Buffer) => { out += b.toString('latin1'); });
      await new Promise((r) => stream.on('end', r));
      return { code: (await e.inspect()).ExitCode, out };
    };
    expect((await exec(['id', '-u'])).out).not.toMatch(/^\W*0\s*$/);
    expect((await exec(['grep', 'CapEff', '/proc/self/status'])).out).toMatch(/CapEff:\s+0000000000000000/);
    expect((await exec(['touch', '/usr/bin/psql'])).code).not.toBe(0);
    expect((await exec(['sh', '-c', 'echo x >> /var/lib/postgresql/ef-backup/backup'])).code).not.toBe(0);
    const run = await h.waitForRun(id);
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.sandbox).toMatchObject({ user: 'postgres', capAdd: [], readOnlyRootfs: true, transfer: 'copy', dataAreaBytes: 2 * 1024 ** 3 });
    expect(await h.sandboxesLeft()).toBe(0);
  });
});

describe('infrastructure is not the backup\'s fault', () => {
  it('a restore that needs more memory than the sandbox has: SANDBOX_OOM, error (not failed)', async () => {
    await h.putPlan(pgPlan('oom', 'hungry.sql', { sandbox: { memory: '192m', timeout: '10m' } }));
    const run = await h.waitForRun(await h.trigger('oom'));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('error');
    expect(codes(run)).toContain('SANDBOX_OOM');
    // what the tool said is kept, but no longer held against the backup
    expect(run.findings.filter((f: { severity: string }) => f.severity === 'failure')).toEqual([]);
    expect(await h.sandboxesLeft()).toBe(0);
  });

  it('the same dump with enough memory passes, and no SANDBOX_OOM', async () => {
    await h.putPlan(pgPlan('enough', 'hungry.sql', { sandbox: { memory: '2g', timeout: '10m' }, checks: [{ name: 'n', sql: 'select n from hungry', expect: '== 400000000' }] }));
    const run = await h.waitForRun(await h.trigger('enough'));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(codes(run)).not.toContain('SANDBOX_OOM');
  });

  it('a restore that outgrows the data area is stopped: SANDBOX_DISK_FULL, error; with room it passes', async () => {
    await h.putPlan(pgPlan('disk-small', 'grows.sql', { sandbox: { disk: '128m', timeout: '10m' } }));
    const run = await h.waitForRun(await h.trigger('disk-small'));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('error');
    expect(codes(run)).toContain('SANDBOX_DISK_FULL');
    expect(run.phases.find((p: { name: string }) => p.name === 'restore')).toMatchObject({ status: 'interrupted', note: 'the sandbox\'s data area was full' });
    expect(await h.sandboxesLeft()).toBe(0);

    await h.putPlan(pgPlan('disk-enough', 'grows.sql', { sandbox: { disk: '2g', timeout: '10m' }, checks: [{ name: 'n', sql: 'select count(*) from big', expect: '== 300000' }] }));
    const ok = await h.waitForRun(await h.trigger('disk-enough'));
    expect(ok.verdict, JSON.stringify(ok.findings)).toBe('passed');
    expect(codes(ok)).not.toContain('SANDBOX_DISK_FULL');
  });
});

describe('a cancel in any phase', () => {
  it('a cancel right after the trigger (fetch, provision, the copy into the sandbox) ends the run within seconds, five times in a row', async () => {
    await h.putPlan(pgPlan('cancel-early', 'ewo.dump', { checks: [count] }));
    for (let i = 0; i < 5; i++) {
      const id = await h.trigger('cancel-early');
      // a few milliseconds later each time, so the cancel meets the run in a different place
      await new Promise((r) => setTimeout(r, i * 150));
      expect((await h.request('POST', `/api/v1/runs/${id}/cancel`)).status).toBe(202);
      const run = await h.waitForRun(id, 30_000);
      expect(run.verdict).toBe('cancelled'); // at most 600 ms after the trigger: long before verify ends
      expect(run.phases.filter((p: { status: string }) => p.status === 'running')).toEqual([]);
    }
    for (let i = 0; i < 50 && (await h.sandboxesLeft()) > 0; i++) await new Promise((r) => setTimeout(r, 200));
    expect(await h.sandboxesLeft()).toBe(0);
  });
});

describe('an engine that is not there', () => {
  it('ENGINE_UNAVAILABLE, error, nothing said about the backup', async () => {
    const g = await startHarness({ backupRoot: await makeTempDir('ef-engine-gone-'), env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
    try {
      await dumpHost(SRC, 'custom', join(g.backupRoot, 'ewo.dump'));
      await g.putPlan(pgPlan('gone', 'ewo.dump', { checks: [count] }));
      const run = await g.waitForRun(await g.trigger('gone'));
      expect(run.verdict).toBe('error');
      expect(codes(run)).toContain('ENGINE_UNAVAILABLE');
      expect(codes(run)).not.toContain('INTERNAL_ERROR');
      expect(run.phases.find((p: { name: string }) => p.name === 'provision').status).toBe('failed');
      expect(run.checks[0].status).toBe('skipped');
    } finally {
      await g.close();
    }
  });
});

describe('a bind-mounted backup (ERNSTFALL_SANDBOX_TRANSFER=bind)', () => {
  it('replaced during the test: BACKUP_CHANGED, never passed', async () => {
    const b = await startHarness({ backupRoot: dir, env: { ERNSTFALL_SANDBOX_TRANSFER: 'bind', ERNSTFALL_HEARTBEAT_MS: '300' } });
    try {
      await dumpHost(SRC, 'custom', join(dir, 'rotating.dump'));
      await b.putPlan(pgPlan('rotating-bind', 'rotating.dump', { sandbox: { cpus: 0.2, timeout: '10m' }, checks: [count] }));
      const id = await b.trigger('rotating-bind');
      await b.waitForPhase(id, 'restore');
      await dumpHost(SRC, 'custom', join(dir, 'rotating.new'));
      await rename(join(dir, 'rotating.new'), join(dir, 'rotating.dump'));
      const run = await b.waitForRun(id);
      expect(run.sandbox.transfer).toBe('bind');
      expect(run.verdict).toBe('error');
      expect(codes(run)).toContain('BACKUP_CHANGED');
      // left alone, the same plan passes in bind mode
      const again = await b.waitForRun(await b.trigger('rotating-bind'));
      expect(again.verdict, JSON.stringify(again.findings)).toBe('passed');
      expect(codes(again)).not.toContain('BACKUP_CHANGED');
    } finally {
      await b.close();
    }
  });
});
