import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { finding, type Finding } from '../../../services/findings.js';
import type { BaseBackupSource, PitrTarget, PostgresRestore, SandboxPlan } from '../../../services/plans/plan.types.js';
import { SandboxError, type Sandbox } from '../../sandbox/sandbox.js';
import { resolveWalArchive, type WalArchive } from '../../sources/wal.source.js';
import type { ResolvedBackup } from '../../sources/file.source.js';
import type { DriverContext, Inspection, RestoreResult, SandboxInput, SandboxRecipe } from '../driver.js';
import { countTables, sandboxRows, SOCKET_DIR } from './postgres.driver.js';
import { warmSessions } from './session.js';
import { BACKUP_HISTORY, lsnValue, parseBackupLabel, SEGMENT, walChain, type Chain } from './wal-chain.js';

/**
 * Point-in-time recovery (decisions/020): a pg_basebackup (tar or plain
 * format) is unpacked in the sandbox as `postgres`, PostgreSQL replays the
 * read-only WAL archive up to the plan's target and promotes, and the checks
 * run against what it reached. Nothing from the backup is ever read as
 * configuration: the base backup's postgresql.conf and postgresql.auto.conf
 * are not used, the settings are a file ernstfall writes, and restore_command
 * is a fixed command.
 */

export interface BaseLayout {
  /** tar: base.tar[.gz] (+ pg_wal.tar[.gz]); plain: the data directory itself. */
  format: 'tar' | 'plain';
  /** The base archive's name in the folder (one of a fixed set). */
  base?: string;
  walTar?: string;
  major: number | null;
}

export interface PitrState {
  layout: BaseLayout;
  /** Set by `inputs` (the engine resolves it inside the tenant's roots). */
  wal?: WalArchive;
}

/** Folders of a data directory that a base backup holds empty (and a copy of files therefore lacks). */
const EMPTY_DIRS = ['pg_wal/archive_status', 'pg_commit_ts', 'pg_dynshmem', 'pg_logical/mappings', 'pg_logical/snapshots', 'pg_notify', 'pg_replslot',
  'pg_serial', 'pg_snapshots', 'pg_stat', 'pg_stat_tmp', 'pg_subtrans', 'pg_tblspc', 'pg_twophase', 'global', 'base', 'pg_multixact/members', 'pg_multixact/offsets', 'pg_xact'];
const BASE_NAMES = ['base.tar', 'base.tar.gz', 'base.tar.zst', 'base.tar.lz4'];
const WAL_TAR_NAMES = ['pg_wal.tar', 'pg_wal.tar.gz', 'pg_wal.tar.zst', 'pg_wal.tar.lz4'];

