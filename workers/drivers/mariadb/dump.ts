import { open } from 'node:fs/promises';
import { decompressHead, DumpInspectError, wallTimeToUtc } from '../postgres/dump-format.js';
import { decompressingScanner, type LineConsumer } from '../postgres/plain-scan.js';

/** A mariadb-dump / mysqldump file: plain SQL, optionally gzip or zstd. */
export type MariaFormat = 'plain' | 'plain-gzip' | 'plain-zstd';

export interface MariaDumpInfo {
  format: MariaFormat;
  flavor: 'mariadb' | 'mysql';
  /** The dumped server's version, e.g. 10.11.6 (from "-- Server version"). */
  serverVersion?: string;
  /** The dump tool's distribution line, e.g. "10.11.6-MariaDB". */
  dumpVersion?: string;
  /** The database the header names ("-- Host: … Database: app"). */
  headerDatabase?: string;
}

/** What the streaming scan learns: the dump's last line says it completed, and when; which databases it switches to. */
export interface MariaScan {
  complete: boolean;
  /** "-- Dump completed on 2026-12-05 22:00:01": the server's local time (no zone). */
  completedAt?: { year: number; month: number; day: number; hour: number; minute: number; second: number };
  /** `USE \`db\`` lines (a dump made with --databases or --all-databases). */
  databases: string[];
  decompressError?: string;
}

const MARKER = '-- MariaDB dump';
/**
 * "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for …" (MariaDB up to 11.x, MySQL) or
 * "-- MariaDB dump 10.20-11.8.9-MariaDB, for …" (MariaDB 11.x; its first line is then the
 * client's sandbox-mode comment `/*M!999999\- enable the sandbox mode *\/`).
 */
const HEAD = /^-- (MariaDB|MySQL) dump \d+\.\d+(?:\s+Distrib (\S+?)|-(\S+?)),/m;

/** Reads the dump's header (decompressing only its start). */
export async function inspectMariaDump(path: string): Promise<MariaDumpInfo> {
  const fh = await open(path, 'r');
  let magic: Buffer;
  try {
    magic = Buffer.alloc(4);
    await fh.read(magic, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const format: MariaFormat = magic[0] === 0x1f && magic[1] === 0x8b ? 'plain-gzip' : magic.readUInt32BE(0) === 0x28b52ffd ? 'plain-zstd' : 'plain';
  let text: string;
  if (format === 'plain') {
    const h = await open(path, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await h.read(buf, 0, buf.length, 0);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await h.close();
    }
  } else {
    text = await decompressHead(path, format === 'plain-gzip' ? 'gzip' : 'zstd', MARKER);
  }
  const head = HEAD.exec(text);
  if (!head) {
    if (text.length < 40 && /^-- M/.test(text)) throw new DumpInspectError('ARCHIVE_TRUNCATED', 'the file ends inside the dump header');
    throw new DumpInspectError('ARCHIVE_UNREADABLE', 'not a mariadb-dump or mysqldump file (no "-- MariaDB dump" / "-- MySQL dump" header)');
  }
  const server = /^-- Server version\s+(\S+)/m.exec(text)?.[1];
  const db = /^-- Host: .*?\s+Database: (.+)$/m.exec(text)?.[1]?.trim();
  return {
    format,
    flavor: head[1] === 'MariaDB' || /mariadb/i.test(server ?? '') ? 'mariadb' : 'mysql',
    dumpVersion: head[2] ?? head[3],
    ...(server && { serverVersion: server.replace(/-.*$/, '') }),
    ...(db && { headerDatabase: db }),
  };
}

/** Keeps only the last line and the USE lines: row data (INSERT … VALUES) is never parsed. */
class MariaLines implements LineConsumer<MariaScan> {
  private carry = '';
  private last = '';
  private dbs = new Set<string>();

  feed(chunk: Buffer): void {
    // only the tail of a long line matters, and only short lines are ever read
    const text = this.carry + chunk.toString('latin1');
    const lines = text.split('\n');
    this.carry = (lines.pop() ?? '').slice(-512);
    for (const raw of lines) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (!line) continue;
      this.last = line.length > 512 ? line.slice(0, 512) : line;
      if (line.length < 200 && line.startsWith('USE `')) {
        const m = /^USE `((?:[^`]|``)+)`;$/.exec(line);
        if (m) this.dbs.add(Buffer.from(m[1]!.replace(/``/g, '`'), 'latin1').toString('utf8'));
      }
    }
  }

  result(error?: string): MariaScan {
    if (this.carry) this.last = this.carry;
    const m = /^-- Dump completed on (\d{4})-(\d\d)-(\d\d) +(\d\d?):(\d\d):(\d\d)\s*$/.exec(this.last);
    const completedAt = m ? (([year, month, day, hour, minute, second]) => ({ year, month, day, hour, minute, second }))(m.slice(1, 7).map(Number) as [number, number, number, number, number, number]) : undefined;
    return { complete: this.last.startsWith('-- Dump completed'), ...(completedAt && { completedAt }), databases: [...this.dbs], ...(error && { decompressError: error }) };
  }
}

/** A scanner fed the raw bytes while they are hashed. */
export function createMariaScanner(format: MariaFormat): { write(chunk: Buffer): Promise<void>; end(): Promise<MariaScan> } {
  const lines = new MariaLines();
  if (format === 'plain') return { write: async (c) => lines.feed(c), end: async () => lines.result() };
  return decompressingScanner(format, lines);
}

/** The completion time in the zone the dump's server ran in. */
export function completedAtUtc(scan: MariaScan, tz: string): Date | null {
  return scan.completedAt ? wallTimeToUtc(scan.completedAt, tz) : null;
}
