import { open } from 'node:fs/promises';

/** What a file backup is, told from its first bytes (never from its name). */
export type FilesFormat = 'folder' | 'tar' | 'tar.gz' | 'tar.zst' | 'tar.xz' | 'tar.bz2' | 'zip' | 'restic' | 'borg' | 'unknown';

/** The restore tool's argv for a format, reading the backup at `file` into `dest`; both are fixed paths of the sandbox. */
export function extractArgv(format: FilesFormat, file: string, dest: string): string[] | null {
  // GNU tar: never the archive's owners or modes; a member named outside dest (absolute, "..") is refused by tar itself
  const tar = (flag?: string) => ['tar', '-x', ...(flag ? [flag] : []), '-f', file, '-C', dest, '--no-same-owner', '--no-same-permissions', '--delay-directory-restore', '--'];
  switch (format) {
    case 'tar': return tar();
    case 'tar.gz': return tar('--gzip');
    case 'tar.zst': return tar('--zstd');
    case 'tar.xz': return tar('--xz');
    case 'tar.bz2': return tar('--bzip2');
    // unzip strips "../" and leading "/" from member names itself and says so; -qq: no list of names in the log
    case 'zip': return ['unzip', '-qq', '-o', file, '-d', dest];
    default: return null;
  }
}

/** The format from the magic bytes; a compressed stream is taken to hold a tar (the tool says so if not). */
export async function detectFormat(path: string): Promise<FilesFormat> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    const b = head.subarray(0, bytesRead);
    const starts = (...bytes: number[]) => bytes.every((x, i) => b[i] === x);
    if (starts(0x1f, 0x8b)) return 'tar.gz';
    if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'tar.zst';
    if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'tar.xz';
    if (starts(0x42, 0x5a, 0x68)) return 'tar.bz2';
    // a local file header, or the end record of an empty archive
    if (starts(0x50, 0x4b, 0x03, 0x04) || starts(0x50, 0x4b, 0x05, 0x06)) return 'zip';
    if (bytesRead >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return 'unknown';
  } finally {
    await fh.close();
  }
}

/**
 * What the restore tool's complaints mean. Archives are hostile input: a
 * member that names a place outside the restore folder is refused by the
 * tool and reported here, never followed.
 */
export function classifyToolOutput(format: FilesFormat, exitCode: number | null, stderr: string): {
  truncated: boolean; unreadable: boolean; refusedPaths: number; specialSkipped: number; otherErrors: string[];
} {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  let refusedPaths = 0;
  let specialSkipped = 0;
  let truncated = false;
  let unreadable = false;
  const otherErrors: string[] = [];
  for (const l of lines) {
    if (/Member name contains '\.\.'|Removing leading [`'"]?(\/|\.\.\/)|skipped "\.\.\/" path component|Removing leading .* from member names|stripped absolute path spec/i.test(l)) refusedPaths++;
    // a device node (a container's /dev in a Proxmox vzdump, say): only root may create one
    else if (/: Cannot mknod: Operation not permitted$|: socket ignored$/.test(l)) specialSkipped++;
    else if (/Unexpected EOF|premature end|unexpected end of (file|input)|Truncated (tar )?archive|compressed data is corrupt|invalid compressed data|Read error \(39\)|Data error|Unexpected end of input|Corrupted input|incomplete/i.test(l)) truncated = true;
    else if (/not in gzip format|Unknown frame descriptor|File format not recognized|does not look like a tar archive|This does not look like|cannot find zipfile directory|End-of-central-directory signature not found|not a zipfile|Archive contains obsolescent base-64 headers|Skipping to next header/i.test(l)) {
      // a zip told by its first bytes that lacks its directory (kept at the end) was cut short
      if (/Skipping to next header/i.test(l) || (format === 'zip' && /End-of-central-directory|cannot find zipfile directory/i.test(l))) truncated = true;
      else unreadable = true;
    } else if (/Exiting with failure status due to previous errors|^tar: Error is not recoverable/i.test(l)) {
      // tar's summary of the lines above
    } else otherErrors.push(l);
  }
  // unzip 9: no archive found (a cut zip loses its central directory at the end)
  if (format === 'zip' && exitCode === 9 && !unreadable) truncated = true;
  return { truncated, unreadable, refusedPaths, specialSkipped, otherErrors };
}
