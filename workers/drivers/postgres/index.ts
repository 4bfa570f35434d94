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

export interface PostgresInspection extends Inspection {
  info: DumpInfo;
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

  chooseImage({ config, plan, policy, inspection }) {
    const c = choosePostgresImage(inspection.info.requiredMajor, config.sandbox.postgresMajors, config.sandbox.postgresImage, {
      image: plan.restore.image, allowed: policy.allowedImages, version: pg(plan).version,
    });
    return { image: c.image, facts: { postgresMajor: c.major } };
  },

  sandbox({ plan }): SandboxRecipe {
    const network = plan.services?.length ? ['EF_NETWORK=1'] : [];
    return { user: 'postgres', dataDir: DATA_ROOT, command: ['/bin/sh', '-c', BOOT_SCRIPT], env: [`PGHOST=${SOCKET_DIR}`, 'PGUSER=postgres', ...network] };
  },

  async ready(sandbox, ctx) {
    await waitForPostgres(sandbox, 120_000, ctx.signal);
  },

  async restore(sandbox, ctx) {
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
