import type Docker from 'dockerode';

/**
 * What every container of a run gets, the sandbox and an application group's
 * (decisions/001, 021): no capabilities, no new privileges, a read-only root
 * file system, memory without swap, CPU and pids limits, no restart, capped
 * logs. Each adds its own tmpfs, mounts and network.
 */
export function hardenedHostConfig(limits: { memoryBytes: number; cpus: number; pids: number }) {
  return {
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    ReadonlyRootfs: true,
    Memory: limits.memoryBytes,
    MemorySwap: limits.memoryBytes,
    NanoCpus: Math.round(limits.cpus * 1e9),
    PidsLimit: limits.pids,
    RestartPolicy: { Name: 'no' },
    LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } },
  };
}

/**
 * Kills and removes a container with its anonymous volumes; one already gone
 * is fine. 409: a removal is already in progress (e.g. the engine still tears
 * down an exec), so it is retried for up to five seconds.
 */
export async function removeContainer(container: Docker.Container): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await container.remove({ force: true, v: true });
      return;
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code === 404) return;
      if (code !== 409 || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
