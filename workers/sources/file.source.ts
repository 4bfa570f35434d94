import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
import type { FileSource } from '../../services/plans/plan.types.js';
import { isInside as inside } from '../../services/sandbox-policy.js';

export class SourceError extends Error {
  constructor(public readonly code: 'SOURCE_NOT_FOUND' | 'SOURCE_REFUSED' | 'SOURCE_UNSETTLED' | 'SOURCE_NOT_REGULAR', message: string) {
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

/** What a backup may be: a regular file, or a folder (of regular files, checked while walking it). */
function kindOf(st: Stats): string | undefined {
  if (st.isFile() || st.isDirectory()) return undefined;
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function refuseNonRegular(st: Stats, path: string): void {
  const kind = kindOf(st);
  // stat never opens: a FIFO is refused here, before anything could block on it
  if (kind) throw new SourceError('SOURCE_NOT_REGULAR', `${path} is ${kind}; only regular files and folders of them are backups`);
}

/** A glob on names (`*`, `?`, `[abc]`) as a RegExp; the name is data, matched, never interpreted. */
export function globToRegExp(glob: string): RegExp {
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
async function newestMtime(path: string, shown: string, top = true): Promise<Date> {
  // the top level was resolved inside the roots already; below it nothing is followed
  const st = top ? await stat(path) : await lstat(path);
  refuseNonRegular(st, top ? shown : `${shown} (inside the folder dump)`);
  if (!st.isDirectory()) return st.mtime;
  let newest = st.mtime;
  for (const entry of await readdir(path)) {
    const m = await newestMtime(join(path, entry), join(shown, entry), false);
    if (m > newest) newest = m;
  }
  return newest;
}

async function checkedRealPath(path: string, realRoots: string[], tenantName: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw new SourceError('SOURCE_NOT_FOUND', `backup path ${path} does not exist`);
  }
  if (!realRoots.some((r) => inside(real, r))) {
    throw new SourceError('SOURCE_REFUSED', `backup path ${path} leads outside the backup roots of tenant ${tenantName}`);
  }
  return real;
}

/**
 * Picks the backup a plan points at, refusing anything outside the roots
 * (also through `..` or symlinks) and anything still being written.
 */
export async function resolveBackup(source: FileSource, roots: string[], settleSeconds: number, now: Date, tenant = 'default'): Promise<ResolvedBackup> {
  if (roots.length === 0) {
    throw new SourceError('SOURCE_REFUSED', `tenant ${tenant} has no backup roots (the operator assigns them: ERNSTFALL_BACKUP_ROOTS, ERNSTFALL_TENANT_ROOTS_FILE); nothing may be read`);
  }
  const base = isAbsolute(source.path) ? resolve(source.path) : resolve(roots[0]!, source.path);
  if (!roots.some((r) => inside(base, r))) {
    throw new SourceError('SOURCE_REFUSED', `backup path ${source.path} is outside the backup roots of tenant ${tenant}`);
  }
  const realRoots = await Promise.all(roots.map((r) => realpath(r).catch(() => r)));
  const settle = (source.settleSeconds ?? settleSeconds) * 1000;
  const settledBefore = now.getTime() - settle;

  if (!source.match) {
    const real = await checkedRealPath(base, realRoots, tenant);
    const mtime = await newestMtime(real, source.path);
    if (mtime.getTime() > settledBefore) {
      throw new SourceError('SOURCE_UNSETTLED', `backup ${source.path} was changed ${Math.round((now.getTime() - mtime.getTime()) / 1000)}s ago and may still be written (settle time ${settle / 1000}s)`);
    }
    return { path: base, realPath: real, isDirectory: (await stat(real)).isDirectory(), mtime };
  }

  const realDir = await checkedRealPath(base, realRoots, tenant);
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
    const real = await checkedRealPath(join(realDir, entry), realRoots, tenant);
    const mtime = await newestMtime(real, p);
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

export interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
}

async function hashFile(path: string, onChunk?: (chunk: Buffer) => Promise<void>, signal?: AbortSignal): Promise<BackupDigest & { identity: FileIdentity }> {
  // O_NONBLOCK: should a FIFO have been swapped in after the checks, opening it does not wait for a writer;
  // O_NOFOLLOW: a link swapped in is refused. The file's own fstat decides, not the name.
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP') throw new SourceError('SOURCE_NOT_REGULAR', `${path} became a symbolic link while it was read`);
    throw err;
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SourceError('SOURCE_NOT_REGULAR', `${path} is not a regular file (any more); it is not read`);
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of fh.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false })) {
      signal?.throwIfAborted();
      const buf = chunk as Buffer;
      hash.update(buf);
      size += buf.length;
      if (onChunk) await onChunk(buf);
    }
    return { sha256: hash.digest('hex'), sizeBytes: size, identity: { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs } };
  } finally {
    await fh.close();
  }
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else if (e.isFile()) out.push(rel);
    // links are never followed inside a folder dump: what is hashed must be what is in the folder
    else throw new SourceError('SOURCE_NOT_REGULAR', `${rel} inside the folder dump is not a regular file (link, FIFO, socket or device)`);
  }
  return out;
}

