import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, makeHostDatabase, makeTempDir, type HostDumpFormat } from '../fixtures/host-dumps.js';

const SRC = 'ef_rt_formats';
const ROWS = 3000;
let h: Harness;
let dir: string;

beforeAll(async () => {
  dir = await makeTempDir('ef-formats-');
  await makeHostDatabase(SRC, { rows: ROWS });
  h = await startHarness({ backupRoot: dir });
});
afterAll(async () => {
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

const formats: [HostDumpFormat, string][] = [
  ['custom', 'ewo.dump'], ['directory', 'ewo-dir'], ['directory-tar', 'ewo-dir.tar'], ['tar', 'ewo.tar'],
  ['plain', 'ewo.sql'], ['plain-gzip', 'ewo.sql.gz'], ['plain-zstd', 'ewo.sql.zst'],
];

describe('a healthy dump passes with exact row counts, in each supported format', () => {
  it.each(formats)('%s', async (format, file) => {
    const path = join(dir, file);
    await dumpHost(SRC, format, path, { env: { TZ: 'Europe/Berlin' } });
    const id = `fmt-${format}`;
    await h.putPlan(pgPlan(id, path, {
      checks: [
        { name: 'Einwohner exakt', sql: 'select count(*) from einwohner', expect: `== ${ROWS}` },
        { tableRows: { table: 'meldung', min: ROWS / 2 } },
        { tableExists: { table: 'public.einwohner' } },
        { name: 'Umlaute intakt', sql: "select count(*) from einwohner where name like '%ü%' or ort like '%ü%'", expect: '> 0' },
      ],
    }));
    const run = await h.waitForRun(await h.trigger(id));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.checks.map((c: { status: string }) => c.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    expect(run.checks[0].actual).toBe(String(ROWS));
    expect(run.phases.map((p: { name: string }) => p.name)).toEqual(['fetch', 'provision', 'restore', 'verify', 'teardown']);
    expect(run.phases.every((p: { status: string }) => p.status === 'ok')).toBe(true);
    expect(run.rto.met).toBe(true);
    expect(run.rto.measuredSeconds).toBeGreaterThan(0);
    expect(run.rpo.met).toBe(true);
    expect(run.backup.format).toBe(format === 'directory-tar' ? 'directory-tar' : format);
    expect(run.sandbox.image).toBe('ernstfall/sandbox-postgres:15');
    expect(run.sandbox.network).toBe('none');
    if (format !== 'directory') {
      expect(run.backup.sha256).toBe(createHash('sha256').update(await readFile(path)).digest('hex'));
    }
    expect(run.findings.filter((f: { severity: string }) => f.severity !== 'info'), JSON.stringify(run.findings)).toEqual([]);
    if (format.startsWith('plain')) {
      // the dump's table owner role does not exist in a fresh sandbox: created up front, so it buries nothing
      expect(run.findings.map((f: { code: string }) => f.code)).toContain('ROLES_CREATED');
    }
    expect(await h.sandboxesLeft()).toBe(0);
  });
});
