import { SandboxError, type Sandbox } from '../../sandbox/sandbox.js';
import { choosePostgresImage } from './image.js';
import type { DriverContext, Inspection, RestoreDriver, SandboxRecipe } from '../driver.js';
import { inspectDump, type DumpInfo } from './dump-format.js';
import { createPlainScanner, type PlainScan } from './plain-scan.js';
import { restorePostgres, sandboxQuery } from './postgres.driver.js';
import { databaseBuiltins } from '../sql-builtins.js';
import { profilePostgres } from './profile.js';
import { sqlCheckRunner } from '../../checks/checks.js';
import { pickReading, type CreatedAtReading } from './created-at.js';
import { finding } from '../../../services/findings.js';
import { ENDPOINT_PORT, ENDPOINT_ROLE, openEndpoint } from './endpoint.js';
import type { PostgresRestore, SandboxPlan } from '../../../services/plans/plan.types.js';
import { ImageError } from '../../sandbox/images.js';
import { BaseBackupUnsupported, inspectBaseBackup, pitrRecipe, restorePitr, walInput, type BaseLayout, type PitrState } from './pitr.js';

export interface PostgresInspection extends Inspection {
  info: DumpInfo;
  /** Point-in-time recovery: the base backup's layout and (after `inputs`) its WAL archive. */
  pitr?: PitrState;
  /** Filled while a plain dump is hashed: roles, extensions, CREATE DATABASE, completeness. */
  plainScan?: PlainScan;
}

/** The data area: Docker copies the image's /var/lib/postgresql into it, with a cluster initialised at image build. */
const DATA_ROOT = '/var/lib/postgresql';
const DATA_DIR = `${DATA_ROOT}/ef-data`;
const SOCKET_DIR = '/tmp';

/**
 * Runs as `postgres` from the first instruction: no root, no capabilities. A
 * cluster initialised at image build is used as it is; an image without one
 * (e.g. the official postgres:N) gets one here. Durability is off because
 * the sandbox is thrown away. The script is a constant: nothing from a backup
 * is in it.
 */
const BOOT_SCRIPT = `set -e
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | head -n1)
[ -n "$BIN" ] && PATH="$BIN:$PATH"
if [ ! -s ${DATA_DIR}/PG_VERSION ]; then
  initdb --no-sync -D ${DATA_DIR} -U postgres --auth=trust -E UTF8 --locale=C >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log >&2; exit 1; }
fi
LISTEN="-c listen_addresses="
if [ "$EF_NETWORK" = 1 ]; then
  # an application group's run (decisions/021): the internal network, and over it only ${ENDPOINT_ROLE} with its password
  printf 'local all all trust\nhost all ${ENDPOINT_ROLE} samenet scram-sha-256\n' >${DATA_DIR}/ef_hba.conf
  LISTEN="-c listen_addresses=0.0.0.0 -c port=${ENDPOINT_PORT} -c hba_file=${DATA_DIR}/ef_hba.conf -c password_encryption=scram-sha-256"
fi
exec postgres -D ${DATA_DIR} -k ${SOCKET_DIR} $LISTEN -c fsync=off -c full_page_writes=off \\
  -c synchronous_commit=off -c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=8GB \\
  -c checkpoint_timeout=1h -c autovacuum=off -c maintenance_work_mem=256MB -c shared_buffers=128MB \\
  -c log_min_messages=warning -c jit=off`;

/** The plan's restore block, which the registry only hands to this driver when it names postgres. */
const pg = (plan: SandboxPlan) => plan.restore as PostgresRestore;

