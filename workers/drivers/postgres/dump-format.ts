/**
 * Recognise a PostgreSQL dump and read its header without restoring it, so the
 * driver can pick a server major (and refuse garbage) before starting a sandbox.
 * Only the first bytes are read (tar files: their 512-byte headers); backups can
 * be many GB, so nothing here reads a whole file.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';

export type DumpFormat = 'custom' | 'directory' | 'directory-tar' | 'tar' | 'plain' | 'plain-gzip' | 'plain-zstd';

export interface DumpInfo {
  format: DumpFormat;
  archiveVersion?: string;
  dumpVersion?: string;
  serverVersion?: string;
  requiredMajor: number | null;
  createdAt?: Date;
  databaseName?: string;
  compression?: string;
  tocPathInTar?: string;
}

export class DumpInspectError extends Error {
  constructor(public code: 'ARCHIVE_UNREADABLE' | 'ARCHIVE_TRUNCATED', message: string) {
    super(message);
    this.name = 'DumpInspectError';
  }
}

const HEAD_BYTES = 64 * 1024; // archive headers are ~150 bytes; plain headers a few hundred
const unreadable = (m: string) => new DumpInspectError('ARCHIVE_UNREADABLE', m);
const truncated = (m: string) => new DumpInspectError('ARCHIVE_TRUNCATED', m);

// Archive format codes (pg_backup.h). NB: pg_dump writes archTar (3), not archDirectory (5),
// into a directory dump's toc.dat ("the directory is compatible with tar"), so 3 is expected there.
const ARCH_CUSTOM = 1;
const ARCH_TAR = 3;
const ARCH_DIRECTORY = 5;

export async function inspectDump(path: string, opts: { timezone?: string } = {}): Promise<DumpInfo> {
  const tz = opts.timezone ?? 'Europe/Berlin';
  const st = await stat(path).catch((e: Error) => { throw unreadable(`cannot read ${path}: ${e.message}`); });
  if (st.isDirectory()) {
    const toc = join(path, 'toc.dat');
    const head = await readHead(toc).catch(() => null);
    if (!head) throw unreadable(`directory ${path} is not a directory-format dump (no readable toc.dat)`);
    const h = parseArchiveHeader(head.buf, head.whole, tz, 'toc.dat');
    if (h.fmt !== ARCH_TAR && h.fmt !== ARCH_DIRECTORY) throw unreadable(`toc.dat in ${path} has unexpected archive format code ${h.fmt}`);
    return { format: 'directory', ...h.info };
  }
  const { buf, whole } = await readHead(path);
  if (buf.length === 0) throw truncated('file is empty');
  const magic = Buffer.from('PGDMP');
  if (buf.length < magic.length && magic.subarray(0, buf.length).equals(buf)) throw truncated('file ends inside the archive signature');
  if (buf.subarray(0, 5).equals(magic)) {
    const h = parseArchiveHeader(buf, whole, tz, 'file');
    if (h.fmt === ARCH_CUSTOM) return { format: 'custom', ...h.info };
    if (h.fmt === ARCH_TAR || h.fmt === ARCH_DIRECTORY) {
      throw unreadable('this is the toc.dat of a directory/tar dump on its own; point at the whole folder or tar');
    }
    throw unreadable(`unknown archive format code ${h.fmt} in header`);
  }
  if (buf.length >= 262 && buf.toString('latin1', 257, 262) === 'ustar') return inspectTar(path, st.size, tz);
  if (buf[0] === 0x1f && buf[1] === 0x8b) return plainInfo('plain-gzip', await decompressHead(path, 'gzip'), tz);
  if (buf.length >= 4 && buf.readUInt32BE(0) === 0x28b52ffd) return plainInfo('plain-zstd', await decompressHead(path, 'zstd'), tz);
  const text = buf.toString('utf8');
  if (/^\s*(--|SET\b)/.test(text)) return plainInfo('plain', text, tz);
  throw unreadable('not a PostgreSQL dump: unknown file signature');
}

/** Never waits on a FIFO swapped in for the file, never follows a link swapped in for it. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

async function readHead(path: string, at = 0, max = HEAD_BYTES): Promise<{ buf: Buffer; whole: boolean }> {
  const fh = await open(path, READ_FLAGS);
  try {
    return await readAt(fh, at, max);
  } finally {
    await fh.close();
  }
}

/** `whole` = the buffer holds everything up to the end of the file (or of `max`-limited member). */
async function readAt(fh: FileHandle, at: number, max: number): Promise<{ buf: Buffer; whole: boolean }> {
  const buf = Buffer.alloc(max);
  let n = 0;
  while (n < max) {
    const { bytesRead } = await fh.read(buf, n, max - n, at + n);
    if (bytesRead === 0) return { buf: buf.subarray(0, n), whole: true };
    n += bytesRead;
  }
  return { buf, whole: false };
}

