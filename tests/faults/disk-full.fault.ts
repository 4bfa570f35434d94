import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { run as sh } from '../fixtures/host-dumps.js';
import { faultDumps, faultEngine, faultPlan, faultPostgres, faultRedis, recordFigure, startFaultStack, tempDir, type FaultEngine, type FaultPostgres, type FaultRedis, type FaultStack } from './kit.js';

let pg: FaultPostgres;
let redis: FaultRedis;
let engine: FaultEngine;
let dumps: Awaited<ReturnType<typeof faultDumps>>;
let state: Awaited<ReturnType<typeof tempDir>>;
let s: FaultStack | undefined;

beforeAll(async () => {
  [pg, redis, engine, dumps, state] = await Promise.all([faultPostgres(), faultRedis(), faultEngine(), faultDumps('disk'), tempDir('ef-faults-state-')]);
  // the state folder on a disk of its own, 1 MiB
  const r = await sh('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'ef-faults-state', state.path]);
  if (r.code !== 0) throw new Error(`mount tmpfs: ${r.stderr}`);
});
afterAll(async () => {
  await s?.close();
  await redis?.kill();
  await dumps?.remove();
  if (state) {
    await sh('umount', [state.path]);
    await state.remove();
  }
});

/** Fills the disk to the last byte: whole pages first, then single bytes. */
async function fill(file: string): Promise<void> {
  const fh = await open(file, 'w');
  try {
    for (const size of [65_536, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x78);
      for (;;) {
        try {
          const { bytesWritten } = await fh.write(chunk);
          if (bytesWritten < size) break;
        } catch {
          break;
        }
      }
    }
  } finally {
    await fh.close();
  }
}

const codes = (r: { findings: { code: string }[] }) => r.findings.map((f) => f.code);

describe('the state folder\'s disk fills up while runs finish', () => {
  it('runs still end with their verdicts; once there is room again checkpoints resume and the ledger verifies', async () => {
    const checkpointDir = join(state.path, 'checkpoints');
    await mkdir(checkpointDir);
    s = await startFaultStack({ pg, redisUrl: redis.url, dockerHost: engine.host, backupRoot: dumps.dir, env: { ERNSTFALL_CHECKPOINT_DIR: checkpointDir } });
    await s.putPlan(faultPlan('disk-a', 'small.dump'));
    await s.putPlan(faultPlan('disk-big', 'big.dump', 0.5));
    const first = await s.waitForRun(await s.trigger('disk-a'), 90_000);
    expect(first.verdict).toBe('passed');
    const cpFile = join(checkpointDir, `${DEFAULT_TENANT_ID}.jsonl`);
    const before = (await stat(cpFile)).size;

    const big = await s.trigger('disk-big');
    await s.waitForPhase(big, 'restore');
    const t0 = Date.now();
    await fill(join(state.path, 'filler'));
    const during = [await s.waitForRun(big, 120_000)];
    const recovered = (Date.now() - t0) / 1000;
    // lines fit into the slack of the file's last page until one fits only in part: run until the file stops growing
    let size = (await stat(cpFile)).size;
    for (let i = 0; i < 6; i++) {
      during.push(await s.waitForRun(await s.trigger('disk-a'), 90_000));
      const now = (await stat(cpFile)).size;
      if (now === size) break;
      size = now;
    }
    for (const r of during) expect(r.verdict).toBe('passed');
    const after = (await stat(cpFile)).size;
    // whole lines only: a write the disk cut short is taken back
    expect((await readFile(cpFile, 'utf8')).endsWith('\n')).toBe(true);

    await rm(join(state.path, 'filler'));
    const later = await s.waitForRun(await s.trigger('disk-a'), 90_000);
    expect(later.verdict).toBe('passed');
    expect((await stat(cpFile)).size).toBeGreaterThan(after);
    expect(await s.sandboxesLeft()).toBe(0);
    s.c.ledger.forgetVerified();
    const ledger = await s.c.ledger.verify(DEFAULT_TENANT_ID, { full: true });
    expect(ledger, JSON.stringify(ledger)).toMatchObject({ ok: true });
    for (const line of (await readFile(cpFile, 'utf8')).trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    expect(after).toBeGreaterThanOrEqual(before);
    await recordFigure({ fault: 'state folder (checkpoints) disk full while runs finished', recoveredSeconds: recovered, runs: `${during.length} runs finished while full: ${[...new Set(during.map((r) => `${r.verdict}${codes(r).length ? ` (${codes(r).join(', ')})` : ''}`))].join('; ')}; after freeing: ${later.verdict}`, containersLeft: await s.sandboxesLeft(), ledger: `ok, ${ledger.records} records, ${ledger.checkpoints.checked} checkpoints` });
  }, 600_000); // up to nine restore runs in a row: on a loaded machine they took more than the tier's 240 s
});
