import { describe, expect, it } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { extractArgv, type FilesFormat } from '../../workers/drivers/files/archive.js';
import { restorePostgres } from '../../workers/drivers/postgres/postgres.driver.js';
import type { Sandbox } from '../../workers/sandbox/sandbox.js';

/** Options (and their arguments) end at `--`: nothing after it can be read as an option, whatever name a plan or a backup brings. */
function optionsEndBeforeNames(argv: string[]): void {
  expect(argv[0]).toBe('tar');
  const end = argv.indexOf('--');
  expect(end, argv.join(' ')).toBeGreaterThan(0);
  // every word before `--` is an option or the argument of -f / -C
  for (let i = 1; i < end; i++) {
    const takesArgument = argv[i - 1] === '-f' || argv[i - 1] === '-C';
    expect(takesArgument || argv[i]!.startsWith('-'), `${argv[i]} in ${argv.join(' ')}`).toBe(true);
  }
}

describe('tar calls: `--` before any name', () => {
  it('the files driver unpacks every tar format with `--` after its options', () => {
    for (const format of ['tar', 'tar.gz', 'tar.zst', 'tar.xz', 'tar.bz2'] as FilesFormat[]) {
      const argv = extractArgv(format, '/srv/ef/ef-backup/backup', '/srv/ef/restored')!;
      optionsEndBeforeNames(argv);
      expect(argv.at(-1)).toBe('--');
    }
  });

  it('the PostgreSQL driver unpacks a folder dump in a tar with `--` after its options', async () => {
    const calls: string[][] = [];
    const sandbox = {
      backupPath: '/srv/ef/ef-backup/-L.tar', dataDir: '/srv/ef',
      exec: async (cmd: string[]) => {
        calls.push(cmd);
        // mkdir succeeds; tar "fails", which ends the restore right there
        return cmd[0] === 'tar' ? { exitCode: 2, stdout: '', stderr: 'tar: This does not look like a tar archive', stdoutTruncated: false } : { exitCode: 0, stdout: '', stderr: '', stdoutTruncated: false };
      },
    } as unknown as Sandbox;
    const out = await restorePostgres({ sandbox, info: { format: 'directory-tar', requiredMajor: null, tocPathInTar: 'toc.dat' }, database: 'postgres', jobs: 1 });
    expect(out.restored).toBe(false);
    const tar = calls.find((c) => c[0] === 'tar')!;
    optionsEndBeforeNames(tar);
    // the archive (a name starting with '-' included) is only ever the argument of -f
    expect(tar[tar.indexOf('-f') + 1]).toBe('/srv/ef/ef-backup/-L.tar');
  });

  it('every tar argv in the workers and services has `--`', async () => {
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(dir, e.name));
        else if (e.name.endsWith('.ts')) files.push(join(dir, e.name));
      }
    };
    await walk('workers');
    await walk('services');
    let found = 0;
    for (const f of files) {
      // an argv starting with 'tar' is written on one line (as the drivers do): that line must end the options
      for (const line of (await readFile(f, 'utf8')).split('\n').filter((l) => /\[\s*'tar',/.test(l))) {
        found++;
        expect(line, f).toContain("'--'");
      }
    }
    expect(found).toBeGreaterThanOrEqual(2);
  });
});
