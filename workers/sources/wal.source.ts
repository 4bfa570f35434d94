import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BaseBackupSource } from '../../services/plans/plan.types.js';
import { HISTORY, isWalName, SEGMENT } from '../drivers/postgres/wal-chain.js';
import { resolveBackup, SourceError, type BackupDigest, type ResolvedBackup } from './file.source.js';

/**
 * A WAL archive folder (decisions/020): found with the same resolution and
 * checks as every backup (inside the tenant's roots, also through `..` and
 * symlinks), then its files listed. The archive is written to all the time,
 * so it is never refused as unsettled: a file changed within the settle
 * time is left out instead (replay cannot use a segment half copied).
 */
export interface WalArchive {
  backup: ResolvedBackup;
  /** The names restore_command may hand out, sorted: settled regular files named like WAL. */
  names: string[];
  /** Sizes and times of those files, by name. */
  files: Map<string, { size: number; mtime: Date }>;
  /** Timeline history files' contents (a few bytes each), by timeline. */
  histories: Map<number, string>;
  /** Files left out: changed within the settle time, or not named like WAL. */
  unsettled: number;
  foreign: number;
  /** The segment size (the size of a full segment file), or undefined when the archive has no segment. */
  segBytes?: number;
}

const HISTORY_MAX = 1024 * 1024;

export async function resolveWalArchive(source: BaseBackupSource, roots: string[], settleSeconds: number, now: Date, tenant: string): Promise<WalArchive> {
  // settle 0: the folder as a whole is never "still being written"; its files are judged one by one
  const backup = await resolveBackup({ type: 'file', path: source.wal, select: 'newest', settleSeconds: 0 }, roots, 0, now, tenant);
  const settledBefore = now.getTime() - (source.settleSeconds ?? settleSeconds) * 1000;
  const files = new Map<string, { size: number; mtime: Date }>();
  const histories = new Map<number, string>();
  let unsettled = 0;
  let foreign = 0;
  const sizes = new Map<number, number>();
  if (!backup.isDirectory) throw new SourceError('SOURCE_NOT_FOUND', `the WAL archive ${source.wal} is not a folder`);
  for (const name of (await readdir(backup.realPath)).sort()) {
    const st = await lstat(join(backup.realPath, name));
    if (!st.isFile() || !isWalName(name)) {
      foreign++;
      continue;
    }
    if (st.mtime.getTime() > settledBefore) {
      unsettled++;
      continue;
    }
    files.set(name, { size: st.size, mtime: st.mtime });
    if (SEGMENT.test(name)) sizes.set(st.size, (sizes.get(st.size) ?? 0) + 1);
    const h = HISTORY.exec(name);
    if (h && st.size <= HISTORY_MAX) histories.set(parseInt(h[1]!, 16), await readSmall(join(backup.realPath, name)));
  }
  // a full segment is a power of two from 1 MiB to 1 GiB; the most common such size is the archive's
  const segBytes = [...sizes.entries()].filter(([s]) => s >= 2 ** 20 && s <= 2 ** 30 && (s & (s - 1)) === 0).sort((a, b) => b[1] - a[1])[0]?.[0];
  return { backup, names: [...files.keys()], files, histories, unsettled, foreign, ...(segBytes !== undefined && { segBytes }) };
}

async function readSmall(path: string): Promise<string> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(HISTORY_MAX);
    const { bytesRead } = await fh.read(buf, 0, HISTORY_MAX, 0);
    return buf.subarray(0, bytesRead).toString('latin1');
  } finally {
    await fh.close();
  }
}

/** SHA-256 manifest of the listed files (sha256sum's format, as for a folder backup), streamed. */
export async function digestFiles(dir: string, names: string[], signal?: AbortSignal): Promise<BackupDigest> {
  const manifest = createHash('sha256');
  let size = 0;
  for (const name of names) {
    signal?.throwIfAborted();
    const fh = await open(join(dir, name), constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    try {
      const hash = createHash('sha256');
      for await (const chunk of fh.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false })) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
      manifest.update(`${hash.digest('hex')}  ./${name}\n`);
    } finally {
      await fh.close();
    }
  }
  return { sha256: manifest.digest('hex'), sizeBytes: size };
}
