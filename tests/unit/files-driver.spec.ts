import { describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyToolOutput, detectFormat, extractArgv } from '../../workers/drivers/files/archive.js';
import { extensionOf, showPath } from '../../workers/drivers/files/inventory.js';
import { globMatch } from '../../workers/drivers/files/repository.js';
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
      ['tar', '-x', '--zstd', '-f', '/srv/ef/ef-backup/backup', '-C', '/srv/ef/restored', '--no-same-owner', '--no-same-permissions', '--delay-directory-restore']);
    expect(extractArgv('zip', '/b', '/r')).toEqual(['unzip', '-qq', '-o', '/b', '-d', '/r']);
    expect(extractArgv('unknown', '/b', '/r')).toBeNull();
  });

  it('reads truncation, unreadable archives and refused paths from the tools\' words', () => {
    expect(classifyToolOutput('tar.zst', 2, 'zstd: /*stdin*\\: unexpected end of file\ntar: Unexpected EOF in archive\ntar: Error is not recoverable: exiting now')).toMatchObject({ truncated: true, refusedPaths: 0 });
    expect(classifyToolOutput('zip', 9, '  End-of-central-directory signature not found.')).toMatchObject({ truncated: true });
    expect(classifyToolOutput('tar.gz', 2, 'gzip: stdin: not in gzip format\ntar: Child returned status 1')).toMatchObject({ unreadable: true, truncated: false });
    expect(classifyToolOutput('tar', 2, "tar: ../../etc/x: Member name contains '..'\ntar: Removing leading `/' from member names\ntar: Exiting with failure status due to previous errors"))
      .toEqual({ truncated: false, unreadable: false, refusedPaths: 2, otherErrors: [] });
    expect(classifyToolOutput('tar', 0, '')).toEqual({ truncated: false, unreadable: false, refusedPaths: 0, otherErrors: [] });
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
});
