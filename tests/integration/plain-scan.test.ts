/**
 * createPlainScanner on real plain dumps (plain, |gzip, |zstd) from the host's
 * pg_dump 15, complete and cut in half. Fails (never skips) without the host cluster.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlainScanner, type PlainScan } from '../../workers/drivers/postgres/plain-scan.js';
import {
  FIXTURE_OWNER, FIXTURE_READER, dropHostDatabase, dumpHost, ensureHostCluster, fileSize, makeHostDatabase, makeTempDir, truncateCopy,
} from '../fixtures/host-dumps.js';

type PlainFormat = 'plain' | 'plain-gzip' | 'plain-zstd';
const FORMATS: PlainFormat[] = ['plain', 'plain-gzip', 'plain-zstd'];
const DB = `ef_t_scan_${process.pid}`;
let dir: string;
let plainSize: number;
const pathOf = (f: string) => join(dir, `ewo.${f}`);

/** Feed a file in small odd-sized chunks, so lines (and UTF-8 umlauts) are split across chunks. */
async function scanFile(path: string, format: PlainFormat, chunk = 997): Promise<PlainScan> {
  const scanner = createPlainScanner(format);
  for await (const c of createReadStream(path, { highWaterMark: chunk })) await scanner.write(c as Buffer);
  return scanner.end();
}

async function scanText(text: string, step: number): Promise<PlainScan> {
  const scanner = createPlainScanner('plain');
  const b = Buffer.from(text);
  for (let i = 0; i < b.length; i += step) await scanner.write(b.subarray(i, i + step));
  return scanner.end();
}

beforeAll(async () => {
  await ensureHostCluster();
  await makeHostDatabase(DB, { rows: 4000, trgm: true });
  dir = await makeTempDir('ef-plainscan-');
  for (const f of FORMATS) await dumpHost(DB, f, pathOf(f));
  plainSize = await fileSize(pathOf('plain'));
}, 180_000);

afterAll(async () => {
  await dropHostDatabase(DB);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('plain scanner on real dumps', { timeout: 30_000 }, () => {
  it.each(FORMATS)('complete %s dump: complete, roles, extensions', async (f) => {
    const scan = await scanFile(pathOf(f), f);
    expect(scan.decompressError).toBeUndefined();
    expect(scan.complete).toBe(true);
    expect(scan.roles).toEqual(expect.arrayContaining([FIXTURE_OWNER, FIXTURE_READER]));
    expect(scan.roles).not.toContain('postgres');
    expect(scan.extensions).toEqual(['pg_trgm']);
    expect(scan.bytesUncompressed).toBe(plainSize);
  });

  it.each(FORMATS)('%s cut in half: incomplete, never throws', async (f) => {
    const cut = join(dir, `half.${f}`);
    await truncateCopy(pathOf(f), cut, Math.floor((await fileSize(pathOf(f))) / 2));
    const scan = await scanFile(cut, f);
    expect(scan.complete).toBe(false);
    if (f === 'plain') expect(scan.decompressError).toBeUndefined();
    else expect(scan.decompressError).toMatch(f === 'plain-gzip' ? /unexpected end of file/ : /premature end/);
  });

  it('a gzip stream that is corrupt from the start reports it instead of throwing', async () => {
    const scanner = createPlainScanner('plain-gzip');
    await scanner.write(Buffer.from([0x1f, 0x8b, 0x09, 0x00, 1, 2, 3, 4, 5, 6, 7]));
    await scanner.write(Buffer.from('more bytes after the failure'));
    const scan = await scanner.end();
    expect(scan.complete).toBe(false);
    expect(scan.decompressError).toMatch(/gzip/);
  });
});

describe('plain scanner statement parsing', () => {
  const dump = [
    '--', '-- PostgreSQL database dump', '--', '',
    "SET SESSION AUTHORIZATION 'Sachbearbeitung Meldeamt';",
    'CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA public;',
    'CREATE EXTENSION postgis;',
    'ALTER TABLE public."Einwohner" OWNER TO "Amt für Bürgerdienste";',
    'ALTER FUNCTION public.f(x integer) OWNER TO fachverfahren;',
    'REVOKE ALL ON SCHEMA public FROM PUBLIC;',
    'GRANT SELECT,INSERT ON TABLE public."Einwohner" TO leser, "Schreib, Rolle" WITH GRANT OPTION;',
    'GRANT SELECT(name) ON TABLE public.t TO CURRENT_USER;',
    'REVOKE GRANT OPTION FOR SELECT ON TABLE public.t FROM abgeloest GRANTED BY chef;',
    'ALTER DEFAULT PRIVILEGES FOR ROLE migrator IN SCHEMA public GRANT SELECT ON TABLES TO berichte;',
    'COPY public.t (id, bemerkung) FROM stdin;',
    '1\tGRANT ALL ON t TO boesewicht;',
    '2\tALTER TABLE x OWNER TO eindringling;',
    '\\.',
    'GRANT pg_read_all_data TO postgres;',
    '', '--', '-- PostgreSQL database dump complete', '--', '',
  ].join('\n');

  it.each([1, 7, 4096])('finds roles and extensions, ignores COPY rows (chunk size %i)', async (step) => {
    const scan = await scanText(dump, step);
    expect(scan.complete).toBe(true);
    expect(scan.extensions).toEqual(['postgis', 'uuid-ossp']);
    expect(scan.roles).toEqual(
      ['Amt für Bürgerdienste', 'Sachbearbeitung Meldeamt', 'Schreib, Rolle', 'abgeloest', 'berichte', 'chef', 'fachverfahren', 'leser', 'migrator'].sort(),
    );
  });

  it('is not complete when the closing line is followed by more SQL, or when a COPY block never ends', async () => {
    expect((await scanText(`${dump}${'CREATE TABLE a (i int);\n'.repeat(10)}`, 64)).complete).toBe(false);
    expect((await scanText(dump.replace('\\.\n', ''), 64)).complete).toBe(false);
  });

  it('keeps memory bounded on a huge single line', async () => {
    const scanner = createPlainScanner('plain');
    const big = Buffer.alloc(1024 * 1024, 0x61);
    await scanner.write(Buffer.from('COPY public.t (b) FROM stdin;\n'));
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 64; i++) await scanner.write(big); // one 64 MiB row
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024); // not accumulated
    await scanner.write(Buffer.from('\n\\.\n-- PostgreSQL database dump complete\n'));
    const scan = await scanner.end();
    expect(scan.complete).toBe(true);
    expect(scan.bytesUncompressed).toBeGreaterThan(64 * 1024 * 1024);
  });
});
