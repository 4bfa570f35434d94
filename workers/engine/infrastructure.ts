import type Docker from 'dockerode';
import { finding, type Finding } from '../../services/findings.js';
import type { Sandbox } from '../sandbox/sandbox.js';

/** Errors of the Docker client that mean the engine is not there (socket gone, refused, restarting). */
export function isEngineUnavailable(err: unknown): boolean {
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(e.code ?? '')) return true;
  return e.statusCode === 500 && /restarting|shutting down|daemon|connection reset/i.test(e.message ?? '');
}

const DISK_FULL = /No space left on device|could not extend file|disk full|Disk quota exceeded/i;

/**
 * Infrastructure is not the backup's fault: when a restore or a check failed,
 * ask the sandbox whether the kernel killed something for memory, or the data
 * area filled up, or whether the engine itself went away. Each is an `error`
 * finding (could not verify); the findings that blamed the backup are kept,
 * downgraded to `info`, so the record still says what the tool reported.
 */
export async function infrastructureCause(
  docker: Docker,
  sandbox: Sandbox | undefined,
  toolOutput: string,
): Promise<Finding | undefined> {
  const alive = await docker.ping().then(() => true, () => false);
  if (!alive) return finding('ENGINE_UNAVAILABLE', 'the Docker engine could not be reached during the test; nothing about the backup was learned');
  if (sandbox) {
    const state = await sandbox.state();
    if (state === null) return finding('ENGINE_UNAVAILABLE', 'the sandbox disappeared from the Docker engine during the test (engine restarted?)');
    const kills = state.running ? await sandbox.oomKills() : null;
    if (state.oomKilled || (kills ?? 0) > 0) {
      return finding('SANDBOX_OOM', 'the sandbox ran out of memory and the kernel killed a process in it; raise sandbox.memory (within the operator\'s bound) — this says nothing about the backup');
    }
  }
  if (DISK_FULL.test(toolOutput)) {
    return finding('SANDBOX_DISK_FULL', 'the sandbox\'s data area or the Docker host\'s disk is full; this says nothing about the backup');
  }
  return undefined;
}

/** The backup's findings after an infrastructure cause was found: kept for the record, no longer deciding the verdict. */
export function demote(findings: Finding[], cause: Finding): Finding[] {
  return findings.map((f) => (f.severity === 'failure' ? { ...f, severity: 'info', message: `${f.message} (after ${cause.code}: not held against the backup)` } : f));
}