// ---- archive header: a transcription of ReadHead() in pg_backup_archiver.c ----

const vers = (maj: number, min: number, rev = 0) => ((maj * 256 + min) * 256 + rev) * 256;
const EOF = Symbol('eof');

function parseArchiveHeader(buf: Buffer, whole: boolean, tz: string, what: string): { fmt: number; info: Omit<DumpInfo, 'format'> } {
  let pos = 5; // after "PGDMP"
  let intSize = 4;
  const byte = () => { if (pos >= buf.length) throw EOF; return buf[pos++]!; };
  const readInt = () => { // sign byte, then intSize bytes little-endian (ReadInt)
    const neg = byte() !== 0;
    let v = 0;
    for (let i = 0; i < intSize; i++) { const b = byte(); if (i < 6) v += b * 2 ** (8 * i); }
    return neg ? -v : v;
  };
  const readStr = () => { // int length (-1 = NULL) then bytes (ReadStr)
    const len = readInt();
    if (len < 0) return undefined;
    if (pos + len > buf.length) throw EOF;
    const s = buf.toString('utf8', pos, pos + len);
    pos += len;
    return s;
  };
  try {
    const vmaj = byte(), vmin = byte();
    const vrev = vmaj > 1 || (vmaj === 1 && vmin > 0) ? byte() : 0; // ReadHead reads vrev for >= 1.0
    const version = vers(vmaj, vmin, vrev);
    if (vmaj < 1) throw unreadable(`unsupported archive version ${vmaj}.${vmin} in ${what} header`);
    intSize = byte();
    if (intSize < 1 || intSize > 32) throw unreadable(`implausible integer size ${intSize} in ${what} header`);
    if (version >= vers(1, 7)) byte(); // offSize
    const fmt = byte();
    let compression: string;
    if (version >= vers(1, 15)) {
      const alg = byte();
      compression = ['none', 'gzip', 'lz4', 'zstd'][alg] ?? `unknown(${alg})`;
    } else if (version >= vers(1, 2)) {
      const level = version < vers(1, 4) ? byte() : readInt();
      compression = level === 0 ? 'none' : 'gzip'; // -1 = zlib's default level
    } else compression = 'gzip';
    const info: Omit<DumpInfo, 'format'> = { archiveVersion: `${vmaj}.${vmin}${vrev ? `.${vrev}` : ''}`, compression, requiredMajor: null };
    if (version >= vers(1, 4)) {
      const [sec, min, hour, mday, mon, year, isdst] = Array.from({ length: 7 }, readInt) as number[];
      // a struct tm that cannot be a pg_dump run (e.g. a header layout we misread) gives no time rather than a wrong one
      const plausible = year! >= 70 && mon! >= 0 && mon! <= 11 && mday! >= 1 && mday! <= 31 && hour! >= 0 && hour! <= 23 && min! >= 0 && min! <= 59 && sec! >= 0 && sec! <= 61;
      if (plausible) {
        const wall = { year: year! + 1900, month: mon! + 1, day: mday!, hour: hour!, minute: min!, second: sec! };
        info.createdAt = wallTimeToUtc(wall, tz, isdst! > 0 ? true : isdst === 0 ? false : undefined);
      }
      info.databaseName = readStr();
    }
    if (version >= vers(1, 10)) {
      info.serverVersion = readStr();
      info.dumpVersion = readStr();
    }
    info.requiredMajor = requiredMajor(info.dumpVersion, info.serverVersion);
    return { fmt, info };
  } catch (e) {
    if (e !== EOF) throw e;
    if (whole) throw truncated(`${what} ends inside the archive header (${buf.length} bytes)`);
    throw unreadable(`implausible archive header in ${what} (longer than ${buf.length} bytes)`);
  }
}

/** "17.2" → 17, "9.6.24" → 9, "15.14 (Debian …)" → 15. */
function majorOf(v: string | undefined): number | null {
  const m = v ? /^\s*(\d+)/.exec(v) : null;
  return m ? Number(m[1]) : null;
}

function requiredMajor(dumpVersion?: string, serverVersion?: string): number | null {
  const ms = [majorOf(dumpVersion), majorOf(serverVersion)].filter((m): m is number => m !== null);
  return ms.length ? Math.max(...ms) : null;
}

// ---- tar: -Ft archives, and tars of a -Fd folder ----

