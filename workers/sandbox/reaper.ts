import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { LABELS } from './docker.js';
import { reapNetworks, removeNetworksOfRun } from './network.js';

/**
 * Removes this instance's sandboxes whose run is no longer active. Scoped by
 * the instance label, so one installation never touches another's sandboxes.
 */
/** A sandbox whose run this database does not know is left alone this long (it may belong to another installation). */
const UNKNOWN_GRACE_SECONDS = 24 * 3600;

export async function reapSandboxes(
  docker: Docker,
  instance: string,
  runStatus: (runIds: string[]) => Promise<Map<string, string>>,
  log: Logger,
): Promise<string[]> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.role}=sandbox`, `${LABELS.instance}=${instance}`] },
  });
  // the engine's own clock, the one that wrote `Created`: a worker host whose clock is off (another host, a test
  // a year ahead) must not take a young sandbox of another installation for an old one; unknown: nothing is judged old
  const engineClock = async () => {
    const info = await docker.info().catch(() => undefined) as { SystemTime?: string } | undefined;
    return info?.SystemTime ? Date.parse(info.SystemTime) / 1000 : Number.NaN;
  };
  // an application group's internal network goes after its containers (decisions/021)
  const networks = async () => reapNetworks(docker, instance, runStatus, await engineClock(), UNKNOWN_GRACE_SECONDS, log);
  if (containers.length === 0) {
    await networks();
    return [];
  }
  const status = await runStatus(containers.map((c) => c.Labels[LABELS.runId] ?? '').filter((id) => /^[0-9a-f-]{36}$/.test(id)));
  const removed: string[] = [];
  const engineNow = await engineClock();
  for (const c of containers) {
    const runId = c.Labels[LABELS.runId];
    const s = runId ? status.get(runId) : undefined;
    if (s !== undefined && s !== 'finished') continue;
    if (s === undefined && !(engineNow - c.Created >= UNKNOWN_GRACE_SECONDS)) continue;
    try {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
      removed.push(c.Id);
      log.warn({ containerId: c.Id, runId }, 'reaper removed a sandbox whose run is no longer active');
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
  await networks();
  return removed;
}

export async function removeSandboxesOfRun(docker: Docker, instance: string, runId: string): Promise<number> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.role}=sandbox`, `${LABELS.instance}=${instance}`, `${LABELS.runId}=${runId}`] },
  });
  for (const c of containers) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
  await removeNetworksOfRun(docker, instance, runId).catch(() => undefined);
  return containers.length;
}
