import { describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyToolOutput, detectFormat, extractArgv } from '../../workers/drivers/files/archive.js';
import { extensionOf, showPath } from '../../workers/drivers/files/inventory.js';
import { globMatch } from '../../workers/drivers/files/repository.js';
import { familyOf, IndicatorScan, judge } from '../../workers/drivers/files/indicators.js';
import { evaluateFilesBuiltins } from '../../workers/drivers/files/builtins.js';
import { parsePlanText } from '../../services/plans/plan.parser.js';

const plan = (source: string, restore = '{ driver: files }', checks = '') =>
  parsePlanText(`id: share\ntitle: Share\ntargets: { rto: 1h, rpo: 1d }\nsource: ${source}\nrestore: ${restore}\n${checks}`, { file: 'share.yaml' });

describe('files driver: formats, tool output, names', () => {
  it('tells archives by their first bytes, never by their name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ef-fmt-'));
    const cases: [string, Buffer, string][] = [
      ['a.zip', Buffer.from('1f8b0800000000000003', 'hex'), 'tar.gz'],
      ['b.tar.gz', Buffer.from('28b52ffd0058', 'hex'), 'tar.zst'],
      ['c', Buffer.from('fd377a585a000004', 'hex'), 'tar.xz'],
      ['d', Buffer.from('425a6839314159', 'hex'), 'tar.bz2'],
      ['e.tar', Buffer.from('504b0304140000000800', 'hex'), 'zip'],
      ['f', Buffer.concat([Buffer.alloc(257), Buffer.from('ustar\u000000'), Buffer.alloc(300)]), 'tar'],
      ['g.tar.zst', Buffer.from('plain text, not an archive'), 'unknown'],
    ];
    for (const [name, bytes, format] of cases) {
      await writeFile(join(dir, name), bytes);
      expect(await detectFormat(join(dir, name)), name).toBe(format);
    }
  });

  it('the tools get fixed paths and flags only; zip and tar refuse members outside the tree themselves', () => {
    expect(extractArgv('tar.zst', '/srv/ef/ef-backup/backup', '/srv/ef/restored')).toEqual(
      ['tar', '-x', '--zstd', '-f', '/srv/ef/ef-backup/backup', '-C', '/srv/ef/restored', '--no-same-owner', '--no-same-permissions', '--delay-directory-restore', '--']);
    expect(extractArgv('zip', '/b', '/r')).toEqual(['unzip', '-qq', '-o', '/b', '-d', '/r']);
    expect(extractArgv('unknown', '/b', '/r')).toBeNull();
  });

  it('reads truncation, unreadable archives and refused paths from the tools\' words', () => {
    expect(classifyToolOutput('tar.zst', 2, 'zstd: /*stdin*\\: unexpected end of file\ntar: Unexpected EOF in archive\ntar: Error is not recoverable: exiting now')).toMatchObject({ truncated: true, refusedPaths: 0 });
    expect(classifyToolOutput('zip', 9, '  End-of-central-directory signature not found.')).toMatchObject({ truncated: true });
    expect(classifyToolOutput('tar.gz', 2, 'gzip: stdin: not in gzip format\ntar: Child returned status 1')).toMatchObject({ unreadable: true, truncated: false });
    expect(classifyToolOutput('tar', 2, "tar: ../../etc/x: Member name contains '..'\ntar: Removing leading `/' from member names\ntar: Exiting with failure status due to previous errors"))
      .toEqual({ truncated: false, unreadable: false, refusedPaths: 2, specialSkipped: 0, otherErrors: [] });
    expect(classifyToolOutput('tar', 0, '')).toEqual({ truncated: false, unreadable: false, refusedPaths: 0, specialSkipped: 0, otherErrors: [] });
    // device nodes of a container backup: counted, not errors; anything else beside them still is one
    expect(classifyToolOutput('tar.zst', 2, 'tar: ./dev/null: Cannot mknod: Operation not permitted\ntar: ./dev/sda: Cannot mknod: Operation not permitted\ntar: Exiting with failure status due to previous errors'))
      .toEqual({ truncated: false, unreadable: false, refusedPaths: 0, specialSkipped: 2, otherErrors: [] });
    expect(classifyToolOutput('tar', 2, 'tar: ./dev/null: Cannot mknod: Operation not permitted\ntar: ./x: Cannot open: Permission denied'))
      .toMatchObject({ specialSkipped: 1, otherErrors: ['tar: ./x: Cannot open: Permission denied'] });
  });

  it('names from a backup are shown escaped and bounded; extensions are lower case', () => {
    expect(showPath('Akte\n2026\u0007.pdf')).toBe('Akte\\x0a2026\\x07.pdf');
    expect(showPath('x'.repeat(400)).length).toBe(158);
    expect(extensionOf('Bauamt/Plan.PDF')).toBe('pdf');
    expect(extensionOf('.bashrc')).toBe('');
    expect(extensionOf('a/b.tar.zst')).toBe('zst');
    expect(globMatch('share-*', 'share-2026-12-05')).toBe(true);
    expect(globMatch('share-*', 'other-2026')).toBe(false);
    expect(globMatch('a.b', 'axb')).toBe(false);
  });
});

