import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, loadEnvFile, repoRoot, type ProcessRole } from './config.js';
import { createLogger } from './logger.js';
import { createContainer } from './container.js';
import { appDeps, buildApp } from './api/app.js';
import { VeeamSyslogListener } from './external/syslog.js';
import { buildOpsApp } from './api/ops-app.js';
import { startWorker } from '../workers/main.js';
import { Scheduler } from './scheduling/scheduler.js';
import { ensureSelfTestPlan, SelfBackupSchedule, SELF_TEST_PLAN_ID } from './ops/self-backup.js';
import { DEFAULT_TENANT_ID } from '../db/schema.js';
import { formatPlanIssues } from './plans/plan.parser.js';
import { ReminderEngine } from './notify/reminders.js';
import { NotificationDispatcher } from './notify/dispatcher.js';
import { RestartTestCoordinator } from './systems/restart-test.service.js';
import { createChannels } from './notify/channels/index.js';

/** Starts the given roles (default: ERNSTFALL_ROLES, or all three) in this process. */
export async function main(rolesOverride?: ProcessRole[]): Promise<void> {
  loadEnvFile();
  let config;
  try {
    config = loadConfig(rolesOverride ? { ...process.env, ERNSTFALL_ROLES: rolesOverride.join(',') } : process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  // central signing: only the API and scheduler roles hold the signing key; a worker-only process hands its outcomes over
  const signs = config.roles.includes('api') || config.roles.includes('scheduler');
  const c = createContainer(config, log, { signing: signs });
  if (signs) await c.ledger.init();
  const closers: (() => Promise<void>)[] = [];

  if (config.auth.bootstrapToken) {
    log.warn('ERNSTFALL_BOOTSTRAP_TOKEN is set: it grants full API access; remove it once real users and tokens exist');
  }

  if (signs) {
    // a plan change is an audit record, signed: the worker reads plans from the database
    const sync = await c.plans.syncFromDir(config.plansDir);
    log.info({ loaded: sync.loaded.length, invalid: sync.invalid.length, dir: config.plansDir }, 'restore plans synced from files');
    for (const bad of sync.invalid) {
      for (const line of formatPlanIssues(bad.issues, `restore-plans/${bad.file}`)) log.error(line);
    }
  }

  if (config.roles.includes('worker')) {
    const worker = await startWorker({ config, db: c.db, redis: c.redis, queue: c.queue, docker: c.docker, log, clock: c.clock });
    closers.push(() => worker.close());
  }
  if (signs) {
    // after the worker in closers: the outcomes of tests the worker stops on shutdown are still signed
    const signer = c.outcomeSigner();
    await signer.start();
    closers.push(() => signer.stop());
    // restart tests advance tier by tier in whichever signing process gets to them first (row locks)
    const restarts = new RestartTestCoordinator(c.restartTests, log.child({ role: 'restart-tests' }));
    restarts.start();
    closers.unshift(() => restarts.stop());
  }
  let scheduler: Scheduler | undefined;
  if (config.roles.includes('scheduler')) {
    const slog = log.child({ role: 'scheduler' });
    const reminders = new ReminderEngine(c.db, { lang: config.notify.lang, timezone: config.notify.timezone, digestTime: config.notify.digestTime, publicUrl: config.http.publicUrl,
      checkpoints: { recipients: config.notify.checkpointRecipients, sign: (tenantId) => c.ledger.signedHead(tenantId) },
    }, slog);
    scheduler = new Scheduler(c.db, c.runs, c.clock, slog, { databaseUrl: config.database.url, reminders });
    // every scheduler process delivers the outbox (row leases keep them from sending one notification twice)
    const dispatcher = new NotificationDispatcher(c.db, createChannels(config.notify, { log: slog }), slog, config.notify);
    dispatcher.start();
    closers.push(() => dispatcher.stop());
    if (!config.notify.smtpUrl) slog.warn('ERNSTFALL_SMTP_URL is not set: mail notifications cannot be delivered (they are kept as failed)');
    if (config.selfBackup) {
      // ernstfall backs itself up and restore-tests the dump with a built-in plan (docs/operations.md)
      const created = await ensureSelfTestPlan(c.plans, DEFAULT_TENANT_ID, config.selfBackup.dir).catch((err: Error) => {
        slog.error({ err: err.message, dir: config.selfBackup!.dir }, 'the self-test plan could not be created (is ERNSTFALL_SELF_BACKUP_DIR inside ERNSTFALL_BACKUP_ROOTS?)');
        return 'failed';
      });
      slog.info({ plan: SELF_TEST_PLAN_ID, state: created }, 'self-test plan');
      if (!config.database.ownerUrl) {
        // the app role may not read every table (the migrations): the dump would fail every minute
        slog.error('ERNSTFALL_SELF_BACKUP_DIR is set but DATABASE_OWNER_URL is not: the self-backup needs the owner; it does not run, and the self-test plan will go overdue');
      } else {
        const job = new SelfBackupSchedule({
          ...config.selfBackup, databaseUrl: config.database.ownerUrl, trustedKeysDir: config.evidence.trustedKeysDir,
        }, c.clock, slog, (fn) => c.db.transaction().execute(async (trx) => {
          // one scheduler of several makes the day's dump
          return (await c.repos.database.tryTransactionLock('ernstfall-self-backup', trx)) ? fn() : undefined;
        }));
        job.start();
        closers.push(async () => job.stop());
      }
    }
  }
  if (config.roles.includes('api')) {
    const deps = appDeps(c, config.roles, version);
    // the scheduler's health is part of this process's readiness only when it runs here
    if (scheduler) deps.readiness.push(scheduler.readinessProbe(), c.pools.readinessProbe());
    const app = await buildApp(deps);
    await app.listen({ host: config.http.host, port: config.http.port });
    closers.unshift(() => app.close());
    if (config.syslog) {
      const syslog = new VeeamSyslogListener(c.db, c.external, config.syslog, log.child({ role: 'syslog' }));
      await syslog.start();
      closers.unshift(() => syslog.close());
    }
  } else {
    // scheduler and/or worker only: no API, but probes and metrics on HOST:PORT, so a scheduler that stops
    // ticking fails its own /readyz (and shows in /metrics) while the API processes stay ready
    const readiness = c.readiness(config.roles);
    // a pool with work and no live worker: its tests would wait for ever (the scheduler's /readyz names it)
    if (scheduler) readiness.push(scheduler.readinessProbe(), c.pools.readinessProbe());
    const ops = await buildOpsApp({ log, db: c.db, readiness, metrics: { ...config.metrics, pools: c.pools }, hsts: config.auth.cookieSecure, trustProxy: config.http.trustProxy, clock: c.clock });
    await ops.listen({ host: config.http.host, port: config.http.port });
    closers.unshift(() => ops.close());
  }
  if (scheduler) {
    scheduler.start();
    closers.unshift(() => scheduler.stop());
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    for (const close of closers) await close().catch((err: Error) => log.error({ err: err.message }, 'close failed'));
    await c.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const roles = process.argv.slice(2).filter((a) => ['api', 'worker', 'scheduler'].includes(a)) as ProcessRole[];
  await main(roles.length ? roles : undefined);
}