/** The PostgreSQL major of a base backup's PG_VERSION, or null (a compression the worker cannot read: restore.version decides). */
async function baseMajor(dir: string, base: string | undefined): Promise<number | null> {
  const parse = (s: string) => (/^(\d{1,3})(?:\.\d+)?\s*$/.exec(s) ? Number(/^(\d{1,3})/.exec(s)![1]) : null);
  if (!base) return parse(await readFile(join(dir, 'PG_VERSION'), 'latin1').catch(() => ''));
  if (!base.endsWith('.tar') && !base.endsWith('.tar.gz')) return null;
  let found: number | null = null;
  let entries = 0;
  const ex = tar.extract();
  // stop reading: the extractor itself is destroyed (the pipeline then ends at once); aborting only the file's
  // stream is not enough when it was already read to its end: the extractor would wait for ever for next()
  const stop = () => ex.destroy();
  ex.on('entry', (header, stream, next) => {
    entries++;
    if (header.name.replace(/^\.\//, '') === 'PG_VERSION' && (header.size ?? 0) < 64) {
      const parts: Buffer[] = [];
      stream.on('data', (c) => parts.push(c as Buffer));
      stream.on('end', () => {
        found = parse(Buffer.concat(parts).toString('latin1'));
        stop();
      });
    } else {
      stream.on('end', () => (entries > 5000 ? stop() : next()));
      stream.resume();
    }
  });
  const src = createReadStream(join(dir, base));
  await (base.endsWith('.gz') ? pipeline(src, createGunzip(), ex) : pipeline(src, ex)).catch(() => undefined);
  return found;
}

/** What the base backup's folder holds, read on the worker (names and PG_VERSION only). */
export async function inspectBaseBackup(backup: ResolvedBackup): Promise<BaseLayout> {
  if (!backup.isDirectory) throw new BaseBackupUnsupported('a base backup (source type basebackup) is a folder, as pg_basebackup -D writes it');
  const names = await readdir(backup.realPath);
  const base = BASE_NAMES.find((n) => names.includes(n));
  if (base) {
    const walTar = WAL_TAR_NAMES.find((n) => names.includes(n));
    // other tar files are tablespaces (<oid>.tar): they would need their own places in the sandbox
    const spaces = names.filter((n) => /^\d+\.tar(\.(gz|zst|lz4))?$/.test(n));
    if (spaces.length) throw new BaseBackupUnsupported(`the base backup has ${spaces.length} tablespace archive(s) (${spaces.slice(0, 3).join(', ')}); base backups with tablespaces are not supported yet`);
    return { format: 'tar', base, ...(walTar && { walTar }), major: await baseMajor(backup.realPath, base) };
  }
  if (names.includes('PG_VERSION') && names.includes('backup_label')) {
    if (names.includes('tablespace_map')) throw new BaseBackupUnsupported('the base backup has tablespaces (tablespace_map); base backups with tablespaces are not supported yet');
    return { format: 'plain', major: await baseMajor(backup.realPath, undefined) };
  }
  throw new BaseBackupUnsupported(`${backup.path} is no pg_basebackup folder: neither base.tar[.gz|.zst|.lz4] nor a data directory with PG_VERSION and backup_label`);
}

export class BaseBackupUnsupported extends Error {
  readonly code = 'DUMP_UNSUPPORTED' as const;
}

/** The WAL archive beside the base backup, resolved inside the tenant's roots; only its settled WAL files go in. */
export async function walInput(plan: SandboxPlan, state: PitrState, where: { roots: string[]; settleSeconds: number; now: Date; tenant: string }): Promise<SandboxInput[]> {
  const source = plan.source as BaseBackupSource;
  state.wal = await resolveWalArchive(source, where.roots, where.settleSeconds, where.now, where.tenant);
  return [{ name: 'wal', backup: state.wal.backup, files: state.wal.names }];
}

const ROOT = '/var/lib/postgresql';
/** The recovered cluster, and ernstfall's own settings beside it (never inside the backup's folder). */
const PGDATA = `${ROOT}/ef-pitr`;
const CONF = `${ROOT}/ef-pitr-conf`;
const GO = `${CONF}/go`;
/** Written by the boot script when the server has exited (tmpfs). */
const EXITED = '/tmp/ef-pitr-exited';

/**
 * Constant: waits until the driver has unpacked the base backup and written the settings, then
 * starts the server on them as `postgres`. Nothing from the backup is in it.
 */
const PITR_BOOT = `set -e
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | head -n1)
[ -n "$BIN" ] && PATH="$BIN:$PATH"
while [ ! -e ${GO} ]; do sleep 0.1; done
# the server is a child, not the container's main process: when replay fails the sandbox stays up for pg_waldump
postgres -D ${PGDATA} -c config_file=${CONF}/postgresql.conf && s=0 || s=$?
echo "$s" > ${EXITED}
exec sleep 2147483647`;

export function pitrRecipe(): SandboxRecipe {
  return { user: 'postgres', dataDir: ROOT, command: ['/bin/sh', '-c', PITR_BOOT], env: [`PGHOST=${SOCKET_DIR}`, 'PGUSER=postgres'] };
}

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The server's settings for the replay: ernstfall's text only (the target was validated when the plan was stored). */
export function recoveryConf(target: PitrTarget, walDir: string): string {
  const lines = [
    '# written by ernstfall (decisions/020): the base backup\'s postgresql.conf and postgresql.auto.conf are not read',
    "listen_addresses = ''",
    `unix_socket_directories = ${quote(SOCKET_DIR)}`,
    `hba_file = ${quote(`${CONF}/pg_hba.conf`)}`,
    `ident_file = ${quote(`${CONF}/pg_ident.conf`)}`,
    'archive_mode = off',
    // fixed: only names PostgreSQL asks for and the worker listed (settled WAL files) are copied, from the read-only archive
    `restore_command = ${quote(`grep -qxF -- "%f" ${CONF}/wal.list && cp --no-preserve=mode -- "${walDir}/%f" "%p"`)}`,
    "recovery_target_timeline = 'latest'",
    "recovery_target_action = 'promote'",
    ...(target.kind === 'time' ? [`recovery_target_time = ${quote(target.iso.replace('T', ' ').replace('Z', '+00'))}`] : []),
    ...(target.kind === 'beforeLsn' ? [`recovery_target_lsn = ${quote(target.lsn)}`, 'recovery_target_inclusive = off'] : []),
    'hot_standby = off',
    "shared_preload_libraries = ''",
    'fsync = off', 'synchronous_commit = off', 'max_wal_size = 8GB', 'checkpoint_timeout = 1h',
    'autovacuum = off', 'jit = off', 'shared_buffers = 128MB', 'maintenance_work_mem = 256MB',
    "log_timezone = 'UTC'", "timezone = 'UTC'", 'logging_collector = off', 'log_min_messages = warning',
  ];
  return `${lines.join('\n')}\n`;
}

export interface RecoveryLog {
  fatal?: string;
  stoppedBefore?: { what: string; time?: string };
  lastCompletedAt?: string;
  newTimeline?: number;
  consistentAt?: string;
  redoDoneAt?: string;
}

/** What the server's log says about the replay (its own words, parsed by fixed patterns). */
export function parseRecoveryLog(log: string): RecoveryLog {
  const out: RecoveryLog = {};
  for (const line of log.split('\n')) {
    let m = /(?:FATAL|PANIC):\s+(.{1,300})$/.exec(line);
    if (m && !/the database system is (starting up|not accepting connections|shutting down)/.test(m[1]!) && out.fatal === undefined) out.fatal = m[1]!.trim();
    m = /LOG:\s+recovery stopping (before|after) (commit of transaction \d+|abort of transaction \d+|WAL location \(LSN\) "[0-9A-F/]+")(?:, time (\S+ \S+))?/.exec(line);
    if (m) out.stoppedBefore = { what: `${m[1]} ${m[2]}`, ...(m[3] && { time: m[3] }) };
    m = /LOG:\s+last completed transaction was at log time (\S+ \S+)/.exec(line);
    if (m) out.lastCompletedAt = m[1];
    m = /LOG:\s+selected new timeline ID: (\d+)/.exec(line);
    if (m) out.newTimeline = Number(m[1]);
    m = /LOG:\s+consistent recovery state reached at ([0-9A-F]+\/[0-9A-F]+)/.exec(line);
    if (m) out.consistentAt = m[1];
    m = /LOG:\s+redo done at ([0-9A-F]+\/[0-9A-F]+)/.exec(line);
    if (m) out.redoDoneAt = m[1];
  }
  return out;
}

/** A server's `2026-12-07 13:42:47.770205+00` as a moment. */
const pgTime = (s: string | undefined) => {
  const m = s ? /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:\+00|\s*UTC)$/.exec(s.trim()) : null;
  const t = m ? Date.parse(`${m[1]}T${m[2]!.slice(0, 12)}Z`) : NaN;
  return Number.isNaN(t) ? undefined : new Date(t);
};

