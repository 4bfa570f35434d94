import { posix } from 'node:path';
import { finding, type Finding } from '../../../services/findings.js';
import type { BorgSource, ResticSource } from '../../../services/plans/plan.types.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import { globToRegExp, readSecretFile } from '../../sources/file.source.js';
import type { RestoreResult } from '../driver.js';
import { showPath } from './inventory.js';

/** The files image's user (deploy/build-files-image.sh). */
export const FILES_UID = 990;

export interface RepositoryRestore {
  findings: Finding[];
  /** The tree is in `root` (the tool finished; findings may still fail the test). */
  restored: boolean;
  root: string;
  backup?: RestoreResult['backup'];
  facts: Record<string, unknown>;
  log: string;
}

interface Ctx {
  sandbox: Sandbox;
  /** Where the tree goes: an empty folder in the data area. */
  target: string;
  roots: string[];
  tenant: string;
}

const lastLines = (s: string, n = 3) => s.split('\n').map((l) => l.trim()).filter(Boolean).slice(-n).join(' | ').slice(0, 300);

/** Puts the secret into the sandbox as a file only its user can read; returns its path. Never in argv or env. */
async function putSecret(c: Ctx, file: string, what: string): Promise<string> {
  const secret = await readSecretFile(file, c.roots, c.tenant, what);
  const path = `${c.sandbox.dataDir}/ef-secret`;
  await c.sandbox.putFile(path, secret, { mode: 0o400, uid: FILES_UID, gid: FILES_UID });
  return path;
}

async function dropSecret(c: Ctx, path: string): Promise<void> {
  await c.sandbox.exec(['rm', '-f', '--', path]).catch(() => undefined);
}