describe('files plans', () => {
  it('takes restic and borg repositories with their options', () => {
    const r = plan('{ type: restic, repository: /srv/backups/restic, passwordFile: /srv/backups/restic.pw, tags: [nightly, share], host: fs1, readData: 10% }');
    expect(r).toMatchObject({ plan: { source: { type: 'restic', repository: '/srv/backups/restic', passwordFile: '/srv/backups/restic.pw', snapshot: 'latest', tags: ['nightly', 'share'], host: 'fs1', readData: '10%' } } });
    const b = plan('{ type: borg, repository: /srv/backups/borg, passphraseFile: /srv/backups/borg.pw, match: "share-*", verifyData: true }');
    expect(b).toMatchObject({ plan: { source: { type: 'borg', archive: 'newest', match: 'share-*', verifyData: true } } });
  });

  it('names the line and path of every mistake', () => {
    const r = plan('{ type: restic, repository: /srv/r, passwordFile: /srv/r.pw, snapshot: "--latest", readData: lots }');
    expect('issues' in r && r.issues.map((i) => i.path)).toEqual(['source.snapshot', 'source.readData']);
    const b = plan('{ type: borg, repository: ../borg, passphraseFile: /srv/b.pw, archive: "x::y", match: "*" }');
    expect('issues' in b && b.issues.map((i) => i.path)).toEqual(['source.repository', 'source.archive', 'source.match']);
    const t = plan('{ type: borg, repository: /srv/b, passphraseFile: /srv/b.pw, verifyData: yes please }');
    expect('issues' in t && t.issues).toEqual([expect.objectContaining({ path: 'source.verifyData', line: 4, message: '"verifyData" must be true or false' })]);
    const k = plan('{ path: /srv/share.zip }', '{ driver: files }', 'checks:\n  - bytes: { min: lots }\n  - exists: { path: [ok, /etc/passwd] }\n');
    expect('issues' in k && k.issues.map((i) => `${i.path}:${i.line}`)).toEqual(['checks[0].bytes.min:7', 'checks[1].exists.path:8']);
  });

  it('a manifest is inside the backup (file) or beside it (a name in its folder), never both and never elsewhere', () => {
    const ok = plan('{ path: /srv/share.tar.zst }', '{ driver: files }', 'checks:\n  - manifest: { beside: "{name}.sha256" }\n');
    expect(ok).toMatchObject({ plan: { checks: [{ kind: 'manifest', beside: '{name}.sha256', name: 'Manifest {name}.sha256 neben der Sicherung' }] } });
    const both = plan('{ path: /srv/share.tar.zst }', '{ driver: files }', 'checks:\n  - manifest: { file: M.sha256, beside: M.sha256 }\n');
    expect('issues' in both && both.issues.map((i) => `${i.path}:${i.line}`)).toEqual(['checks[0].manifest.beside:7']);
    const none = plan('{ path: /srv/share.tar.zst }', '{ driver: files }', 'checks:\n  - manifest: {}\n');
    expect('issues' in none && none.issues[0]!.message).toContain('exactly one of "file"');
    for (const bad of ['../etc/shadow', 'sub/M.sha256', '..', '""']) {
      const r = plan('{ path: /srv/share.tar.zst }', '{ driver: files }', `checks:\n  - manifest: { beside: ${bad} }\n`);
      expect('issues' in r && r.issues.map((i) => i.path), bad).toEqual(['checks[0].manifest.beside']);
    }
  });
});

