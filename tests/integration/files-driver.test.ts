import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeTempDir } from '../fixtures/host-dumps.js';
import { touchNow } from '../fixtures/test-clock.js';

/**
 * Issue #11: file backups (a mirrored share, tar.zst, tar.gz, zip) restored
 * in the files sandbox and checked there, built here with the real tools.
 */
let h: Harness;
let dir: string;
let tree: string;
const FILES: Record<string, Buffer> = {};
let total = 0;

function fixtureFiles(): Record<string, Buffer> {
  const pdf = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), randomBytes(200)]);
  return {
    'Bauamt/Anträge/Bauantrag-2026-Müller.pdf': pdf,
    'Bauamt/Pläne/Lageplan Flurstück 12.png': png,
    'Kämmerei/Haushalt 2026.csv': Buffer.from('Konto;Betrag\n4711;1200,50\n0815;-300,00\n'),
    'Standesamt/Urkunden/Geburt Ä Ö Ü ß.txt': Buffer.from('Geburtsurkunde\n'),
    '-beginnt-mit-strich.txt': Buffer.from('Name beginnt mit einem Strich\n'),
    'Archiv/gross.bin': randomBytes(8 * 1024 * 1024),
  };
}

async function tarball(name: string, flag: string[], from = tree): Promise<string> {
  const out = join(dir, name);
  execFileSync('tar', ['-c', ...flag, '-f', out, '-C', from, '.']);
  await touchNow(out);
  return out;
}

beforeAll(async () => {
  dir = await makeTempDir('ef-files-');
  tree = join(dir, 'share');
  Object.assign(FILES, fixtureFiles());
  for (const [rel, content] of Object.entries(FILES)) {
    await mkdir(join(tree, rel, '..'), { recursive: true });
    await writeFile(join(tree, rel), content);
    total += content.length;
  }
  // the manifest a backup job writes next to the data: every file with its hash
  const list = execFileSync('find', ['.', '-type', 'f', '-print0'], { cwd: tree }).toString().split('\0').filter(Boolean).sort();
  const manifest = execFileSync('sha256sum', ['--', ...list], { cwd: tree });
  await writeFile(join(tree, 'MANIFEST.sha256'), manifest);
  // written now by the tests' clock (npm run test:date-ahead moves it, not the kernel's file times): the
  // members' times (the newest file against the RPO) and each backup's own
  await touchNow(tree);
  await tarball('share.tar.zst', ['--zstd']);
  await tarball('share.tar.gz', ['--gzip']);
  execFileSync('zip', ['-q', '-r', join(dir, 'share.zip'), '.'], { cwd: tree });
  await touchNow(join(dir, 'share.zip'));
  await cp(tree, join(dir, 'mirror'), { recursive: true, preserveTimestamps: true });
  await touchNow(join(dir, 'mirror'));
  h = await startHarness({ backupRoot: dir });
});
afterAll(async () => {
  await h?.close();
  await rm(dir, { recursive: true, force: true });
});

const fileCount = () => Object.keys(FILES).length + 1; // + the manifest
function filesPlan(id: string, path: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id, title: `Dateien ${id}`,
    targets: { rto: '1h', rpo: '26h' },
    source: { type: 'file', path },
    restore: { driver: 'files' },
    sandbox: { memory: '512m', cpus: 1, timeout: '10m' },
    checks: [
      { files: { min: fileCount() } },
      { bytes: { min: total } },
      { exists: { path: ['Standesamt/Urkunden/Geburt Ä Ö Ü ß.txt', 'Bauamt/Anträge', '-beginnt-mit-strich.txt'] } },
      { manifest: { file: 'MANIFEST.sha256' } },
    ],
    ...over,
  };
}
async function run(id: string, path: string, over: Record<string, unknown> = {}) {
  await h.putPlan(filesPlan(id, path, over));
  return h.waitForRun(await h.trigger(id));
}
const codes = (r: { findings: { code: string }[] }) => r.findings.map((f) => f.code);