async function inspectTar(path: string, size: number, tz: string): Promise<DumpInfo> {
  const fh = await open(path, READ_FLAGS);
  try {
    let pos = 0, index = 0, longName: string | undefined;
    let toc: { name: string; index: number; at: number; size: number } | undefined;
    // Walk every header (cheap: one 512-byte read per member), not just up to toc.dat: a cut-off
    // -Ft tar makes pg_restore 15 spin forever after the first COPY error, so truncation is found here.
    for (;;) {
      const { buf: h } = await readAt(fh, pos, 512);
      if (h.length === 0) throw truncated(`tar archive ends without an end-of-archive marker (${size} bytes)`);
      if (h.length < 512) throw truncated(`tar archive ends inside a member header at byte ${pos}`);
      if (h.every((b) => b === 0)) break;
      if (!tarChecksumOk(h)) throw unreadable(`corrupt tar header at byte ${pos}`);
      const memberSize = tarNumber(h.subarray(124, 136));
      const type = String.fromCharCode(h[156]!);
      const prefix = cstr(h.subarray(345, 500));
      const posix = h.toString('latin1', 257, 263) === 'ustar\0'; // GNU ("ustar  ") keeps times where POSIX has the prefix
      const name = longName ?? (prefix && posix ? `${prefix}/${cstr(h.subarray(0, 100))}` : cstr(h.subarray(0, 100)));
      const dataAt = pos + 512;
      const next = dataAt + Math.ceil(memberSize / 512) * 512;
      if (dataAt + memberSize > size) throw truncated(`tar archive is cut off inside member "${name}" (${size} of ${dataAt + memberSize} bytes)`);
      longName = undefined;
      if (type === 'L' || type === 'x') { // GNU long name / pax header: the name applies to the next member
        const { buf: data } = await readAt(fh, dataAt, Math.min(memberSize, HEAD_BYTES));
        longName = type === 'L' ? cstr(data) : /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1];
      } else if (type !== 'g') {
        if (!toc && (type === '0' || type === '\0') && (name === 'toc.dat' || name.endsWith('/toc.dat'))) toc = { name, index, at: dataAt, size: memberSize };
        index++;
      }
      pos = next;
    }
    if (!toc) throw unreadable('tar archive contains no toc.dat: not a PostgreSQL dump');
    const { buf } = await readAt(fh, toc.at, Math.min(toc.size, HEAD_BYTES));
    if (!buf.subarray(0, 5).equals(Buffer.from('PGDMP'))) throw unreadable(`${toc.name} in tar is not a pg_dump table of contents`);
    const hd = parseArchiveHeader(buf, buf.length === toc.size, tz, toc.name);
    if (hd.fmt !== ARCH_TAR && hd.fmt !== ARCH_DIRECTORY) throw unreadable(`${toc.name} in tar has unexpected archive format code ${hd.fmt}`);
    // pg_dump -Ft always writes toc.dat as the first member at the root; a tarred -Fd folder
    // has it behind a folder entry (or "./"). Both carry format code 3, so position decides.
    if (toc.index === 0 && toc.name === 'toc.dat') return { format: 'tar', ...hd.info };
    return { format: 'directory-tar', ...hd.info, tocPathInTar: toc.name };
  } finally {
    await fh.close();
  }
}

const cstr = (b: Buffer) => { const z = b.indexOf(0); return b.toString('utf8', 0, z < 0 ? b.length : z); };

function tarNumber(field: Buffer): number {
  if (field[0]! & 0x80) { // GNU base-256 for sizes >= 8 GiB
    let v = field[0]! & 0x7f;
    for (const b of field.subarray(1)) v = v * 256 + b;
    return v;
  }
  const s = field.toString('latin1').replace(/[\0 ]+/g, ' ').trim();
  return s ? parseInt(s, 8) : 0;
}

function tarChecksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return tarNumber(h.subarray(148, 156)) === sum;
}

// ---- plain SQL (optionally gzip/zstd) ----

/** Decompress only the start of the file; a stream that fails before yielding a header (`marker`) is classified. */
export async function decompressHead(path: string, kind: 'gzip' | 'zstd', marker = '-- PostgreSQL database'): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  let failure: string | undefined;
  if (kind === 'gzip') {
    const fh = await open(path, READ_FLAGS);
    const src = fh.createReadStream({ highWaterMark: 16 * 1024 });
    const gz = createGunzip();
    src.on('error', (e) => gz.destroy(e));
    src.pipe(gz);
    try {
      for await (const c of gz) { parts.push(c as Buffer); n += (c as Buffer).length; if (n >= HEAD_BYTES) break; }
    } catch (e) {
      failure = (e as Error).message;
    } finally {
      src.destroy();
      gz.destroy();
    }
  } else {
    const child = spawn('zstd', ['-dc', '-q', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => { if (stderr.length < 4096) stderr += b.toString(); });
    const closed = new Promise<number | null>((res, rej) => { child.on('close', res); child.on('error', rej); });
    closed.catch(() => undefined); // observed below; avoids an unhandled rejection while we read
    for await (const c of child.stdout) { parts.push(c as Buffer); n += (c as Buffer).length; if (n >= HEAD_BYTES) break; }
    child.kill(); // we have enough; the rest of the backup stays unread
    const code = await closed;
    if (n < HEAD_BYTES && code !== 0) failure = stderr.trim() || `zstd exited with code ${code}`;
  }
  const text = Buffer.concat(parts).toString('utf8');
  if (failure && !text.includes(marker)) {
    const cut = /unexpected end of file|premature end|truncated/i.test(failure);
    throw cut ? truncated(`${kind} stream ends before the dump header: ${failure}`) : unreadable(`${kind} data is corrupt: ${failure}`);
  }
  return text;
}

