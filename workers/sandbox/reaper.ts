import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { LABELS } from './docker.js';

/**
 * Removes this instance's sandboxes whose run is no longer active. Scoped by
 * the instance label, so one installation never touches another's sandboxes.
 */
export async function reapSandboxes(
  docker: Docker,
  instance: string,
  isActive: (runIds: string[]) => Promise<Set<string>>,
  log: Logger,
): Promise<string[]> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.role}=sandbox`, `${LABELS.instance}=${instance}`] },
  });
  if (containers.length === 0) return [];
  const active = await isActive(containers.map((c) => c.Labels[LABELS.runId] ?? '').filter(Boolean));
  const removed: string[] = [];
  for (const c of containers) {
    const runId = c.Labels[LABELS.runId];
    if (runId && active.has(runId)) continue;
    try {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
      removed.push(c.Id);
      log.warn({ containerId: c.Id, runId }, 'reaper removed a sandbox whose run is no longer active');
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
  return removed;
}

export async function removeSandboxesOfRun(docker: Docker, instance: string, runId: string): Promise<number> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.role}=sandbox`, `${LABELS.instance}=${instance}`, `${LABELS.runId}=${runId}`] },
  });
  for (const c of containers) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
  return containers.length;
}
