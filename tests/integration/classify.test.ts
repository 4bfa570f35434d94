/**
 * classifyRestoreOutput on REAL stderr: the host's pg_restore / psql 15 (LC_MESSAGES=C,
 * psql with ON_ERROR_STOP=1) run against broken and intact dumps into scratch databases.
 * The observed messages are asserted too, so a changed PostgreSQL wording shows up here.
 * Fails (never skips) without the host cluster.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyRestoreOutput, type ToolOutcome } from '../../workers/drivers/postgres/classify.js';
import { createPlainScanner } from '../../workers/drivers/postgres/plain-scan.js';
import {
  dropHostDatabase, dumpHost, ensureHostCluster, fileSize, makeHostDatabase, makeScratchDatabase, makeTempDir, restoreHost, truncateCopy,
} from '../fixtures/host-dumps.js';

const SRC = `ef_t_cls_${process.pid}`;
let dir: string;
let scratchNo = 0;
const scratchDbs: string[] = [];
const codes = (o: ToolOutcome, ctx: { plainComplete?: boolean } = {}) => classifyRestoreOutput(o, ctx).map((f) => f.code).sort();

async function scratch(): Promise<string> {
  const name = `${SRC}_r${++scratchNo}`;
  scratchDbs.push(name);
  await makeScratchDatabase(name);
  return name;
}

beforeAll(async () => {
  await ensureHostCluster();
  await makeHostDatabase(SRC, { rows: 3000 });
  dir = await makeTempDir('ef-classify-');
  await dumpHost(SRC, 'custom', join(dir, 'ewo.dump'));
  await dumpHost(SRC, 'plain', join(dir, 'ewo.sql'));
}, 180_000);

afterAll(async () => {
  for (const db of [...scratchDbs, SRC]) await dropHostDatabase(db);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 120_000);

describe('classify real pg_restore / psql output', { timeout: 60_000 }, () => {
  it('a clean restore gives no findings at all (pg_restore and psql)', async () => {
    const a = await restoreHost('pg_restore', join(dir, 'ewo.dump'), await scratch(), { jobs: 2 });
    expect(a.exitCode).toBe(0);
    expect(classifyRestoreOutput(a, {})).toEqual([]);
    const b = await restoreHost('psql', join(dir, 'ewo.sql'), await scratch());
    expect(b.exitCode).toBe(0);
    expect(classifyRestoreOutput(b, { plainComplete: true })).toEqual([]);
  });

  it.each([undefined, 2])('a custom dump cut in half (jobs=%s) → ARCHIVE_TRUNCATED', async (jobs) => {
    const cut = join(dir, `half-${jobs ?? 1}.dump`);
    await truncateCopy(join(dir, 'ewo.dump'), cut, Math.floor((await fileSize(join(dir, 'ewo.dump'))) / 2));
    const o = await restoreHost('pg_restore', cut, await scratch(), { jobs });
    expect(o.exitCode).toBe(1);
    // observed: serial "could not read from input file: end of file"; with -j 2 additionally
    // "could not find block ID <n> in archive -- possibly corrupt archive" and "a worker process died unexpectedly"
    expect(o.stderr).toMatch(/could not read from input file: end of file|could not find block ID \d+ in archive/);
    expect(codes(o)).toEqual(['ARCHIVE_TRUNCATED']);
  });

  it('random bytes → ARCHIVE_UNREADABLE', async () => {
    const p = join(dir, 'random.dump');
    await writeFile(p, randomBytes(40_000));
    const o = await restoreHost('pg_restore', p, await scratch());
    expect(o.stderr).toMatch(/input file does not appear to be a valid archive/);
    expect(codes(o)).toEqual(['ARCHIVE_UNREADABLE']);
  });

  it('an archive version newer than this pg_restore → VERSION_UNSUPPORTED', async () => {
    const p = join(dir, 'future.dump');
    await truncateCopy(join(dir, 'ewo.dump'), p, await fileSize(join(dir, 'ewo.dump')));
    const fh = await open(p, 'r+');
    await fh.write(Buffer.from([99]), 0, 1, 6); // vmin byte: "1.99"
    await fh.close();
    const o = await restoreHost('pg_restore', p, await scratch());
    expect(o.stderr).toMatch(/unsupported version \(1\.99\) in file header/);
    expect(codes(o)).toEqual(['VERSION_UNSUPPORTED']);
  });

  it('the same dump restored twice → RESTORE_ERROR, without DETAIL/CONTEXT row data', async () => {
    const db = await scratch();
    expect((await restoreHost('pg_restore', join(dir, 'ewo.dump'), db)).exitCode).toBe(0);
    const o = await restoreHost('pg_restore', join(dir, 'ewo.dump'), db);
    expect(o.exitCode).toBe(1);
    expect(o.stderr).toMatch(/could not execute query: ERROR: {2}relation "einwohner" already exists/);
    expect(o.stderr).toMatch(/DETAIL: {2}Key \(id\)=\(1\) already exists/);
    const f = classifyRestoreOutput(o, {});
    expect(f.map((x) => x.code)).toEqual(['RESTORE_ERROR']);
    expect(f[0]!.message).toMatch(/relation "einwohner" already exists/);
    expect(f[0]!.message).toMatch(/\(\+\d+ more\)/);
    expect(f[0]!.message).not.toMatch(/DETAIL|CONTEXT|Key \(id\)|Command was/);
  });

  it('a plain dump needing a missing extension → EXTENSION_MISSING naming it', async () => {
    const p = join(dir, 'needs-ext.sql');
    await writeFile(p, 'CREATE EXTENSION ef_does_not_exist;\n');
    const out = await open(p, 'a');
    for await (const c of createReadStream(join(dir, 'ewo.sql'))) await out.write(c as Buffer);
    await out.close();
    const o = await restoreHost('psql', p, await scratch());
    expect(o.exitCode).toBe(3);
    expect(o.stderr).toMatch(/psql:.*:1: ERROR: {2}extension "ef_does_not_exist" is not available/);
    const f = classifyRestoreOutput(o, { plainComplete: true });
    expect(f.map((x) => x.code)).toEqual(['EXTENSION_MISSING']);
    expect(f[0]!.message).toContain('ef_does_not_exist');
  });

  it('a plain dump cut in half, inside COPY data: psql fails → ARCHIVE_TRUNCATED + RESTORE_ERROR, no row data', async () => {
    const p = join(dir, 'half.sql');
    // cut in the middle of the einwohner COPY data (not wherever half the file happens to end)
    const text = await readFile(join(dir, 'ewo.sql'), 'utf8'); // small fixture; the product code streams
    const start = text.indexOf('\n', text.indexOf('COPY public.einwohner')) + 1;
    const end = text.indexOf('\n\\.\n', start);
    await truncateCopy(join(dir, 'ewo.sql'), p, Buffer.byteLength(text.slice(0, Math.floor((start + end) / 2))));
    const o = await restoreHost('psql', p, await scratch());
    expect(o.exitCode).toBe(3);
    // observed: "psql:<file>:<n>: ERROR:  missing data for column …" (or invalid input syntax) and a CONTEXT line quoting the row
    // (the cut lands in the COPY of einwohner or of meldung, depending on the fixture's sizes)
    expect(o.stderr).toMatch(/^CONTEXT: {2}COPY (einwohner|meldung), line \d+: "/m);
    const f = classifyRestoreOutput(o, { plainComplete: false });
    expect(f.map((x) => x.code).sort()).toEqual(['ARCHIVE_TRUNCATED', 'RESTORE_ERROR']);
    const row = /^CONTEXT: {2}COPY (?:einwohner|meldung), line \d+: "(.*)"$/m.exec(o.stderr)![1]!;
    // the longest field of the quoted row (a name, a date): none of it may reach a finding
    const longest = row.split('\t').map((x) => x.trim()).sort((a, b) => b.length - a.length)[0] ?? '';
    const needle = longest.length >= 4 ? longest : `"${row}"`; // the cut may leave only a fragment of the row
    for (const f1 of f) expect(f1.message).not.toContain(needle);
    for (const f1 of f) expect(f1.message).not.toMatch(/CONTEXT/);
  });

  it('a plain dump cut after a complete statement: psql exits 0 → EXIT_CODE_LIED + ARCHIVE_TRUNCATED', async () => {
    const text = await readFile(join(dir, 'ewo.sql'), 'utf8'); // small fixture; the product code streams
    const cutAt = Buffer.byteLength(text.slice(0, text.indexOf('\n\\.\n') + 4)); // right after the first COPY block
    const p = join(dir, 'cut.sql');
    await truncateCopy(join(dir, 'ewo.sql'), p, cutAt);
    const scanner = createPlainScanner('plain');
    for await (const c of createReadStream(p)) await scanner.write(c as Buffer);
    const scan = await scanner.end();
    expect(scan.complete).toBe(false);
    const o = await restoreHost('psql', p, await scratch());
    expect(o.exitCode).toBe(0); // the lie this finding exists for
    expect(codes(o, { plainComplete: scan.complete })).toEqual(['ARCHIVE_TRUNCATED', 'EXIT_CODE_LIED']);
    expect(codes(o, { plainComplete: true })).toEqual([]);
  });
});

describe('classify: personal data never reaches a finding', () => {
  const stderr = [
    'psql:/backup/ewo.sql:2311: ERROR:  missing data for column "ort"',
    'CONTEXT:  COPY einwohner, line 2213: "2213\tJürgen Müller\tLübeck"',
    'pg_restore: error: COPY failed for table "einwohner": ERROR:  duplicate key value violates unique constraint "einwohner_pkey"',
    'DETAIL:  Key (id)=(4711) already exists. Failing row contains (4711, Käthe Schäfer, Görlitz, 1961-04-01).',
    'pg_restore: error: could not execute query: ERROR:  invalid input syntax for type date: "Käthe Schäfer 1961"',
    'Command was: INSERT INTO public.einwohner VALUES (4711, \'Käthe Schäfer\', \'Görlitz\', \'1961-04-01\');',
    `pg_restore: error: could not execute query: ERROR:  ${'x'.repeat(400)}`,
    'pg_restore: error: could not execute query: ERROR:  relation "meldung" already exists',
    'pg_restore: warning: errors ignored on restore: 5',
  ].join('\n');

  it('keeps only error lines, cut to 200 chars, with a count of the rest; data-quoting values redacted', () => {
    const f = classifyRestoreOutput({ tool: 'pg_restore', exitCode: 1, stderr }, {});
    expect(f.map((x) => x.code)).toEqual(['RESTORE_ERROR']);
    const m = f[0]!.message;
    for (const pii of ['Jürgen', 'Müller', 'Lübeck', 'Käthe', 'Schäfer', 'Görlitz', '4711', '1961', 'Failing row', 'CONTEXT', 'DETAIL', 'Command was']) {
      expect(m).not.toContain(pii);
    }
    expect(m).toContain('line 2311: ERROR: missing data for column "ort"');
    expect(m).toContain('invalid input syntax for type date: "…"');
    expect(m).toContain('(+2 more)');
    for (const part of m.split(' | ')) expect(part.length).toBeLessThanOrEqual(260);
    expect(m).not.toContain('x'.repeat(201));
  });

  it('psql without ON_ERROR_STOP: exit 0 with ERROR lines → EXIT_CODE_LIED; unknown non-zero exit → RESTORE_ERROR', () => {
    const lied = classifyRestoreOutput({ tool: 'psql', exitCode: 0, stderr: 'psql:d.sql:9: ERROR:  relation "x" does not exist\n' }, { plainComplete: true });
    expect(lied.map((x) => x.code).sort()).toEqual(['EXIT_CODE_LIED', 'RESTORE_ERROR']);
    const odd = classifyRestoreOutput({ tool: 'pg_restore', exitCode: 137, stderr: 'Killed\n' }, {});
    expect(odd).toEqual([expect.objectContaining({ code: 'RESTORE_ERROR', message: expect.stringContaining('137') })]);
  });
});