/** The regular files of a folder dump, relative, in bytewise order of the full paths (as `LC_ALL=C sort` gives). */
export async function listBackupFiles(dir: string): Promise<string[]> {
  return (await listFiles(dir)).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
}

/**
 * SHA-256 and size, streamed. A folder's hash is the SHA-256 of its sorted
 * manifest lines `<relative path>  <sha256>` (sha256sum's format), so it can
 * be recomputed by hand with `find . -type f | sort | xargs sha256sum`.
 */
export async function digestBackup(b: ResolvedBackup, onChunk?: (chunk: Buffer) => Promise<void>, signal?: AbortSignal): Promise<BackupDigest & { identity?: FileIdentity }> {
  if (!b.isDirectory) return hashFile(b.realPath, onChunk, signal);
  const manifest = createHash('sha256');
  let size = 0;
  const files = await listBackupFiles(b.realPath);
  for (const rel of files) {
    const d = await hashFile(join(b.realPath, ...rel.split('/')), undefined, signal);
    manifest.update(`${d.sha256}  ./${rel.split(sep).join('/')}\n`);
    size += d.sizeBytes;
  }
  return { sha256: manifest.digest('hex'), sizeBytes: size };
}

/** A secret file is a few bytes: a password, a passphrase. */
const SECRET_MAX_BYTES = 4096;

/**
 * Reads a repository's password or passphrase file for one run: inside the
 * tenant's roots (also through symlinks), a regular file of at most 4 KiB.
 * The content is handed to the tool in the sandbox as a file and never
 * logged, stored or put into argv; errors name the path, never the content.
 */
export async function readSecretFile(path: string, roots: string[], tenant: string, what: string): Promise<Buffer> {
  if (roots.length === 0) throw new SourceError('SOURCE_REFUSED', `tenant ${tenant} has no backup roots; ${what} cannot be read`);
  const base = isAbsolute(path) ? resolve(path) : resolve(roots[0]!, path);
  if (!roots.some((r) => inside(base, r))) throw new SourceError('SOURCE_REFUSED', `${what} ${path} is outside the backup roots of tenant ${tenant}`);
  const realRoots = await Promise.all(roots.map((r) => realpath(r).catch(() => r)));
  let real: string;
  try {
    real = await realpath(base);
  } catch {
    throw new SourceError('SOURCE_NOT_FOUND', `${what} ${path} does not exist`);
  }
  if (!realRoots.some((r) => inside(real, r))) throw new SourceError('SOURCE_REFUSED', `${what} ${path} leads outside the backup roots of tenant ${tenant}`);
  const fh = await open(real, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SourceError('SOURCE_NOT_REGULAR', `${what} ${path} is not a regular file`);
    if (st.size > SECRET_MAX_BYTES) throw new SourceError('SOURCE_REFUSED', `${what} ${path} is larger than ${SECRET_MAX_BYTES} bytes; it is not a password file`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
