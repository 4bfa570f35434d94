/**
 * inspectDump against real dumps written by the host's pg_dump 15 (run with
 * TZ=Europe/Berlin, so the archive header holds Berlin wall-clock time).
 * Needs the host PostgreSQL cluster; fails (never skips) without it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DumpInspectError, inspectDump, wallTimeToUtc, type DumpFormat } from '../../workers/drivers/postgres/dump-format.js';
import {
  dropHostDatabase, dumpHost, ensureHostCluster, hostPsql, makeHostDatabase, makeTempDir, run, truncateCopy, fileSize, type HostDumpFormat,
} from '../fixtures/host-dumps.js';

const DB = `ef_t_fmt_${process.pid}`;
const BERLIN = { TZ: 'Europe/Berlin' };
let dir: string;
let dumpedAt: number;
let plainDumpedAt: number;

const CASES: Array<{ kind: HostDumpFormat; format: DumpFormat; compression: string; archive: boolean }> = [
  { kind: 'custom', format: 'custom', compression: 'gzip', archive: true },
  { kind: 'custom-z0', format: 'custom', compression: 'none', archive: true },
  { kind: 'directory', format: 'directory', compression: 'gzip', archive: true },
  { kind: 'directory-tar', format: 'directory-tar', compression: 'gzip', archive: true },
  { kind: 'tar', format: 'tar', compression: 'none', archive: true },
  { kind: 'plain', format: 'plain', compression: 'none', archive: false },
  { kind: 'plain-gzip', format: 'plain-gzip', compression: 'gzip', archive: false },
  { kind: 'plain-zstd', format: 'plain-zstd', compression: 'zstd', archive: false },
];
const pathOf = (kind: string) => join(dir, `ewo.${kind}`);

async function inspectError(path: string): Promise<DumpInspectError> {
  const err = await inspectDump(path).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(DumpInspectError);
  return err as DumpInspectError;
}

beforeAll(async () => {
  await ensureHostCluster();
  await makeHostDatabase(DB, { rows: 3000 });
  dir = await makeTempDir('ef-dumpfmt-');
  // the archives' headers follow the tests' clock (dumpHost moves them under `npm run test:date-ahead`, where
  // pg_dump runs on real time); a plain dump's "Started on" line is pg_dump's own, the host's clock, as the database's
  dumpedAt = Date.now();
  plainDumpedAt = Number(await hostPsql('select (extract(epoch from now()) * 1000)::bigint'));
  for (const c of CASES) await dumpHost(DB, c.kind, pathOf(c.kind), { env: BERLIN });
  await dumpHost(DB, 'plain', pathOf('plain-create'), { env: BERLIN, extraArgs: ['--create', '--verbose'] });
}, 180_000);

afterAll(async () => {
  await dropHostDatabase(DB);
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('inspectDump on real pg_dump 15 output', { timeout: 30_000 }, () => {
  it.each(CASES)('$kind → $format', async (c) => {
    const info = await inspectDump(pathOf(c.kind), { timezone: 'Europe/Berlin' });
    expect(info.format).toBe(c.format);
    expect(info.requiredMajor).toBe(15);
    expect(info.compression).toBe(c.compression);
    expect(info.dumpVersion).toMatch(/^15\.\d+/);
    expect(info.serverVersion).toMatch(/^15\.\d+/);
    if (c.archive) {
      expect(info.archiveVersion).toBe('1.14'); // pg_dump 15 writes 1.14; 1.15 arrived with PostgreSQL 16
      expect(info.databaseName).toBe(DB);
      expect(Math.abs(info.createdAt!.getTime() - dumpedAt)).toBeLessThan(60_000);
    } else {
      expect(info.archiveVersion).toBeUndefined();
      expect(info.databaseName).toBeUndefined(); // a plain dump names its database only with --create
    }
    if (c.format === 'directory-tar') expect(info.tocPathInTar).toBe('ewo.directory-tar.d/toc.dat');
    else expect(info.tocPathInTar).toBeUndefined();
  });

  it.each(['gnu', 'posix', 'ustar'])('finds toc.dat behind long member names in a %s tar of a -Fd folder', async (tarFormat) => {
    const rel = `kommune-musterstadt-einwohnermeldewesen/nachtsicherung-${'x'.repeat(70)}`; // > 100 chars in all
    await rm(join(dir, 'long'), { recursive: true, force: true });
    await mkdir(join(dir, 'long', rel, '..'), { recursive: true });
    await run('cp', ['-r', pathOf('directory'), join(dir, 'long', rel)]);
    const p = join(dir, `long-${tarFormat}.tar`);
    const r = await run('tar', [`--format=${tarFormat}`, '-cf', p, '-C', join(dir, 'long'), '.']);
    expect(r.stderr).toBe('');
    const info = await inspectDump(p);
    expect(info.format).toBe('directory-tar');
    expect(info.tocPathInTar).toBe(`./${rel}/toc.dat`);
  });

  it('reads database name and start time of a plain dump made with --create --verbose', async () => {
    const info = await inspectDump(pathOf('plain-create'), { timezone: 'Europe/Berlin' });
    expect(info.databaseName).toBe(DB);
    expect(Math.abs(info.createdAt!.getTime() - plainDumpedAt)).toBeLessThan(60_000);
  });

  it('interprets the header time in the given zone: reading Berlin time as UTC is off by the offset', async () => {
    const berlin = await inspectDump(pathOf('custom'), { timezone: 'Europe/Berlin' });
    const utc = await inspectDump(pathOf('custom'), { timezone: 'UTC' });
    const diff = utc.createdAt!.getTime() - berlin.createdAt!.getTime();
    expect([3_600_000, 7_200_000]).toContain(diff);
  });

  it('pg_dump 15 has no zstd archive compression, so a 1.15 (PostgreSQL 16+) header is built by hand', async () => {
    const r = await run('pg_dump', ['--compress=zstd', '--version'], { env: { ...process.env, LC_ALL: 'C' } });
    expect(r.code).not.toBe(0); // if this ever passes, add a real --compress=zstd case above
    expect(r.stderr).toMatch(/invalid value "zstd" for option -Z\/--compress/);
    const p = join(dir, 'synthetic-1.15.dump');
    await writeFile(p, archiveHeader({ vmin: 15, compressionByte: 3, db: 'ewo', server: '16.4', dump: '17.2 (Debian 17.2-1)', tm: [30, 30, 2, 26, 9, 125, 1] }));
    const info = await inspectDump(p, { timezone: 'Europe/Berlin' });
    expect(info).toMatchObject({ format: 'custom', archiveVersion: '1.15', compression: 'zstd', databaseName: 'ewo', requiredMajor: 17 });
    // 2025-10-26 02:30:30 happened twice in Berlin; isdst=1 picks the first (summer time) one
    expect(info.createdAt!.toISOString()).toBe('2025-10-26T00:30:30.000Z');
  });
});

describe('inspectDump refuses what is not a dump', { timeout: 30_000 }, () => {
  it('random bytes → ARCHIVE_UNREADABLE', async () => {
    const p = join(dir, 'random.bin');
    await writeFile(p, randomBytes(64 * 1024));
    const e = await inspectError(p);
    expect(e.code).toBe('ARCHIVE_UNREADABLE');
    expect(e.message).toMatch(/not a PostgreSQL dump: unknown file signature/);
  });

  it('the first 10 bytes of a custom dump → ARCHIVE_TRUNCATED', async () => {
    const p = join(dir, 'ten.dump');
    await truncateCopy(pathOf('custom'), p, 10);
    expect((await inspectError(p)).code).toBe('ARCHIVE_TRUNCATED');
  });

  it('a -Ft tar cut in half → ARCHIVE_TRUNCATED (pg_restore 15 would loop forever on it)', async () => {
    const p = join(dir, 'half.tar');
    await truncateCopy(pathOf('tar'), p, Math.floor((await fileSize(pathOf('tar'))) / 2));
    const e = await inspectError(p);
    expect(e.code).toBe('ARCHIVE_TRUNCATED');
    expect(e.message).toMatch(/cut off inside member/);
  });

  it('a folder without toc.dat → ARCHIVE_UNREADABLE', async () => {
    const p = join(dir, 'empty-folder');
    await mkdir(p);
    expect((await inspectError(p)).code).toBe('ARCHIVE_UNREADABLE');
  });

  it('gzip of something that is not a dump → ARCHIVE_UNREADABLE', async () => {
    const p = join(dir, 'notes.txt.gz');
    await writeFile(p, (await import('node:zlib')).gzipSync('Protokoll der Sitzung vom 3. März\n'));
    expect((await inspectError(p)).code).toBe('ARCHIVE_UNREADABLE');
  });

  it('a plain dump written by pg_dump 99.1 needs major 99', async () => {
    const p = join(dir, 'future.sql');
    await writeFile(p, '--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.18\n-- Dumped by pg_dump version 99.1\n\nSET statement_timeout = 0;\n');
    const info = await inspectDump(p);
    expect(info).toMatchObject({ format: 'plain', requiredMajor: 99, serverVersion: '15.18', dumpVersion: '99.1' });
  });
});

describe('wallTimeToUtc (Intl only)', () => {
  const w = (month: number, day: number, hour: number, minute = 30) => ({ year: 2025, month, day, hour, minute, second: 0 });
  it('handles the repeated autumn hour with isdst, and the skipped spring hour', () => {
    expect(wallTimeToUtc(w(10, 26, 2), 'Europe/Berlin', true).toISOString()).toBe('2025-10-26T00:30:00.000Z');
    expect(wallTimeToUtc(w(10, 26, 2), 'Europe/Berlin', false).toISOString()).toBe('2025-10-26T01:30:00.000Z');
    expect(wallTimeToUtc(w(3, 30, 2), 'Europe/Berlin').toISOString()).toBe('2025-03-30T01:30:00.000Z'); // = 03:30 CEST
    expect(wallTimeToUtc(w(7, 1, 12), 'Europe/Berlin').toISOString()).toBe('2025-07-01T10:30:00.000Z');
    expect(wallTimeToUtc(w(1, 15, 12), 'Europe/Berlin').toISOString()).toBe('2025-01-15T11:30:00.000Z');
    expect(wallTimeToUtc(w(1, 15, 12), 'America/New_York').toISOString()).toBe('2025-01-15T17:30:00.000Z');
  });
});

/** A custom-format header as pg_dump ≥ 16 writes it (archive 1.15: compression as one algorithm byte). */
function archiveHeader(h: { vmin: number; compressionByte: number; db: string; server: string; dump: string; tm: number[] }): Buffer {
  const int = (v: number) => { const b = Buffer.alloc(5); b[0] = v < 0 ? 1 : 0; b.writeUInt32LE(Math.abs(v), 1); return b; };
  const str = (s: string) => Buffer.concat([int(Buffer.byteLength(s)), Buffer.from(s)]);
  return Buffer.concat([
    Buffer.from('PGDMP'), Buffer.from([1, h.vmin, 0, 4, 8, 1, h.compressionByte]),
    ...h.tm.map(int), str(h.db), str(h.server), str(h.dump), Buffer.alloc(64),
  ]);
}
