import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, writeFile, symlink, utimes, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { digestBackup, resolveBackup, SourceError } from '../../workers/sources/file.source.js';

let root: string;
let outside: string;
const old = new Date(Date.now() - 3600_000);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ef-root-'));
  outside = await mkdtemp(join(tmpdir(), 'ef-outside-'));
  await mkdir(join(root, 'ewo'));
  for (const [name, minutesAgo] of [['ewo-1.dump', 90], ['ewo-2.dump', 70], ['other.txt', 10]] as const) {
    await writeFile(join(root, 'ewo', name), name);
    const t = new Date(Date.now() - minutesAgo * 60_000);
    await utimes(join(root, 'ewo', name), t, t);
  }
  await writeFile(join(outside, 'secret.dump'), 'not yours');
  await utimes(join(outside, 'secret.dump'), old, old);
  await symlink(join(outside, 'secret.dump'), join(root, 'ewo', 'ewo-9-link.dump'));
  await symlink(outside, join(root, 'escape'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: SourceError) => e.code);

describe('resolveBackup', () => {
  it('picks the newest settled file matching the pattern', async () => {
    const b = await resolveBackup({ type: 'file', path: join(root, 'ewo'), match: 'ewo-[0-9].dump', select: 'newest' }, [root], 60, new Date());
    expect(b.path).toBe(join(root, 'ewo', 'ewo-2.dump'));
  });
  it('resolves a relative path against the first root', async () => {
    const b = await resolveBackup({ type: 'file', path: 'ewo/ewo-1.dump', select: 'newest' }, [root], 60, new Date());
    expect(b.realPath).toBe(join(root, 'ewo', 'ewo-1.dump'));
  });
  it('refuses a path outside the roots, a symlink leading out, and a folder link leading out', async () => {
    expect(await code(resolveBackup({ type: 'file', path: join(outside, 'secret.dump'), select: 'newest' }, [root], 0, new Date()))).toBe('SOURCE_REFUSED');
    expect(await code(resolveBackup({ type: 'file', path: join(root, 'ewo', 'ewo-9-link.dump'), select: 'newest' }, [root], 0, new Date()))).toBe('SOURCE_REFUSED');
    expect(await code(resolveBackup({ type: 'file', path: join(root, 'escape'), match: '*.dump', select: 'newest' }, [root], 0, new Date()))).toBe('SOURCE_REFUSED');
    expect(await code(resolveBackup({ type: 'file', path: join(root, 'ewo'), match: 'ewo-*.dump', select: 'newest' }, [root], 0, new Date()))).toBe('SOURCE_REFUSED');
    expect(await code(resolveBackup({ type: 'file', path: join(root, '..', 'x'), select: 'newest' }, [root], 0, new Date()))).toBe('SOURCE_REFUSED');
    expect(await code(resolveBackup({ type: 'file', path: 'x.dump', select: 'newest' }, [], 0, new Date()))).toBe('SOURCE_REFUSED');
  });
  it('does not pick a file still being written, and says so', async () => {
    await writeFile(join(root, 'ewo', 'ewo-3.dump'), 'fresh');
    const now = new Date(); // written now by this test's clock (the kernel's may differ: test:date-ahead)
    await utimes(join(root, 'ewo', 'ewo-3.dump'), now, now);
    const b = await resolveBackup({ type: 'file', path: join(root, 'ewo'), match: 'ewo-[0-9].dump', select: 'newest' }, [root], 60, new Date());
    expect(b.path).toBe(join(root, 'ewo', 'ewo-2.dump'));
    expect(await code(resolveBackup({ type: 'file', path: join(root, 'ewo', 'ewo-3.dump'), select: 'newest' }, [root], 60, new Date()))).toBe('SOURCE_UNSETTLED');
    await rm(join(root, 'ewo', 'ewo-3.dump'));
  });
  it('reports a missing file and an empty match', async () => {
    expect(await code(resolveBackup({ type: 'file', path: 'nope.dump', select: 'newest' }, [root], 0, new Date()))).toBe('SOURCE_NOT_FOUND');
    expect(await code(resolveBackup({ type: 'file', path: join(root, 'ewo'), match: '*.sql', select: 'newest' }, [root], 0, new Date()))).toBe('SOURCE_NOT_FOUND');
  });
});

describe('digestBackup', () => {
  it('streams a file into SHA-256 and size', async () => {
    const b = await resolveBackup({ type: 'file', path: 'ewo/ewo-1.dump', select: 'newest' }, [root], 0, new Date());
    const d = await digestBackup(b);
    expect(d).toMatchObject({ sha256: createHash('sha256').update('ewo-1.dump').digest('hex'), sizeBytes: 10 });
    // the identity of the file that was read, from its open descriptor
    expect(d.identity).toMatchObject({ size: 10, ino: expect.any(Number) });
  });
  it('hashes a folder as its sha256sum manifest, reproducible by hand', async () => {
    const dir = join(root, 'dirdump');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'toc.dat'), 'toc');
    await writeFile(join(dir, '3001.dat.gz'), 'data');
    await writeFile(join(dir, 'sub', 'x'), 'x');
    const d = await digestBackup({ path: dir, realPath: dir, isDirectory: true, mtime: old });
    const byHand = execFileSync('bash', ['-c', 'cd "$1" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum', 'h', dir]).toString().split(' ')[0];
    expect(d.sha256).toBe(byHand);
    expect(d.sizeBytes).toBe(8);
  });
});
