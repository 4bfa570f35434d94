import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { FileSource } from '../../services/plans/plan.types.js';

export class SourceError extends Error {
  constructor(public readonly code: 'SOURCE_NOT_FOUND' | 'SOURCE_REFUSED' | 'SOURCE_UNSETTLED', message: string) {
    super(message);
    this.name = 'SourceError';
  }
}

export interface ResolvedBackup {
  /** The path as selected (inside a root). */
  path: string;
  /** The path with every symlink resolved; what gets mounted. */
  realPath: string;
  isDirectory: boolean;
  mtime: Date;
}

function inside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[' || ch === ']') re += ch;
    else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Newest modification time of a file, or of anything inside a folder (a folder dump is written file by file). */
async function newestMtime(path: string): Promise<Date> {
  const st = await stat(path);
  if (!st.isDirectory()) return st.mtime;
  let newest = st.mtime;
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const m = await newestMtime(join(path, entry.name));
    if (m > newest) newest = m;
  }
  return newest;
}

async function checkedRealPath(path: string, realRoots: string[]): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw new SourceError('SOURCE_NOT_FOUND', `backup path ${path} does not exist`);
  }
  if (!realRoots.some((r) => inside(real, r))) {
    throw new SourceError('SOURCE_REFUSED', `backup path ${path} leads outside the allowed backup roots (ERNSTFALL_BACKUP_ROOTS)`);
  }
  return real;
}

/**
 * Picks the backup a plan points at, refusing anything outside the roots
 * (also through `..` or symlinks) and anything still being written.
 */
export async function resolveBackup(source: FileSource, roots: string[], settleSeconds: number, now = new Date()): Promise<ResolvedBackup> {
  if (roots.length === 0) {
    throw new SourceError('SOURCE_REFUSED', 'no backup roots are configured (ERNSTFALL_BACKUP_ROOTS); nothing may be read');
  }
  const base = isAbsolute(source.path) ? resolve(source.path) : resolve(roots[0]!, source.path);
  if (!roots.some((r) => inside(base, r))) {
    throw new SourceError('SOURCE_REFUSED', `backup path ${source.path} is outside the allowed backup roots (ERNSTFALL_BACKUP_ROOTS)`);
  }
  const realRoots = await Promise.all(roots.map((r) => realpath(r).catch(() => r)));
  const settle = (source.settleSeconds ?? settleSeconds) * 1000;
  const settledBefore = now.getTime() - settle;

  if (!source.match) {
    const real = await checkedRealPath(base, realRoots);
    const mtime = await newestMtime(real);
    if (mtime.getTime() > settledBefore) {
      throw new SourceError('SOURCE_UNSETTLED', `backup ${source.path} was changed ${Math.round((now.getTime() - mtime.getTime()) / 1000)}s ago and may still be written (settle time ${settle / 1000}s)`);
    }
    return { path: base, realPath: real, isDirectory: (await stat(real)).isDirectory(), mtime };
  }

  const realDir = await checkedRealPath(base, realRoots);
  if (!(await stat(realDir)).isDirectory()) {
    throw new SourceError('SOURCE_NOT_FOUND', `backup path ${source.path} is not a folder, but the plan gives a match pattern`);
  }
  const pattern = globToRegExp(source.match);
  const candidates: ResolvedBackup[] = [];
  let unsettled = 0;
  for (const entry of await readdir(realDir)) {
    if (!pattern.test(entry)) continue;
    const p = join(base, entry);
    const lst = await lstat(join(realDir, entry));
    const real = await checkedRealPath(join(realDir, entry), realRoots);
    const mtime = await newestMtime(real);
    if (mtime.getTime() > settledBefore) {
      unsettled++;
      continue;
    }
    candidates.push({ path: p, realPath: real, isDirectory: lst.isDirectory() || (await stat(real)).isDirectory(), mtime });
  }
  if (candidates.length === 0) {
    const why = unsettled ? ` (${unsettled} matching file(s) changed within the settle time of ${settle / 1000}s)` : '';
    throw new SourceError(unsettled ? 'SOURCE_UNSETTLED' : 'SOURCE_NOT_FOUND', `no backup matching "${source.match}" in ${source.path}${why}`);
  }
  candidates.sort((a, b) => b.mtime.getTime() - a.mtime.getTime() || (a.path < b.path ? 1 : -1));
  return candidates[0]!;
}

export interface BackupDigest {
  sha256: string;
  sizeBytes: number;
}

async function hashFile(path: string, onChunk?: (chunk: Buffer) => Promise<void>): Promise<BackupDigest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    size += buf.length;
    if (onChunk) await onChunk(buf);
  }
  return { sha256: hash.digest('hex'), sizeBytes: size };
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out;
}

/**
 * SHA-256 and size, streamed. A folder's hash is the SHA-256 of its sorted
 * manifest lines `<relative path>  <sha256>` (sha256sum's format), so it can
 * be recomputed by hand with `find . -type f | sort | xargs sha256sum`.
 */
export async function digestBackup(b: ResolvedBackup, onChunk?: (chunk: Buffer) => Promise<void>): Promise<BackupDigest> {
  if (!b.isDirectory) return hashFile(b.realPath, onChunk);
  const manifest = createHash('sha256');
  let size = 0;
  // bytewise order of the full paths, as `LC_ALL=C sort` gives
  const files = (await listFiles(b.realPath)).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  for (const rel of files) {
    const d = await hashFile(join(b.realPath, ...rel.split('/')));
    manifest.update(`${d.sha256}  ./${rel.split(sep).join('/')}\n`);
    size += d.sizeBytes;
  }
  return { sha256: manifest.digest('hex'), sizeBytes: size };
}
