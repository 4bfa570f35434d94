import { createHash, randomBytes } from 'node:crypto';
import { finding, type Finding } from '../../../services/findings.js';
import type { MariadbRestore, SandboxPlan } from '../../../services/plans/plan.types.js';
import { sqlCheckRunner, type QueryFn } from '../../checks/checks.js';
import { ImageError } from '../../sandbox/images.js';
import { SandboxError, type Sandbox } from '../../sandbox/sandbox.js';
import type { DriverContext, ImageChoice, Inspection, RestoreDriver, SandboxRecipe } from '../driver.js';
import { databaseBuiltins } from '../sql-builtins.js';
import { profileMariadb } from './profile.js';
import { pickReading } from '../postgres/created-at.js';
import { completedAtUtc, createMariaScanner, inspectMariaDump, type MariaDumpInfo, type MariaScan } from './dump.js';

export interface MariaInspection extends Inspection {
  info: MariaDumpInfo;
  /** What the scan while hashing found: complete, when, which database. */
  dumpScan?: MariaScan;
}

const DATA_DIR = '/var/lib/mysql';
const SOCKET = '/tmp/mysqld.sock';
/** Every client call: the socket, the OS user's unix_socket account, no option files. */
const CLIENT = ['--no-defaults', `--socket=${SOCKET}`, '--user=mysql'];

const maria = (plan: SandboxPlan) => plan.restore as MariadbRestore;

/**
 * The server as the sandbox runs it: as `mysql`, no networking, durability
 * off (the sandbox is thrown away), the data directory initialised at image
 * build (deploy/build-mariadb-image.sh).
 */
const SERVER = [
  'mariadbd', '--no-defaults', `--datadir=${DATA_DIR}`, `--socket=${SOCKET}`, '--pid-file=/tmp/mysqld.pid', '--skip-networking',
  '--skip-log-bin', '--skip-name-resolve', '--innodb-flush-log-at-trx-commit=0', '--innodb-doublewrite=0', '--innodb-buffer-pool-size=256M',
  '--max-allowed-packet=1G', '--log-error=/tmp/mysqld.err', '--tmpdir=/tmp',
];
/** With an application group (decisions/021): the server also listens on the run's internal network (the sandbox's only one). */
export const ENDPOINT_PORT = 3306;
export const ENDPOINT_USER = 'ernstfall_app';
const NETWORK_SERVER = [...SERVER.filter((a) => a !== '--skip-networking'), '--bind-address=0.0.0.0', `--port=${ENDPOINT_PORT}`];

/** MariaDB's stored form of a mysql_native_password password ("*" and SHA1(SHA1(password)) in hex), made on the worker. */
export function nativePasswordHash(password: string): string {
  const once = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(once).digest('hex').toUpperCase()}`;
}

/** The smallest configured version at least the dump's (MariaDB dumps); MySQL dumps get the newest. */
export function chooseMariaVersion(info: MariaDumpInfo, versions: string[], pinned?: string): string {
  const num = (v: string) => v.split('.').slice(0, 2).map(Number) as [number, number];
  const sorted = [...versions].sort((a, b) => { const [x1, y1] = num(a); const [x2, y2] = num(b); return x1 - x2 || y1 - y2; });
  if (pinned !== undefined) {
    if (!sorted.includes(pinned)) throw new ImageError('VERSION_UNSUPPORTED', `the plan asks for MariaDB ${pinned}, but sandbox images exist only for ${sorted.join(', ')} (ERNSTFALL_MARIADB_VERSIONS)`);
    return pinned;
  }
  if (info.flavor === 'mysql' || !info.serverVersion) return sorted.at(-1)!;
  const [m, n] = num(info.serverVersion);
  const fit = sorted.find((v) => { const [a, b] = num(v); return a > m || (a === m && b >= n); });
  if (!fit) throw new ImageError('VERSION_UNSUPPORTED', `the dump comes from MariaDB ${info.serverVersion}, newer than every sandbox image (${sorted.join(', ')}); build one (deploy/build-mariadb-image.sh) and add it to ERNSTFALL_MARIADB_VERSIONS`);
  return fit;
}

/** One value from the restored database: read-only session, 10-minute statement limit, first column of the first row. */
export function mariaQuery(sandbox: Sandbox, database: string): QueryFn {
  return async (sql) => {
    const r = await sandbox.exec(['mariadb', ...CLIENT, '--batch', '--skip-column-names', '--raw',
      '--init-command=SET SESSION TRANSACTION READ ONLY', '--execute', `SET STATEMENT max_statement_time=600 FOR ${sql}`, '--', database], { maxOutput: 4096 });
    if (r.exitCode !== 0) return { ok: false, error: (r.stderr.split('\n').find((l) => l.startsWith('ERROR')) ?? r.stderr).trim().slice(0, 300) };
    const first = r.stdout.split('\n')[0];
    // --batch prints SQL NULL as the word NULL
    return { ok: true, value: first === undefined || first === '' && r.stdout === '' ? null : first.split('\t')[0] === 'NULL' ? null : first.split('\t')[0]! };
  };
}

/** Counts base tables and those with at least one row; the statement is built by the server from its catalog. */
const COUNT_SQL = `
SET SESSION group_concat_max_len = 67108864;
SELECT GROUP_CONCAT(CONCAT('SELECT COUNT(*) AS c FROM (SELECT 1 FROM \`', REPLACE(table_schema, '\`', '\`\`'), '\`.\`', REPLACE(table_name, '\`', '\`\`'), '\` LIMIT 1) x') SEPARATOR ' UNION ALL ')
  INTO @q FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE';