async function must(sandbox: Sandbox, cmd: string[], what: string): Promise<string> {
  const r = await sandbox.exec(cmd);
  if (r.exitCode !== 0) throw new StepFailed(`${what}: ${r.stderr.split('\n')[0]?.slice(0, 200) ?? ''}`);
  return r.stdout;
}
class StepFailed extends Error {}

/** The newest commit in the archive (pg_waldump, as UTC), walking back from the newest segment on the replay path. */
async function newestCommit(sandbox: Sandbox, walDir: string, chain: Chain, names: string[]): Promise<{ at: Date; segment: string } | undefined> {
  const path = new Set(chain.timelines.map((t) => t.toString(16).toUpperCase().padStart(8, '0')));
  // newest segment number first; on one number, the newer timeline first
  const segs = names.filter((n) => SEGMENT.test(n) && path.has(n.slice(0, 8))).sort((a, b) => b.slice(8).localeCompare(a.slice(8)) || b.localeCompare(a));
  for (const seg of segs.slice(0, 8)) {
    let last: string | undefined;
    await sandbox.execLines(
      ['/bin/sh', '-c', 'exec "$(ls -d /usr/lib/postgresql/*/bin | head -n1)/pg_waldump" -r Transaction -- "$1"', 'waldump', posix.join(walDir, seg)],
      (line) => {
        const m = /desc: COMMIT (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) UTC/.exec(line);
        if (m) last = m[1];
      },
      { env: ['TZ=UTC'], maxLine: 64 * 1024 },
    );
    const at = pgTime(last && `${last}+00`);
    if (at) return { at, segment: seg };
  }
  return undefined;
}

