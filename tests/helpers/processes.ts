/**
 * ernstfall roles as real child processes (`node --import tsx services/main.ts <roles>`), for tests that
 * kill them: SIGKILL leaves no chance to clean up, as a crash or the OOM killer would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { repoRoot, type ProcessRole } from '../../services/config.js';

export interface ServiceProcess {
  child: ChildProcess;
  /** Resolves when the process is gone (exit code or signal). */
  exited: Promise<void>;
  /** SIGKILL, then waits until it is gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful shutdown), SIGKILL after `graceMs`; waits until it is gone. */
  stop(graceMs?: number): Promise<void>;
  /** The last lines it wrote (stdout and stderr), for failure messages. */
  output(): string;
}

const started: ServiceProcess[] = [];

/**
 * The environment of a child: this process's, with `over` on top. Setting X drops an inherited X_FILE
 * (both set is a configuration error), as testConfig() does; undefined removes a variable.
 */
export function childEnv(over: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(over)) {
    if (!k.endsWith('_FILE') && !(`${k}_FILE` in over)) delete env[`${k}_FILE`];
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** What identifies a test's harness to a child process (tests/helpers/harness.ts). */
export interface HarnessIds { tdb: { appUrl: string }; config: { instance: string }; prefix: string }

/**
 * The variables a child process (`services/main.ts worker`, …) needs to join the harness `h`: its test
 * database, sandbox instance label, queue prefix and `backupRoot`; no plans folder, no settle time, warnings
 * only. `over` goes on top; pass the result to startService() or childEnv().
 */
export function harnessEnv(h: HarnessIds, backupRoot: string, over: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    DATABASE_URL: h.tdb.appUrl,
    ERNSTFALL_INSTANCE: h.config.instance,
    ERNSTFALL_QUEUE_PREFIX: h.prefix,
    ERNSTFALL_BACKUP_ROOTS: backupRoot,
    ERNSTFALL_PLANS_DIR: '/nonexistent',
    ERNSTFALL_SETTLE_SECONDS: '0',
    LOG_LEVEL: 'warn',
    // a worker or scheduler also serves /healthz and /metrics: on a port of its own, never the installation's 8080
    PORT: '0',
    ...over,
  };
}

/** Starts `services/main.ts` with these roles and environment (see childEnv). Stopped by stopServices() at the latest. */
export function startService(roles: ProcessRole[], env: Record<string, string | undefined>, opts: { keepLines?: number } = {}): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'services/main.ts'), ...roles], {
    cwd: repoRoot,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = opts.keepLines ?? 200;
  const collect = (chunk: Buffer) => {
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(l);
    if (lines.length > keep) lines.splice(0, lines.length - keep);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const p: ServiceProcess = {
    child,
    exited,
    async kill() {
      if (!gone()) child.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 10_000) {
      if (gone()) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
    output: () => lines.join('\n'),
  };
  started.push(p);
  return p;
}

/**
 * Stops every process startService() started that still runs, and waits until they are gone: their
 * database connections must close before a test database is dropped.
 */
export async function stopServices(graceMs = 10_000): Promise<void> {
  await Promise.all(started.splice(0).map((p) => p.stop(graceMs)));
}

/** A TCP port free on 127.0.0.1 right now (for a child's PORT). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