SET @q = IFNULL(CONCAT('SELECT COUNT(*), COALESCE(SUM(c), 0) FROM (', @q, ') t'), 'SELECT 0, 0');
PREPARE s FROM @q;
EXECUTE s;`;

const ERROR_LINE = /^ERROR (\d+) \(([0-9A-Z]{5})\)(?: at line (\d+))?/;

/**
 * MariaDB/MySQL: plain SQL dumps of mariadb-dump or mysqldump, also .gz and
 * .zst. The dump is piped into the `mariadb` client inside the sandbox as
 * the OS user mysql; a dump without its closing "-- Dump completed" line is
 * cut off, whatever the client's exit code says.
 */
export const mariadbDriver: RestoreDriver<MariaInspection> = {
  name: 'mariadb',

  async inspect(backup, plan) {
    if (backup.isDirectory) throw new SandboxError('a MariaDB backup is one dump file, not a folder');
    const info = await inspectMariaDump(backup.realPath);
    const scanner = createMariaScanner(info.format);
    const named = plan.source.type === 'file' ? plan.source.timezone : undefined;
    const zone = named ?? plan.cadence.timezone;
    const inspection: MariaInspection = {
      info, createdAt: null,
      facts: { format: info.format, flavor: info.flavor, serverVersion: info.serverVersion ?? null, dumpVersion: info.dumpVersion ?? null, compression: info.format === 'plain' ? 'none' : info.format.slice(6) },
      scan: (c) => scanner.write(c),
      endScan: async () => {
        inspection.dumpScan = await scanner.end();
        // the closing line's time is when the dump finished: the backup's own time, in the dump server's zone
        // (without source.timezone: the plan's zone or UTC, whichever the file time fits, as for PostgreSQL headers)
        const local = completedAtUtc(inspection.dumpScan, zone);
        const utc = completedAtUtc(inspection.dumpScan, 'UTC');
        if (!local || !utc) return;
        const reading = named === undefined && zone !== 'UTC' ? pickReading({ createdAt: local, zone }, { createdAt: utc, zone: 'UTC' }, backup.mtime) : { createdAt: local, zone };
        inspection.createdAt = reading.createdAt;
        inspection.facts.createdAtZone = reading.zone;
        if (reading.alternative) {
          inspection.findings = [finding('BACKUP_TIME_AMBIGUOUS', `the dump's closing time fits ${reading.zone} (${reading.createdAt.toISOString()}) and ${reading.alternative.zone} (${reading.alternative.createdAt.toISOString()}); ${reading.zone} was used, judged by the file time. Set source.timezone to the dump server's zone to decide it`)];
        }
      },
    };
    return inspection;
  },

  chooseImage({ config, plan, policy, inspection }): ImageChoice {
    const forced = maria(plan).image;
    if (forced !== undefined) {
      if (!policy.allowedImages.includes(forced)) throw new ImageError('IMAGE_NOT_ALLOWED', `the plan names image ${forced}, which the operator does not allow (ERNSTFALL_SANDBOX_IMAGES)`);
      return { image: forced, facts: {} };
    }
    const version = chooseMariaVersion(inspection.info, config.sandbox.mariadbVersions, maria(plan).version);
    return { image: config.sandbox.mariadbImage.replace('{version}', version), facts: { mariadbVersion: version } };
  },

  sandbox({ plan }): SandboxRecipe {
    return { user: 'mysql', dataDir: DATA_DIR, command: plan.services?.length ? NETWORK_SERVER : SERVER };
  },

  /**
   * The restored database for an application group: a login made for this run
   * that may read (SELECT, SHOW VIEW) and nothing else, over the network only.
   * The server is told the password's hash in a file the worker writes (never
   * argv); the password itself goes only to the services' env.
   */
  async endpoint(sandbox, ctx) {
    const password = randomBytes(24).toString('hex');
    const hash = nativePasswordHash(password);
    if (!/^\*[0-9A-F]{40}$/.test(hash)) throw new Error('unexpected password hash');
    // in the data area (a volume: the archive API cannot write into the tmpfs); readable by the server's user, removed at once
    const file = `${DATA_DIR}/ef-endpoint.sql`;
    await sandbox.putFile(file, Buffer.from(`CREATE OR REPLACE USER '${ENDPOINT_USER}'@'%' IDENTIFIED BY PASSWORD '${hash}' WITH MAX_USER_CONNECTIONS 64;