const PLAIN_START = '--\n-- PostgreSQL database dump\n--\n';

function plainInfo(format: 'plain' | 'plain-gzip' | 'plain-zstd', text: string, tz: string): DumpInfo {
  if (!/^\s*(--|SET\b)/.test(text) || !/^-- PostgreSQL database (cluster )?dump$/m.test(text)) {
    if (text.length < PLAIN_START.length && PLAIN_START.startsWith(text)) throw truncated('file ends inside the plain dump header');
    throw unreadable(format === 'plain' ? 'not a PostgreSQL dump: unknown file signature' : `${format.slice(6)}-compressed, but not a PostgreSQL plain dump`);
  }
  const line = (re: RegExp) => re.exec(text)?.[1]?.trim();
  const info: DumpInfo = { format, requiredMajor: null, compression: format === 'plain' ? 'none' : format.slice(6) };
  info.serverVersion = line(/^-- Dumped from database version (.+)$/m);
  info.dumpVersion = line(/^-- Dumped by pg_dump(?:all)? version (.+)$/m);
  info.requiredMajor = requiredMajor(info.dumpVersion, info.serverVersion);
  const db = line(/^CREATE DATABASE ("(?:[^"]|"")+"|[^\s;]+)/m);
  if (db) info.databaseName = db.startsWith('"') ? db.slice(1, -1).replace(/""/g, '"') : db;
  // "-- Started on 2025-03-30 02:30:00 CEST" exists only in --verbose dumps; %Z abbreviations are
  // ambiguous worldwide, so the plan's zone decides, and a "…S…T"/"…D…T" hint picks DST in the repeated hour.
  const started = /^-- Started on (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?: (\S+))?$/m.exec(text);
  if (started) {
    const [year, month, day, hour, minute, second] = started.slice(1, 7).map(Number) as [number, number, number, number, number, number];
    const zone = started[7];
    const wall = { year, month, day, hour, minute, second };
    info.createdAt = zone && /^(UTC|GMT|Z)$/.test(zone)
      ? new Date(Date.UTC(year, month - 1, day, hour, minute, second))
      : wallTimeToUtc(wall, tz, zone ? /^([A-Z]+DT|CEST|MESZ|BST|IST|EEST|WEST)$/.test(zone) : undefined);
  }
  return info;
}

// ---- local wall-clock time → UTC, with Intl only ----

interface Wall { year: number; month: number; day: number; hour: number; minute: number; second: number }

/** Offset (ms) of `tz` at instant `t`: local wall time read as UTC minus t. */
const formats = new Map<string, Intl.DateTimeFormat>();
function tzOffset(t: number, tz: string): number {
  let f = formats.get(tz);
  if (!f) formats.set(tz, (f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' })));
  const p = Object.fromEntries(f.formatToParts(new Date(t)).map((x) => [x.type, Number(x.value)]));
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!) - Math.floor(t / 1000) * 1000;
}

/**
 * The instant a wall-clock time in `tz` denotes. In the repeated autumn hour `isdst`
 * picks the summer-time (larger offset) or winter-time instant, like mktime(); a time
 * skipped in spring is read with the offset before the switch (it lands an hour later).
 */
export function wallTimeToUtc(w: Wall, tz: string, isdst?: boolean): Date {
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  const offsets = [...new Set([tzOffset(asUtc - 86_400_000, tz), tzOffset(asUtc + 86_400_000, tz), tzOffset(asUtc, tz)])];
  const valid = offsets.filter((o) => tzOffset(asUtc - o, tz) === o).sort((a, b) => b - a); // larger offset (DST) first
  if (valid.length === 0) return new Date(asUtc - tzOffset(asUtc - 86_400_000, tz));
  if (valid.length > 1 && isdst === false) return new Date(asUtc - valid[valid.length - 1]!);
  return new Date(asUtc - valid[0]!);
}