describe('files driver: a share restored and checked in its sandbox', () => {
  it.each([
    ['tar.zst', 'share.tar.zst'],
    ['tar.gz', 'share.tar.gz'],
    ['zip', 'share.zip'],
    ['folder', 'mirror'],
  ])('%s: passed, with exact counts, every path found and every hash of the manifest', async (format, name) => {
    const r = await run(`files-${format.replace('.', '-')}`, join(dir, name));
    expect(r.verdict, JSON.stringify({ findings: r.findings, checks: r.checks })).toBe('passed');
    expect(r.backup.format).toBe(format);
    if (format !== 'folder') {
      // read once: hashed on its way into the sandbox, the record still holds the file's own hash and size
      const bytes = await readFile(join(dir, name));
      expect(r.backup.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(r.backup.sizeBytes).toBe(bytes.length);
    }
    expect(r.restore).toMatchObject({ files: fileCount(), unreadable: 0 });
    expect(r.restore.bytes).toBe(total + (await stat(join(tree, 'MANIFEST.sha256'))).size);
    expect(r.checks.map((c: { status: string }) => c.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    expect(r.checks[3].actual).toBe(`${fileCount() - 1} von ${fileCount() - 1}`);
    // the restored tree in names and numbers, the baseline for later runs; no content
    expect(r.restore.profile.top.map((t: { name: string }) => t.name).sort()).toEqual(['.', 'Archiv', 'Bauamt', 'Kämmerei', 'Standesamt']);
    expect(JSON.stringify(r)).not.toContain('Geburtsurkunde');
    if (format !== 'folder') expect(r.restore.tool).toMatchObject({ name: format === 'zip' ? 'unzip' : 'tar', exitCode: 0 });
  });

  it('a truncated tar.zst and a truncated zip: ARCHIVE_TRUNCATED, never passed', async () => {
    for (const [name, id] of [['share.tar.zst', 'cut-zst'], ['share.zip', 'cut-zip']] as const) {
      const cut = join(dir, `cut-${name}`);
      await cp(join(dir, name), cut);
      await truncate(cut, Math.floor((await stat(cut)).size / 2));
      const r = await run(id, cut);
      expect(r.verdict, JSON.stringify(r.findings)).toBe('failed');
      expect(codes(r)).toContain('ARCHIVE_TRUNCATED');
    }
  });

  it('a file changed after the manifest was written: the manifest check fails naming it; a missing path fails exists', async () => {
    const bad = join(dir, 'bad');
    await cp(tree, bad, { recursive: true });
    await writeFile(join(bad, 'Kämmerei/Haushalt 2026.csv'), 'Konto;Betrag\n4711;9999,99\n');
    await rm(join(bad, '-beginnt-mit-strich.txt'));
    const r = await run('files-bad', await tarball('bad.tar.zst', ['--zstd'], bad));
    expect(r.verdict).toBe('failed');
    const [, , exists, manifest] = r.checks;
    expect(exists).toMatchObject({ status: 'failed', actual: '2 von 3', message: 'fehlt: -beginnt-mit-strich.txt' });
    expect(manifest.status).toBe('failed');
    expect(manifest.message).toContain('anderer Hash: 1 (Kämmerei/Haushalt 2026.csv)');
    expect(manifest.message).toContain('fehlt: 1 (-beginnt-mit-strich.txt)');
  });

  it('a manifest beside the archive (as a backup job writes it): passed with every hash; a changed, a missing or a linked one never passes', async () => {
    const folder = join(dir, 'beside');
    await mkdir(folder);
    const archive = join(folder, 'share-2026-12-06.tar.zst');
    await cp(join(dir, 'share.tar.zst'), archive);
    await touchNow(archive);
    // written from the share's root, as `cd share && sha256sum ./… > ../share-….tar.zst.sha256` does
    const listed = execFileSync('find', ['.', '-type', 'f', '!', '-name', 'MANIFEST.sha256', '-print0'], { cwd: tree }).toString().split('\0').filter(Boolean).sort();
    const manifest = execFileSync('sha256sum', ['--', ...listed], { cwd: tree });
    await writeFile(`${archive}.sha256`, manifest);
    const beside = { checks: [{ manifest: { beside: '{name}.sha256' } }] };
    const r = await run('files-beside', archive, beside);
    expect(r.verdict, JSON.stringify(r.checks)).toBe('passed');
    expect(r.checks[0]).toMatchObject({ status: 'passed', actual: `${listed.length} von ${listed.length}` });
    // the manifest that judged the run is named and hashed in the result
    const sha = createHash('sha256').update(manifest).digest('hex');
    expect(r.checks[0].expected).toContain(`share-2026-12-06.tar.zst.sha256, sha256 ${sha.slice(0, 16)}`);

    // one hash changed in the manifest (or the file in the archive, which is the same finding)
    const changed = manifest.toString().replace(/^[0-9a-f]{64}(?= {2}\.\/Kämmerei)/m, '0'.repeat(64));
    await writeFile(`${archive}.sha256`, changed);
    const bad = await run('files-beside', archive, beside);
    expect(bad.verdict).toBe('failed');
    expect(bad.checks[0].message).toContain('anderer Hash: 1 (Kämmerei/Haushalt 2026.csv)');

    await rm(`${archive}.sha256`);
    const missing = await run('files-beside', archive, beside);
    expect(missing.verdict).toBe('failed');
    expect(missing.checks[0]).toMatchObject({ status: 'failed', message: 'das Manifest share-2026-12-06.tar.zst.sha256 fehlt neben der Sicherung' });

    // a link beside the archive is not followed, wherever it points
    await writeFile(join(dir, 'elsewhere.sha256'), manifest);
    await symlink(join(dir, 'elsewhere.sha256'), `${archive}.sha256`);
    const linked = await run('files-beside', archive, beside);
    expect(linked.verdict).toBe('failed');
    expect(linked.checks[0].message).toContain('symbolischer Link');
  });

  it('a Proxmox container backup (vzdump of an LXC: tar.zst with device nodes, a FIFO, absolute links, foreign owners): passed, the device nodes counted as skipped', async () => {
    // laid out as vzdump writes it (numeric owners of an unprivileged container, ./etc/vzdump/pct.conf); built with Python's
    // tarfile so the device nodes need no root here
    const raw = join(dir, 'vzdump.tar');
    const script = [
      'import io, sys, tarfile',
      'def add(t, name, kind=tarfile.REGTYPE, data=b"", **kw):',
      '    i = tarfile.TarInfo(name); i.type = kind; i.uid = i.gid = 100000; i.mode = kw.pop("mode", 0o644); i.mtime = 1796594400',
      '    for k, v in kw.items(): setattr(i, k, v)',
      '    i.size = len(data) if kind == tarfile.REGTYPE else 0',
      '    t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)',
      'with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:',
      '    for d in [".", "./etc", "./etc/vzdump", "./dev", "./usr", "./usr/bin", "./var", "./var/lib", "./var/lib/app"]: add(t, d, tarfile.DIRTYPE, mode=0o755)',
      '    add(t, "./etc/hostname", data=b"fs-bauamt\\n")',
      '    add(t, "./etc/vzdump/pct.conf", data=b"arch: amd64\\nhostname: fs-bauamt\\nmemory: 2048\\n", uid=0, gid=0)',
      '    add(t, "./dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)',
      '    add(t, "./dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660)',
      '    add(t, "./dev/initctl", tarfile.FIFOTYPE, mode=0o600)',
      '    add(t, "./usr/bin/busybox", data=b"\\x7fELF" + b"\\0" * 60, mode=0o755)',
      '    add(t, "./usr/bin/sh", tarfile.SYMTYPE, linkname="/usr/bin/busybox", mode=0o777)',
      '    add(t, "./var/lib/app/data.csv", data=b"id;name\\n1;Akte\\n")',
      '    add(t, "./var/lib/app/data-link.csv", tarfile.LNKTYPE, linkname="./var/lib/app/data.csv")',
    ].join('\n');
    execFileSync('python3', ['-c', script, raw]);
    const archive = join(dir, 'vzdump-lxc-101-2026_12_06-22_00_03.tar.zst');
    execFileSync('zstd', ['-q', '-f', '--rm', raw, '-o', archive]);
    const r = await run('files-vzdump', archive, {
      checks: [
        { files: { min: 5 } },
        { exists: { path: ['etc/vzdump/pct.conf', 'var/lib/app/data.csv', 'usr/bin/sh'] } },
      ],
    });
    expect(r.verdict, JSON.stringify({ findings: r.findings, checks: r.checks })).toBe('passed');
    expect(r.findings).toContainEqual(expect.objectContaining({ code: 'SPECIAL_FILES_SKIPPED', severity: 'info', message: expect.stringMatching(/^2 device node/) }));
    expect(codes(r)).not.toContain('RESTORE_ERROR');
    // hostname, pct.conf, busybox, data.csv and its hard link; the link and the FIFO are listed, never followed or read
    expect(r.restore).toMatchObject({ files: 5, symlinks: 1, unreadable: 0 });
    expect(r.restore.tool).toMatchObject({ name: 'tar', exitCode: 2 });
  });

  it('an empty archive: EMPTY_RESTORE; bytes that are no archive: ARCHIVE_UNREADABLE', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    const r = await run('files-empty', await tarball('empty.tar.gz', ['--gzip'], empty), { checks: [] });
    expect(r.verdict).toBe('failed');
    expect(codes(r)).toContain('EMPTY_RESTORE');
    const junk = join(dir, 'junk.bin');
    await writeFile(junk, randomBytes(4096));
    const j = await run('files-junk', junk, { checks: [] });
    expect(j.verdict).toBe('failed');
    expect(codes(j)).toContain('ARCHIVE_UNREADABLE');
  });

  it('hostile archive: members named outside the tree are refused (ARCHIVE_PATHS_REFUSED, failed), nothing is written there', async () => {
    const evil = join(dir, 'evil.tar');
    // python's tarfile writes the names as given; GNU tar would not
    execFileSync('python3', ['-c', `
import io, tarfile, sys
with tarfile.open(sys.argv[1], 'w') as t:
    for name, data in [('ok.txt', b'ok\\n'), ('../../srv/ef/ef-inventory.py', b'print("lie")\\n'), ('/tmp/evil.txt', b'x\\n')]:
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
`, evil]);
    const r = await run('files-evil', evil, { checks: [{ files: { min: 1 } }] });
    expect(r.verdict, JSON.stringify(r.findings)).toBe('failed');
    expect(codes(r)).toContain('ARCHIVE_PATHS_REFUSED');
    // the inventory ran as ernstfall wrote it: it found the one honest file (and the stripped absolute one)
    expect(r.restore.files).toBeGreaterThanOrEqual(1);
    expect(r.restore.files).toBeLessThanOrEqual(2);
  });

  it('plans: SQL checks do not fit the files driver, file checks do not fit postgres, builtin is for databases', async () => {
    const sql = await h.request('PUT', '/api/v1/plans/files-sql', filesPlan('files-sql', join(dir, 'share.zip'), { checks: [{ name: 'x', sql: 'select 1', expect: '== 1' }] }));
    expect(sql.status).toBe(400);
    expect(JSON.stringify(sql.body)).toContain('a sql check does not fit the files driver');
    const pg = await h.request('PUT', '/api/v1/plans/pg-files', {
      id: 'pg-files', title: 'x', targets: { rto: '1h', rpo: '1d' }, source: { type: 'file', path: join(dir, 'x.dump') },
      restore: { driver: 'postgres', database: 'app' }, checks: [{ files: { min: 1 } }],
    });
    expect(pg.status).toBe(400);
    expect(JSON.stringify(pg.body)).toContain('a files check does not fit the postgres driver');
    const db = await h.request('PUT', '/api/v1/plans/files-db', filesPlan('files-db', join(dir, 'share.zip'), { restore: { driver: 'files', database: 'app' } }));
    expect(db.status).toBe(400);
    expect(JSON.stringify(db.body)).toContain('\\"database\\" is not a key of the files driver');
    const paths = await h.request('PUT', '/api/v1/plans/files-dotdot', filesPlan('files-dotdot', join(dir, 'share.zip'), { checks: [{ exists: { path: '../etc/passwd' } }] }));
    expect(paths.status).toBe(400);
    expect(JSON.stringify(paths.body)).toContain('without \\"..\\"');
  });
});