GRANT SELECT, SHOW VIEW ON *.* TO '${ENDPOINT_USER}'@'%';
`), { mode: 0o444 });
    try {
      const r = await sandbox.exec(['bash', '-c', `mariadb ${CLIENT.join(' ')} < "$1"`, 'endpoint', file]);
      if (r.exitCode !== 0) throw new SandboxError(`could not create the service login in the sandbox: ${r.stderr.split('\n')[0]?.slice(0, 200) ?? ''}`);
    } finally {
      await sandbox.exec(['rm', '-f', '--', file]).catch(() => undefined);
    }
    const scan = ctx.inspection.dumpScan;
    const database = scan?.databases.length === 1 ? scan.databases[0]! : maria(ctx.plan).database;
    return { port: ENDPOINT_PORT, user: ENDPOINT_USER, password, database };
  },

  async ready(sandbox, ctx) {
    const deadline = performance.now() + 120_000;
    while (performance.now() < deadline) {
      ctx.signal.throwIfAborted();
      if (!(await sandbox.isRunning())) throw new SandboxError(`the MariaDB server exited during start: ${(await sandbox.logsTail()).slice(0, 400)}`);
      const r = await sandbox.exec(['mariadb-admin', ...CLIENT, 'ping']).catch(() => ({ exitCode: 1 }));
      if (r.exitCode === 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new SandboxError('the MariaDB server did not become ready within 120s');
  },

  async restore(sandbox, ctx) {
    const { info, dumpScan: scan } = ctx.inspection;
    const findings: Finding[] = [];
    const target = scan?.databases.length === 1 ? scan.databases[0]! : maria(ctx.plan).database;
    if ((scan?.databases.length ?? 0) > 1) {
      return { restored: false, findings: [finding('DUMP_UNSUPPORTED', `the dump holds ${scan!.databases.length} databases (--all-databases or --databases); ernstfall restores one database per plan`)], facts: { format: info.format } };
    }
    // a dump that switches to its own database (--databases) creates it itself: its name from the backup never
    // becomes SQL text here, only an argument; otherwise the plan's name (letters, digits, _: checked by the plan parser)
    const own = scan?.databases.length === 1;
    if (!own) {
      const create = await sandbox.exec(['mariadb', ...CLIENT, '--execute', `CREATE DATABASE IF NOT EXISTS \`${target}\``]);
      if (create.exitCode !== 0) throw new SandboxError(`could not create the database: ${create.stderr.slice(0, 200)}`);
    }
    const dec = info.format === 'plain-gzip' ? 'gzip -dc --' : info.format === 'plain-zstd' ? 'zstd -dc -q --' : 'cat --';
    const started = performance.now();
    // the script is a constant; the path and the database name are arguments, never shell text
    const client = `mariadb --no-defaults --socket=${SOCKET} --user=mysql --binary-mode --max-allowed-packet=1G`;
    const r = await sandbox.exec(['bash', '-o', 'pipefail', '-c', own ? `${dec} "$1" | ${client}` : `${dec} "$1" | ${client} -- "$2"`, 'restore', sandbox.backupPath, target], { maxOutput: 256 * 1024 });
    const stderr = r.stderr;
    const errors = stderr.split('\n').filter((l) => ERROR_LINE.test(l) || /^(gzip|zstd|\/\*stdin\*\\)/.test(l));
    const tool = { name: 'mariadb', exitCode: r.exitCode, stderrLines: stderr.split('\n').filter(Boolean).length, ms: Math.round(performance.now() - started) };
    const cut = scan && !scan.complete;
    if (scan?.decompressError || cut) {
      findings.push(finding('ARCHIVE_TRUNCATED', `the dump has no closing "-- Dump completed" line${scan?.decompressError ? ` and its ${info.format.slice(6)} stream is damaged` : ''}: it was cut off`));
      if (r.exitCode === 0) findings.push(finding('EXIT_CODE_LIED', 'the mariadb client exited 0 on a dump that was cut off'));
    }
    if (r.exitCode !== 0 && errors.length) {
      // the code and line only: the rest of an error message may quote row data
      const shown = errors.slice(0, 3).map((l) => { const m = ERROR_LINE.exec(l); return m ? `ERROR ${m[1]} (${m[2]})${m[3] ? ` at line ${m[3]}` : ''}` : l.slice(0, 80); });
      findings.push(finding('RESTORE_ERROR', `the mariadb client stopped (exit ${r.exitCode}): ${shown.join('; ')}`));
    } else if (r.exitCode !== 0 && !cut) {
      findings.push(finding('RESTORE_ERROR', `the restore exited ${r.exitCode}`));
    }
    const c = await countTables(sandbox, target);
    if (r.exitCode === 0 && !cut && c.tables === 0) findings.push(finding('EMPTY_RESTORE', 'the restore produced no table'));
    else if (r.exitCode === 0 && !cut && c.nonEmpty === 0) findings.push(finding('EMPTY_RESTORE', `the restore produced ${c.tables} table(s), all of them empty`));
    return {
      restored: r.exitCode === 0 && !cut, findings, log: stderr,
      facts: { tool, tables: c.tables, nonEmptyTables: c.nonEmpty, database: target },
    };
  },

  query(sandbox, ctx, restored) {
    return mariaQuery(sandbox, (restored.facts.database as string | undefined) ?? maria(ctx.plan).database);
  },

  builtins(sandbox, ctx, restored, input) {
    const database = (restored.facts.database as string | undefined) ?? maria(ctx.plan).database;
    // MariaDB reads every date/time column it can read exactly at once; the plan's freshness column or query decides as for PostgreSQL
    return databaseBuiltins(ctx as unknown as DriverContext, mariaQuery(sandbox, database), () => profileMariadb(sandbox, database, CLIENT), input);
  },

  checks(sandbox, ctx, restored, { lastGood }) {
    return sqlCheckRunner(mariaQuery(sandbox, (restored.facts.database as string | undefined) ?? maria(ctx.plan).database), lastGood, 'mariadb');
  },
};

async function countTables(sandbox: Sandbox, database: string): Promise<{ tables: number; nonEmpty: number }> {
  const r = await sandbox.exec(['mariadb', ...CLIENT, '--batch', '--skip-column-names', '--execute', COUNT_SQL, '--', database]);
  if (r.exitCode !== 0) throw new SandboxError(`counting the restored tables failed: ${r.stderr.split('\n')[0]?.slice(0, 200) ?? ''}`);
  const [tables, nonEmpty] = r.stdout.trim().split('\n').at(-1)!.split('\t').map(Number);
  return { tables: tables ?? 0, nonEmpty: nonEmpty ?? 0 };
}