describe('ransomware indicators (names, first bytes, entropy)', () => {
  const f = (path: string, head: string, entropy: number, size = 10_000) => ({ path, head, entropy, size, mtime: 0 });
  it('judges a file by the format its name claims: signatures for binary formats, entropy for text', () => {
    expect(judge('docx', f('a.docx', '504b030414000600', 7.9))).toBe('ok'); // compressed by nature: not flagged
    expect(judge('jpg', f('a.jpg', 'ffd8ffe000104a46', 7.95))).toBe('ok');
    expect(judge('docx', f('a.docx', '53616c7465645f5f1234', 7.97))).toBe('encrypted'); // openssl enc's header
    expect(judge('pdf', f('a.pdf', 'a3f9e2710b', 7.96))).toBe('encrypted'); // no signature, near-random
    expect(judge('pdf', f('a.pdf', '89504e470d0a1a0a', 5.1))).toBe('mismatch'); // a PNG named .pdf
    expect(judge('csv', f('a.csv', '4e723b4e616d65', 4.6))).toBe('ok');
    expect(judge('csv', f('a.csv', '9a0c77e1', 7.96))).toBe('encrypted');
    expect(judge('csv', f('a.csv', '424d57', 4.2))).toBe('ok'); // "BMW;…" is text, not a bitmap
    expect(judge('txt', f('a.txt', '9a0c77e1', 7.96, 100))).toBe('ok'); // too short to judge its entropy
    expect(judge('bin', f('a.bin', '9a0c77e1', 7.99))).toBe('unjudged'); // claims nothing
    expect(judge('bin', f('a.bin', '53616c7465645f5f', 7.99))).toBe('encrypted');
    expect(familyOf('0000001866747970686569630000')).toBe('ftyp'); // HEIC: ftyp at offset 4
  });

  it('counts notes, extensions and suspect files with a few escaped example paths', () => {
    const scan = new IndicatorScan({ notes: ['liesmich*'], extensions: ['.kommune'] });
    scan.see(f('Bauamt/HOW_TO_DECRYPT.txt', '596f7572', 4));
    scan.see(f('_readme.txt', '596f7572', 4));
    scan.see(f('LIESMICH jetzt.txt', '596f7572', 4));
    scan.see(f('README.txt', '596f7572', 4)); // an ordinary read-me is not a note
    scan.see(f('a/plan.dwg.kommune', '00', 7.9));
    scan.see(f('b/brief.docx.locked', '53616c7465645f5f', 7.9));
    scan.see(f('c/x\n.pdf', 'a3f9', 7.96));
    const r = scan.result();
    expect(r.notes).toEqual({ count: 3, examples: ['Bauamt/HOW_TO_DECRYPT.txt', '_readme.txt', 'LIESMICH jetzt.txt'] });
    expect(r.extensions.count).toBe(2);
    expect(r.encrypted).toEqual({ count: 2, examples: ['b/brief.docx.locked', 'c/x\\x0a.pdf'] });
  });

  it('the built-in file checks: thresholds, baselines and a recorded reason to switch one off', () => {
    const profile = (files: number, exts: [string, number][], top: [string, number][] = [['Akten', files]]) => ({
      files, bytes: files * 1000, dirs: 3, symlinks: 0, others: 0, unreadable: 0, newestMtime: '2026-12-06T01:00:00.000Z',
      top: top.map(([name, n]) => ({ name, files: n, bytes: n * 1000 })), extensions: exts.map(([ext, n]) => ({ ext, files: n })),
    });
    const none = { notes: { count: 0, examples: [] }, extensions: { count: 0, examples: [] }, encrypted: { count: 0, examples: [] }, mismatch: { count: 0, examples: [] }, judged: 100 };
    const base = { indicators: none, config: {}, backupCreatedAt: new Date('2026-12-06T02:00:00Z'), rpoSeconds: 26 * 3600 };
    const healthy = evaluateFilesBuiltins({ ...base, profile: profile(100, [['pdf', 60], ['docx', 40]]), baseline: profile(100, [['pdf', 60], ['docx', 40]]) });
    expect(healthy.findings).toEqual([]);
    const renamed = evaluateFilesBuiltins({ ...base, profile: profile(100, [['pdf', 50], ['x7k2q', 50]]), baseline: profile(100, [['pdf', 60], ['docx', 40]]) });
    expect(renamed.findings.map((x) => x.code)).toEqual(['MASS_RENAME']);
    const twoOdd = evaluateFilesBuiltins({ ...base, profile: profile(100, [['pdf', 100]]), indicators: { ...none, encrypted: { count: 2, examples: ['a.pdf', 'b.pdf'] } } });
    expect(twoOdd.findings.map((x) => [x.code, x.severity])).toEqual([['FILE_TYPE_MISMATCH', 'warning']]);
    const three = evaluateFilesBuiltins({ ...base, profile: profile(100, [['pdf', 100]]), indicators: { ...none, encrypted: { count: 3, examples: ['a.pdf'] } } });
    expect(three.findings.map((x) => x.code)).toEqual(['ENCRYPTED_FILES_SUSPECTED']);
    const gone = evaluateFilesBuiltins({ ...base, profile: profile(100, [['pdf', 100]], [['Akten', 100]]), baseline: profile(160, [['pdf', 160]], [['Akten', 100], ['Standesamt', 60]]) });
    expect(gone.findings[0]).toMatchObject({ code: 'VOLUME_DROP', message: expect.stringContaining('Standesamt/: 60 -> 0 files') });
    const stale = evaluateFilesBuiltins({ ...base, profile: { ...profile(10, [['pdf', 10]]), newestMtime: '2025-01-01T00:00:00.000Z' } });
    expect(stale.findings.map((x) => [x.code, x.severity])).toEqual([['DATA_STALE_SUSPECTED', 'warning']]);
    const off = evaluateFilesBuiltins({ ...base, profile: profile(100, [['pdf', 100]]), indicators: { ...none, notes: { count: 1, examples: ['_readme.txt'] } }, config: { ransomware: { off: 'Schulungsfreigabe mit Mustern' } } });
    expect(off.findings).toEqual([]);
    expect(off.results.find((x) => x.name === 'ransomware')).toMatchObject({ status: 'skipped', message: 'abgeschaltet: Schulungsfreigabe mit Mustern' });
  });
});
