import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import tar from 'tar-stream';
import type Docker from 'dockerode';
import { listBackupFiles, SourceError, type BackupDigest, type FileIdentity, type ResolvedBackup } from '../sources/file.source.js';

/** The backup's name inside the sandbox: fixed, so no name from the backup's host ever reaches a tool's argv. */
export const BACKUP_NAME = 'backup';

/**
 * Streams the backup into the (created, not yet started) sandbox's data area
 * as a tar, hashing every byte on the way: the bytes the restore reads are the
 * bytes this digest describes. Files arrive read-only (0444, owned by root),
 * so nothing in the sandbox can change them. Never holds the backup in memory.
 */
export async function copyIntoSandbox(
  container: Docker.Container,
  backup: ResolvedBackup,
  /** An existing folder in the sandbox (the data area). */
  destDir: string,
  /** The folder created in it for the backup. */
  folder: string,
  signal: AbortSignal,
  /** Owned by this user and writable for it; default root's and read-only. */
  owner?: { uid: number; gid: number },
  /** Of a folder, only these files (relative paths), e.g. the settled segments of a WAL archive. */
  only?: string[],
): Promise<BackupDigest & { identity?: FileIdentity }> {
  const uid = owner?.uid ?? 0;
  const gid = owner?.gid ?? 0;
  const dirMode = owner ? 0o755 : 0o555;
  const fileMode = owner ? 0o644 : 0o444;
  const top = `${folder}/${BACKUP_NAME}`;
  const pack = tar.pack();
  const files = backup.isDirectory ? only ?? await listBackupFiles(backup.realPath) : [''];
  const manifest = createHash('sha256');
  let single: string | undefined;
  let identity: FileIdentity | undefined;
  let size = 0;
  const mtime = new Date(0);

  const produce = (async () => {
    pack.entry({ name: folder, type: 'directory', mode: dirMode, uid, gid, mtime });
    if (backup.isDirectory) pack.entry({ name: top, type: 'directory', mode: dirMode, uid, gid, mtime });
    const dirs = new Set<string>();
    for (const rel of files) {
      signal.throwIfAborted();
      const path = backup.isDirectory ? join(backup.realPath, ...rel.split('/')) : backup.realPath;
      const name = backup.isDirectory ? `${top}/${rel}` : top;
      // parent folders first, so they get their mode (tar-stream does not make them)
      const parts = rel.split('/').slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const d = parts.slice(0, i).join('/');
        if (!dirs.has(d)) {
          dirs.add(d);
          pack.entry({ name: `${top}/${d}`, type: 'directory', mode: dirMode, uid, gid, mtime });
        }
      }
      const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw new SourceError('SOURCE_NOT_REGULAR', `${rel || backup.path} is not a regular file (any more)`);
        const hash = createHash('sha256');
        let n = 0;
        // the file's own time: a file backup's freshness is its newest file
        const entry = pack.entry({ name, size: st.size, mode: fileMode, uid, gid, mtime: st.mtime, type: 'file' });
        if (st.size > 0) {
          await pipeline(
            fh.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false, end: st.size - 1, signal }),
            new Writable({
              write(chunk: Buffer, _enc, cb) {
                hash.update(chunk);
                n += chunk.length;
                if (entry.write(chunk)) cb();
                else entry.once('drain', () => cb());
              },
            }),
          );
        }
        // a file that grew or shrank while it was copied cannot be the one that was hashed before
        if (n !== st.size) throw new SourceError('SOURCE_NOT_REGULAR', `${rel || backup.path} changed size while it was copied`);
        await new Promise<void>((resolve, reject) => entry.end((err?: Error | null) => (err ? reject(err) : resolve())));
        const digest = hash.digest('hex');
        size += n;
        if (backup.isDirectory) manifest.update(`${digest}  ./${rel}\n`);
        else {
          single = digest;
          identity = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
        }
      } finally {
        await fh.close();
      }
    }
    pack.finalize();
  })();
  // the pack's error is seen through produce and putArchive; without a listener a destroy after a stop
  // (when the engine no longer reads the upload) would be an uncaught exception that ends the worker
  pack.on('error', () => undefined);
  // destroyed without an error: a streamx pack passes an error on to its open entry, which nobody listens to
  produce.catch(() => pack.destroy());
  // a stop ends the upload from our side too, whatever the engine does with the half-sent archive
  const onAbort = () => pack.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.all([container.putArchive(pack as unknown as NodeJS.ReadableStream, { path: destDir }), produce]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  return { sha256: single ?? manifest.digest('hex'), sizeBytes: size, ...(identity && { identity }) };
}