/** Whether a name matches a glob (`*`, `?`, `[abc]`); a pattern that is no valid class matches nothing. */
export function globMatch(glob: string, name: string): boolean {
  try {
    return globToRegExp(glob).test(name);
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ restic

interface ResticSnapshot { id: string; short_id?: string; time: string; paths?: string[]; hostname?: string; tags?: string[] }

function resticProblem(exitCode: number | null, stderr: string, step: string): Finding {
  if (exitCode === 12 || /wrong password|no key found/i.test(stderr)) {
    return finding('REPOSITORY_KEY_REJECTED', `restic ${step}: the repository does not open with the password file's password (${lastLines(stderr, 1)})`);
  }
  if (step === 'snapshots' && (exitCode === 10 || /unable to open config file|Is there a repository at the following location|does not exist/i.test(stderr))) {
    return finding('REPOSITORY_UNREADABLE', `restic ${step}: no readable repository (${lastLines(stderr, 2)})`);
  }
  return finding('REPOSITORY_DAMAGED', `restic ${step} failed (exit ${exitCode}): ${lastLines(stderr)}`);
}

/**
 * restic inside the sandbox, on the repository's copy (read-only, so
 * --no-lock; no cache): list the snapshots, choose one, `restic check`
 * (reading the share of packs the plan asks for), restore the snapshot.
 */
export async function restoreRestic(c: Ctx, src: ResticSource): Promise<RepositoryRestore> {
  const secret = await putSecret(c, src.passwordFile, 'the password file');
  const repo = c.sandbox.backupPath;
  const base = ['restic', '-r', repo, '--no-lock', '--no-cache'];
  const env = [`RESTIC_PASSWORD_FILE=${secret}`, 'TZ=UTC'];
  const findings: Finding[] = [];
  const logs: string[] = [];
  try {
    const filters = [...(src.tags ? ['--tag', src.tags.join(',')] : []), ...(src.host ? ['--host', src.host] : []), ...(src.path ? ['--path', src.path] : [])];
    const list = await c.sandbox.exec([...base, 'snapshots', '--json', ...filters], { env, maxOutput: 32 * 1024 * 1024 });
    logs.push(list.stderr);
    if (list.exitCode !== 0) return { findings: [resticProblem(list.exitCode, list.stderr, 'snapshots')], restored: false, root: c.target, facts: { tool: { name: 'restic' } }, log: logs.join('\n') };
    let snapshots: ResticSnapshot[];
    try {
      snapshots = JSON.parse(list.stdout) as ResticSnapshot[];
      if (!Array.isArray(snapshots)) throw new Error('not a list');
    } catch {
      return { findings: [finding('REPOSITORY_DAMAGED', 'restic snapshots gave no readable list')], restored: false, root: c.target, facts: { tool: { name: 'restic' } }, log: logs.join('\n') };
    }
    const chosen = src.snapshot === 'latest'
      ? snapshots.filter((s) => Number.isFinite(Date.parse(s.time))).sort((a, b) => Date.parse(b.time) - Date.parse(a.time))[0]
      : snapshots.find((s) => s.id.startsWith(src.snapshot));
    if (!chosen) {
      const which = src.snapshot === 'latest' ? `no snapshot${filters.length ? ' matching the plan\'s tags, host and path' : ''}` : `no snapshot ${src.snapshot}`;
      return { findings: [finding('SNAPSHOT_NOT_FOUND', `the repository has ${which} (${snapshots.length} snapshot(s) in all)`)], restored: false, root: c.target, facts: { tool: { name: 'restic' }, snapshots: snapshots.length }, log: logs.join('\n') };
    }
    const backup: RestoreResult['backup'] = {
      createdAt: new Date(chosen.time), source: 'snapshot',
      facts: { snapshotId: chosen.id, snapshotHost: chosen.hostname ?? null, snapshotPaths: (chosen.paths ?? []).map(showPath).join(', ').slice(0, 300), snapshotTags: (chosen.tags ?? []).join(', ').slice(0, 200), snapshots: snapshots.length },
    };

    const check = await c.sandbox.exec([...base, 'check', ...(src.readData ? ['--read-data-subset', src.readData] : [])], { env });
    logs.push(check.stdout, check.stderr);
    if (check.exitCode !== 0) {
      // a repository its own check calls damaged is not restored: restic would retry the missing packs for minutes
      findings.push(resticProblem(check.exitCode, `${check.stdout}\n${check.stderr}`, 'check'));
      return { findings, restored: false, root: c.target, backup, log: logs.join('\n'), facts: { tool: { name: 'restic' }, check: { exitCode: check.exitCode, readData: src.readData ?? null } } };
    }

    // the snapshot's ID, checked above to be one restic listed: hex, never an option
    const restore = await c.sandbox.exec([...base, 'restore', chosen.id, '--target', c.target], { env, maxOutput: 64 * 1024 });
    logs.push(restore.stderr);
    if (restore.exitCode !== 0) findings.push(resticProblem(restore.exitCode, restore.stderr, 'restore'));
    // restic restores a snapshot's absolute paths below the target: one backed-up folder is the tree's root
    const paths = chosen.paths ?? [];
    const inner = paths.length === 1 ? posix.normalize(posix.join(c.target, paths[0]!)) : c.target;
    const root = inner.startsWith(`${c.target}/`) ? inner : c.target;
    return {
      findings, restored: restore.exitCode === 0, root, backup, log: logs.join('\n'),
      facts: { tool: { name: 'restic', exitCode: restore.exitCode, stderrLines: restore.stderr.split('\n').filter(Boolean).length }, check: { exitCode: check.exitCode, readData: src.readData ?? null } },
    };
  } finally {
    await dropSecret(c, secret);
  }
}

// ------------------------------------------------------------------ borg

interface BorgArchive { name: string; time?: string; start?: string }

function borgProblem(exitCode: number | null, stderr: string, step: string): Finding {
  if (/passphrase supplied .* is incorrect|passphrase .*incorrect|Incorrect passphrase/i.test(stderr)) {
    return finding('REPOSITORY_KEY_REJECTED', `borg ${step}: the repository does not open with the passphrase file's passphrase`);
  }
  if (/is not a valid repository|Repository .* does not exist|No such file or directory/i.test(stderr) && step === 'list') {
    return finding('REPOSITORY_UNREADABLE', `borg ${step}: no readable repository (${lastLines(stderr, 2)})`);
  }
  return finding('REPOSITORY_DAMAGED', `borg ${step} failed (exit ${exitCode}): ${lastLines(stderr)}`);
}

/**
 * borg inside the sandbox, on the repository's copy (the sandbox user's:
 * borg check writes to it): list the archives, choose one, `borg check`
 * (with --verify-data if the plan asks), extract the archive.
 */
export async function restoreBorg(c: Ctx, src: BorgSource): Promise<RepositoryRestore> {
  const secret = await putSecret(c, src.passphraseFile, 'the passphrase file');
  const repo = c.sandbox.backupPath;
  const env = [
    // borg runs this itself, split without a shell; the path is ernstfall's own
    `BORG_PASSCOMMAND=cat ${secret}`, `BORG_BASE_DIR=${c.sandbox.dataDir}/ef-borg`, 'BORG_RELOCATED_REPO_ACCESS_IS_OK=yes',
    'BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes', 'BORG_DISPLAY_PASSPHRASE=no', 'BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO', 'TZ=UTC',
  ];
  const findings: Finding[] = [];
  const logs: string[] = [];
  try {
    const list = await c.sandbox.exec(['borg', 'list', '--json', repo], { env, maxOutput: 32 * 1024 * 1024 });
    logs.push(list.stderr);
    if (list.exitCode !== 0) return { findings: [borgProblem(list.exitCode, list.stderr, 'list')], restored: false, root: c.target, facts: { tool: { name: 'borg' } }, log: logs.join('\n') };
    let archives: BorgArchive[];
    try {
      archives = (JSON.parse(list.stdout) as { archives: BorgArchive[] }).archives;
      if (!Array.isArray(archives)) throw new Error('no list');
    } catch {
      return { findings: [finding('REPOSITORY_DAMAGED', 'borg list gave no readable list of archives')], restored: false, root: c.target, facts: { tool: { name: 'borg' } }, log: logs.join('\n') };
    }
    // borg prints times without a zone, in the zone it runs in: UTC here
    const when = (a: BorgArchive) => Date.parse(`${a.time ?? a.start ?? ''}Z`);
    const chosen = src.archive === 'newest'
      ? archives.filter((a) => Number.isFinite(when(a)) && (!src.match || globMatch(src.match, a.name))).sort((a, b) => when(b) - when(a))[0]
      : archives.find((a) => a.name === src.archive);
    if (!chosen) {
      const which = src.archive === 'newest' ? `no archive${src.match ? ` matching "${src.match}"` : ''}` : `no archive named ${src.archive}`;
      return { findings: [finding('SNAPSHOT_NOT_FOUND', `the repository has ${which} (${archives.length} archive(s) in all)`)], restored: false, root: c.target, facts: { tool: { name: 'borg' }, archives: archives.length }, log: logs.join('\n') };
    }
    const backup: RestoreResult['backup'] = {
      createdAt: new Date(when(chosen)), source: 'archive', facts: { archive: showPath(chosen.name), archives: archives.length },
    };

    const check = await c.sandbox.exec(['borg', 'check', ...(src.verifyData ? ['--verify-data'] : []), repo], { env });
    logs.push(check.stderr);
    if (check.exitCode !== 0) {
      // as for restic: a repository its own check calls damaged is not extracted
      findings.push(borgProblem(check.exitCode, check.stderr, 'check'));
      return { findings, restored: false, root: c.target, backup, log: logs.join('\n'), facts: { tool: { name: 'borg' }, check: { exitCode: check.exitCode, verifyData: src.verifyData ?? false } } };
    }

    // REPO::NAME: the name is one borg listed (no "::" in it can reach another repository: the prefix is fixed)
    const extract = await c.sandbox.exec(['borg', 'extract', `${repo}::${chosen.name}`], { env, workdir: c.target, maxOutput: 64 * 1024 });
    logs.push(extract.stderr);
    // 1 is borg's warning (e.g. an owner it could not set as an unprivileged user); 2 an error
    if (extract.exitCode !== 0 && extract.exitCode !== 1) findings.push(borgProblem(extract.exitCode, extract.stderr, 'extract'));
    return {
      findings, restored: extract.exitCode === 0 || extract.exitCode === 1, root: c.target, backup, log: logs.join('\n'),
      facts: { tool: { name: 'borg', exitCode: extract.exitCode, stderrLines: extract.stderr.split('\n').filter(Boolean).length }, check: { exitCode: check.exitCode, verifyData: src.verifyData ?? false } },
    };
  } finally {
    await dropSecret(c, secret);
  }
}