/** Unpacks, configures, replays and promotes; then the checks run as after a dump restore. */
export async function restorePitr(sandbox: Sandbox, ctx: DriverContext<Inspection & { pitr?: PitrState }>): Promise<RestoreResult> {
  const restore = ctx.plan.restore as PostgresRestore;
  const target = restore.pitr!.target;
  const state = ctx.inspection.pitr!;
  const wal = state.wal!;
  const walDir = sandbox.inputPath('wal');
  const findings: Finding[] = [];
  const pitr: Record<string, unknown> = {
    target: target.kind === 'latest' ? 'latest' : target.kind === 'time' ? target.iso : `before ${target.lsn}`,
    ...(target.kind === 'time' && { targetAsWritten: target.text }),
    walFiles: wal.names.length,
  };
  const facts: Record<string, unknown> = { tool: { name: 'postgres (WAL replay)', exitCode: null, stderrLines: null }, database: restore.database, pitr };
  const fail = (f: Finding, log?: string): RestoreResult => ({ restored: false, findings: [...findings, f], facts, ...(log && { log }) });
  if (wal.unsettled) findings.push(finding('PITR_WAL_UNSETTLED', `${wal.unsettled} file(s) of the WAL archive changed within the settle time and were left out of the replay`));

  // 1. the base backup, unpacked as postgres into a folder of the data area
  try {
    await must(sandbox, ['mkdir', '-m', '700', '-p', '--', PGDATA, CONF], 'could not create the cluster folder');
    const src = sandbox.backupPath;
    if (state.layout.format === 'tar') {
      await must(sandbox, ['tar', '--no-same-owner', '--no-same-permissions', '-x', '-f', posix.join(src, state.layout.base!), '-C', PGDATA, '--'], 'tar could not unpack the base backup');
      if (state.layout.walTar) {
        await must(sandbox, ['mkdir', '-p', '--', `${PGDATA}/pg_wal`], 'could not create pg_wal');
        await must(sandbox, ['tar', '--no-same-owner', '--no-same-permissions', '-x', '-f', posix.join(src, state.layout.walTar), '-C', `${PGDATA}/pg_wal`, '--'], 'tar could not unpack pg_wal.tar');
      }
    } else {
      await must(sandbox, ['cp', '-R', '--no-preserve=all', '--', `${src}/.`, `${PGDATA}/`], 'could not copy the base backup');
      // a copy carries files only: the folders a data directory always has, empty in every base backup
      await must(sandbox, ['mkdir', '-p', '--', ...EMPTY_DIRS.map((d) => `${PGDATA}/${d}`)], 'could not create the cluster\'s folders');
    }
    await must(sandbox, ['chmod', '-R', 'u+rwX,go-rwx', '--', PGDATA], 'could not set the cluster\'s permissions');
    // the backup's own settings and signals are never used: ernstfall's file decides
    await must(sandbox, ['rm', '-f', '--', `${PGDATA}/postgresql.auto.conf`, `${PGDATA}/standby.signal`, `${PGDATA}/recovery.conf`, `${PGDATA}/postmaster.pid`, `${PGDATA}/postmaster.opts`], 'could not remove the backup\'s settings');
  } catch (err) {
    if (!(err instanceof StepFailed)) throw err;
    const truncated = /unexpected EOF|truncated/i.test(err.message);
    return fail(finding(truncated ? 'ARCHIVE_TRUNCATED' : 'ARCHIVE_UNREADABLE', err.message));
  }

  // 2. what the base backup says about itself, and what the archive's names say about the chain
  const labelText = await sandbox.exec(['cat', '--', `${PGDATA}/backup_label`]);
  const label = parseBackupLabel(labelText.exitCode === 0 ? labelText.stdout : '');
  if (!label.startSegment || !label.startLsn) return fail(finding('ARCHIVE_UNREADABLE', 'the base backup has no readable backup_label (START WAL LOCATION): it is not a base backup pg_basebackup wrote'));
  // the archive's history file of exactly this backup: its start segment and the start's offset in it
  const offset = wal.segBytes ? (lsnValue(label.startLsn) % BigInt(wal.segBytes)).toString(16).toUpperCase().padStart(8, '0') : undefined;
  const historyName = offset && wal.names.find((n) => BACKUP_HISTORY.test(n) && n === `${label.startSegment}.${offset}.backup`);
  const history = historyName ? await sandbox.exec(['cat', '--', posix.join(walDir, historyName)]) : undefined;
  const stop = history?.exitCode === 0 ? parseBackupLabel(history.stdout) : undefined;
  const inBase = (await sandbox.exec(['ls', '-1', '--', `${PGDATA}/pg_wal`])).stdout.split('\n').filter((n) => SEGMENT.test(n));
  Object.assign(pitr, {
    base: { startLsn: label.startLsn, startSegment: label.startSegment, timeline: label.startTimeline ?? null, startTime: label.startTime?.toISOString() ?? label.startTimeText ?? null, ...(stop?.stopTime && { consistentTime: stop.stopTime.toISOString() }) },
  });
  const chain: Chain = wal.segBytes
    ? walChain({ names: [...wal.names, ...inBase], histories: wal.histories, segBytes: wal.segBytes, startSegment: label.startSegment, startTimeline: label.startTimeline ?? 1 })
    : { timelines: [label.startTimeline ?? 1] };
  Object.assign(pitr, { timelines: chain.timelines, newestSegment: chain.newest ?? null });
  if (!wal.segBytes) findings.push(finding('PITR_WAL_GAP', `the WAL archive ${wal.backup.path} holds no WAL segment: nothing after the base backup can be replayed`));
  else if (chain.missing) findings.push(finding('PITR_WAL_GAP', `WAL segment ${chain.missing} is missing from the archive between the base backup (${label.startSegment}) and the newest segment (${chain.newest}): no moment after it can be recovered`));
  if (chain.foreignTimeline !== undefined) findings.push(finding('PITR_TIMELINE_MISMATCH', `the archive's newest timeline ${chain.foreignTimeline} does not descend from the base backup's timeline ${label.startTimeline}: replay cannot follow it`));

  // 3. a target before the base backup's consistent point: PostgreSQL would silently stop at that point, later than asked
  const consistent = stop?.stopTime ?? label.startTime;
  if (target.kind === 'time' && consistent && new Date(target.iso) < consistent) {
    return fail(finding('PITR_TARGET_BEFORE_BASE', `the target ${target.iso} lies before the base backup's ${stop?.stopTime ? 'end' : 'start'} (${consistent.toISOString()}): this base backup cannot show that moment; an older one is needed`));
  }
  const consistentLsn = stop && /STOP WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/.exec(history!.stdout)?.[1];
  if (target.kind === 'beforeLsn' && lsnValue(target.lsn) <= lsnValue(consistentLsn ?? label.startLsn)) {
    return fail(finding('PITR_TARGET_BEFORE_BASE', `the target LSN ${target.lsn} lies before the base backup's ${consistentLsn ? 'end' : 'start'} (${consistentLsn ?? label.startLsn}): this base backup cannot show that point`));
  }

  // 4. ernstfall's settings as files (never shell or SQL text), then the server starts and replays
  await sandbox.putFile(`${CONF}/postgresql.conf`, Buffer.from(recoveryConf(target, walDir), 'utf8'));
  await sandbox.putFile(`${CONF}/pg_hba.conf`, Buffer.from('local all all trust\n', 'utf8'));
  await sandbox.putFile(`${CONF}/pg_ident.conf`, Buffer.alloc(0));
  await sandbox.putFile(`${CONF}/wal.list`, Buffer.from(wal.names.map((n) => `${n}\n`).join(''), 'utf8'));
  await sandbox.putFile(`${PGDATA}/recovery.signal`, Buffer.alloc(0));
  const replayStarted = performance.now();
  await sandbox.putFile(GO, Buffer.alloc(0));
  const up = await waitForRecoveryEnd(sandbox, ctx.signal);
  const log = await sandbox.logsTail(5000);
  const rec = parseRecoveryLog(log);
  pitr.replayMs = Math.round(performance.now() - replayStarted);
  Object.assign(pitr, {
    ...(rec.stoppedBefore && { stopped: rec.stoppedBefore.what, stoppedAtTransactionTime: pgTime(rec.stoppedBefore.time)?.toISOString() ?? null }),
    ...(rec.consistentAt && { consistentLsn: rec.consistentAt }),
    ...(rec.redoDoneAt && { redoDoneLsn: rec.redoDoneAt }),
  });

  // 5. the archive's newest commit: the RPO's time (what PostgreSQL's WAL says, not a file time)
  let backup: RestoreResult['backup'];
  const newest = wal.segBytes ? await newestCommit(sandbox, walDir, chain, wal.names).catch(() => undefined) : undefined;
  if (newest) {
    backup = { createdAt: newest.at, source: 'wal', facts: { newestWalSegment: newest.segment, newestCommitAt: newest.at.toISOString() } };
  } else if (chain.newest && wal.files.get(chain.newest)) {
    findings.push(finding('BACKUP_TIME_FROM_FILE', `the archive's newest WAL segments hold no commit; the newest segment's file time (${chain.newest}) is used as the backup's time`));
    backup = { createdAt: wal.files.get(chain.newest)!.mtime, source: 'file', facts: { newestWalSegment: chain.newest } };
  }
  const result = (restored: boolean, more: Finding[]): RestoreResult => ({ restored, findings: [...findings, ...more], facts, log, ...(backup && { backup }) });

  if (!up) {
    const fatal = rec.fatal ?? 'the server stopped during recovery without saying why';
    if (/recovery ended before configured recovery target was reached/.test(fatal)) {
      if (findings.some((f) => f.code === 'PITR_WAL_GAP')) return result(false, []);
      return result(false, [finding('PITR_TARGET_AFTER_WAL', `replay reached the end of the WAL archive (newest segment ${chain.newest ?? 'none'}${newest ? `, newest commit ${newest.at.toISOString()}` : ''}) before the target ${pitr.target}: PostgreSQL: "${fatal}"`)]);
    }
    if (/requested recovery stop point is before consistent recovery point/.test(fatal)) {
      return result(false, [finding('PITR_TARGET_BEFORE_BASE', `PostgreSQL: "${fatal}": the target ${pitr.target} lies before the base backup's consistent point`)]);
    }
    if (/requested timeline \d+ (is not a child of this server's history|does not contain minimum recovery point)|timeline \d+ .*(not|isn't) .*history|unexpected timeline ID/.test(fatal)) {
      if (findings.some((f) => f.code === 'PITR_TIMELINE_MISMATCH')) return result(false, []);
      return result(false, [finding('PITR_TIMELINE_MISMATCH', `PostgreSQL: "${fatal}" (base backup on timeline ${label.startTimeline ?? '?'})`)]);
    }
    return result(false, [finding('RESTORE_ERROR', `the server stopped during WAL replay: "${fatal.slice(0, 200)}"`)]);
  }

  // 6. where replay ended, as PostgreSQL reports it (static after promotion)
  const where = await sandboxRows(sandbox, 'postgres',
    "select to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), pg_last_wal_replay_lsn()::text, (select timeline_id from pg_control_checkpoint())::text, (select count(*) from pg_database where datname = " + quote(restore.database) + ')::text');
  if (where.ok) {
    const [at, lsn, tli, hasDb] = where.value[0] ?? [];
    Object.assign(pitr, { lastReplayedAt: pgTime(at ? `${at}+00` : undefined)?.toISOString() ?? null, lastReplayedLsn: lsn ?? null, timeline: tli ? Number(tli) : null });
    if (hasDb === '0') return result(false, [finding('EMPTY_RESTORE', `the recovered cluster has no database ${restore.database}`)]);
  }
  if (rec.newTimeline !== undefined) pitr.newTimeline = rec.newTimeline;
  const [counts] = await Promise.all([countTables(sandbox, restore.database), warmSessions(sandbox, restore.database, SOCKET_DIR, 2, { statementTimeoutMs: 600_000 })]);
  facts.tables = counts.tables;
  facts.nonEmptyTables = counts.nonEmpty;
  const more: Finding[] = [];
  if (counts.tables === 0) more.push(finding('EMPTY_RESTORE', 'the recovered database has no tables'));
  else if (counts.nonEmpty === 0) more.push(finding('EMPTY_RESTORE', `the recovered database has ${counts.tables} table(s), all of them empty`));
  return result(true, more);
}

/** Until the server accepts connections after promotion (true), or it exited (false). Bounded by the run's timeout. */
async function waitForRecoveryEnd(sandbox: Sandbox, signal: AbortSignal): Promise<boolean> {
  for (;;) {
    signal.throwIfAborted();
    if (!(await sandbox.isRunning())) throw new SandboxError(`the sandbox stopped during WAL replay: ${(await sandbox.logsTail()).slice(0, 300)}`);
    const r = await sandbox.exec(['/bin/sh', '-c', `test -e ${EXITED} && exit 3; exec pg_isready -q -h ${SOCKET_DIR} -U postgres`]).catch(() => ({ exitCode: 1 }));
    if (r.exitCode === 0) return true;
    if (r.exitCode === 3) return false;
    await new Promise((res) => setTimeout(res, 200));
  }
}