export const postgresDriver: RestoreDriver<PostgresInspection> = {
  name: 'postgres',

  async inspect(backup, plan) {
    if (plan.source.type === 'basebackup') {
      let layout: BaseLayout;
      try {
        layout = await inspectBaseBackup(backup);
      } catch (err) {
        if (!(err instanceof BaseBackupUnsupported)) throw err;
        // recorded with the fetch; a blocking finding ends the run before a sandbox exists
        return { info: { format: 'basebackup' as DumpInfo['format'], requiredMajor: null }, pitr: { layout: { format: 'plain', major: null } }, createdAt: null, facts: { format: 'basebackup' }, findings: [finding('DUMP_UNSUPPORTED', err.message)] };
      }
      return {
        info: { format: 'basebackup' as DumpInfo['format'], requiredMajor: layout.major }, pitr: { layout }, createdAt: null,
        facts: { format: `basebackup-${layout.format}`, baseArchive: layout.base ?? null, walArchive: layout.walTar ?? null, postgresMajor: layout.major },
      };
    }
    const src = plan.source.type === 'file' ? plan.source : undefined;
    const zone = src?.timezone ?? plan.cadence.timezone;
    const info = await inspectDump(backup.realPath, { timezone: zone });
    let created: CreatedAtReading | undefined = info.createdAt ? { createdAt: info.createdAt, zone } : undefined;
    // the header's wall time has no zone: unless the plan names the dump host's zone, let the file time decide
    if (created && src?.timezone === undefined && zone !== 'UTC') {
      const utc = (await inspectDump(backup.realPath, { timezone: 'UTC' })).createdAt;
      if (utc) created = pickReading(created, { createdAt: utc, zone: 'UTC' }, backup.mtime);
    }
    const findings = created?.alternative
      ? [finding('BACKUP_TIME_AMBIGUOUS', `the dump header's local time fits ${created.zone} (${created.createdAt.toISOString()}) and ${created.alternative.zone} (${created.alternative.createdAt.toISOString()}); ${created.zone} was used, judged by the file time. Set source.timezone to the dump host's zone to decide it`)]
      : [];
    const scanner = info.format.startsWith('plain') ? createPlainScanner(info.format as 'plain' | 'plain-gzip' | 'plain-zstd') : undefined;
    const inspection: PostgresInspection = {
      info,
      createdAt: created?.createdAt ?? null,
      findings,
      facts: {
        createdAtZone: created?.zone ?? null,
        format: info.format, dumpVersion: info.dumpVersion ?? null, serverVersion: info.serverVersion ?? null,
        archiveVersion: info.archiveVersion ?? null, compression: info.compression ?? null,
      },
    };
    if (scanner) {
      inspection.scan = (c) => scanner.write(c);
      inspection.endScan = async () => { inspection.plainScan = await scanner.end(); };
    }
    return inspection;
  },

  inputs(plan, inspection, where) {
    return inspection.pitr ? walInput(plan, inspection.pitr, where) : Promise.resolve([]);
  },

  chooseImage({ config, plan, policy, inspection }) {
    // a base backup is replayed by its own major only (the data files are that version's)
    const version = inspection.pitr ? pg(plan).version ?? inspection.info.requiredMajor ?? undefined : pg(plan).version;
    if (inspection.pitr && version === undefined && !plan.restore.image) {
      throw new ImageError('VERSION_UNSUPPORTED', 'the base backup\'s PG_VERSION cannot be read on the worker (zstd or lz4 compression): set restore.version to its PostgreSQL major');
    }
    const c = choosePostgresImage(inspection.info.requiredMajor, config.sandbox.postgresMajors, config.sandbox.postgresImage, {
      image: plan.restore.image, allowed: policy.allowedImages, version,
    });
    return { image: c.image, facts: { postgresMajor: c.major } };
  },

  sandbox({ plan, inspection }): SandboxRecipe {
    // application groups and point-in-time recovery are not combined yet: the parser refuses both in one plan
    if (inspection.pitr) return pitrRecipe();
    const network = plan.services?.length ? ['EF_NETWORK=1'] : [];
    return { user: 'postgres', dataDir: DATA_ROOT, command: ['/bin/sh', '-c', BOOT_SCRIPT], env: [`PGHOST=${SOCKET_DIR}`, 'PGUSER=postgres', ...network] };
  },

  async ready(sandbox, ctx) {
    // a replay's server starts once the base backup is unpacked (restore)
    if (ctx.inspection.pitr) return;
    await waitForPostgres(sandbox, 120_000, ctx.signal);
  },

  async restore(sandbox, ctx) {
    if (ctx.inspection.pitr) return restorePitr(sandbox, ctx);
    const out = await restorePostgres({
      sandbox, info: ctx.inspection.info, database: pg(ctx.plan).database, plainScan: ctx.inspection.plainScan,
      jobs: pg(ctx.plan).jobs ?? Math.max(1, Math.ceil(ctx.cpus * 2)),
    });
    return {
      findings: out.findings, restored: out.restored, log: out.log,
      facts: { tool: out.tool ?? null, tables: out.tables ?? null, nonEmptyTables: out.nonEmptyTables ?? null, database: out.database ?? pg(ctx.plan).database },
    };
  },

  query(sandbox, ctx, restored) {
    return sandboxQuery(sandbox, (restored.facts.database as string | undefined) ?? pg(ctx.plan).database);
  },

  checks(sandbox, ctx, restored, { lastGood }) {
    return sqlCheckRunner(sandboxQuery(sandbox, (restored.facts.database as string | undefined) ?? pg(ctx.plan).database), lastGood);
  },

  endpoint(sandbox, ctx, restored) {
    return openEndpoint(sandbox, (restored.facts.database as string | undefined) ?? pg(ctx.plan).database, SOCKET_DIR);
  },

  builtins(sandbox, ctx, restored, input) {
    // a replay to a target: the data's age is judged against where replay ended, not the archive's newest commit
    const replayed = (restored.facts.pitr as { lastReplayedAt?: string | null } | undefined)?.lastReplayedAt;
    if (replayed) input = { ...input, backupCreatedAt: new Date(replayed) };
    const database = (restored.facts.database as string | undefined) ?? pg(ctx.plan).database;
    return databaseBuiltins(ctx as DriverContext, sandboxQuery(sandbox, database), (needs) => profilePostgres(sandbox, database, needs), input);
  },
};

/** Waits until the server accepts connections, or fails with the server's own last words. */
export async function waitForPostgres(sandbox: Sandbox, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let delay = 50;
  while (performance.now() < deadline) {
    signal?.throwIfAborted();
    if (!(await sandbox.isRunning())) {
      throw new SandboxError(`sandbox database server exited during start: ${(await sandbox.logsTail()).slice(0, 500)}`);
    }
    const r = await sandbox.exec(['pg_isready', '-q', '-h', SOCKET_DIR, '-U', 'postgres']).catch(() => ({ exitCode: 1 }));
    if (r.exitCode === 0) return;
    await new Promise((res) => setTimeout(res, delay));
    // a server is usually up within a second; polling often notices it without idling
    delay = Math.min(delay * 1.5, 200);
  }
  throw new SandboxError(`sandbox database server did not become ready within ${Math.round(timeoutMs / 1000)}s`);
}
