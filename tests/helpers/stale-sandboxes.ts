/**
 * Sandboxes that test runs killed from outside left behind. Each test file runs under an instance label of its
 * own (TEST_INSTANCE), and the reaper only ever removes its own instance's sandboxes, so a run killed mid-restore
 * leaves its `ernstfall-test-…` container and the container's data volume for good. The suite's global set-up
 * removes those of test instances that are older than STALE_SECONDS by the engine's clock: other checkouts on
 * the machine may be running tests right now, and no test keeps a sandbox for hours. An installation's
 * sandboxes (another instance label) are never touched. An application group's run network (decisions/021) of
 * a test instance goes too, once no container is attached to it.
 */
import type Docker from 'dockerode';
import { LABELS } from '../../workers/sandbox/docker.js';
import { NETWORK_ROLE } from '../../workers/sandbox/network.js';
import { TEST_INSTANCE } from './config.js';

export const STALE_SECONDS = 6 * 3600;

export interface StaleRemoved { containers: string[]; volumes: string[]; networks: string[] }

/**
 * Removes containers and unused volumes labelled as sandboxes of a test instance whose Created time is at least
 * `olderThanSeconds` before the engine's own time (not the tests' clock, which `npm run test:date-ahead` moves a
 * year ahead; an engine that does not say its time: nothing is removed). `onlyInstances` narrows it further (the
 * test of this function, which must not touch the sandboxes of test runs going on beside it).
 */
export async function removeStaleTestSandboxes(docker: Docker, opts: { olderThanSeconds?: number; onlyInstances?: string[] } = {}): Promise<StaleRemoved> {
  const maxAge = opts.olderThanSeconds ?? STALE_SECONDS;
  const info = (await docker.info()) as { SystemTime?: string };
  const engineNow = info.SystemTime ? Date.parse(info.SystemTime) / 1000 : Number.NaN;
  const removed: StaleRemoved = { containers: [], volumes: [], networks: [] };
  if (!Number.isFinite(engineNow)) return removed;
  const mine = (labels: Record<string, string> | null | undefined, role = 'sandbox') => {
    const instance = labels?.[LABELS.instance] ?? '';
    return labels?.[LABELS.role] === role && TEST_INSTANCE.test(instance) && (!opts.onlyInstances || opts.onlyInstances.includes(instance));
  };
  const old = (createdSeconds: number) => engineNow - createdSeconds >= maxAge;
  const gone = (err: unknown) => [404, 409].includes((err as { statusCode?: number }).statusCode ?? 0);

  const containers = await docker.listContainers({ all: true, filters: { label: [`${LABELS.role}=sandbox`] } });
  for (const c of containers) {
    if (!mine(c.Labels) || !old(c.Created)) continue;
    try {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
      removed.containers.push(c.Id);
    } catch (err) {
      if (!gone(err)) throw err;
    }
  }
  // a data volume whose container went without `v` (e.g. removed by hand), or while the engine was stopping
  const { Volumes } = await docker.listVolumes({ filters: { label: [`${LABELS.role}=sandbox`], dangling: ['true'] } });
  for (const v of Volumes ?? []) {
    const created = Date.parse((v as { CreatedAt?: string }).CreatedAt ?? '') / 1000;
    if (!mine(v.Labels) || !old(created)) continue;
    try {
      await docker.getVolume(v.Name).remove();
      removed.volumes.push(v.Name);
    } catch (err) {
      if (!gone(err)) throw err;
    }
  }
  // a run network, once its containers are gone (services and the sandbox carry the sandbox role: removed above)
  const networks = await docker.listNetworks({ filters: { label: [`${LABELS.role}=${NETWORK_ROLE}`] } });
  for (const n of networks) {
    const created = Date.parse(n.Created ?? '') / 1000;
    if (!mine(n.Labels, NETWORK_ROLE) || !old(created)) continue;
    try {
      await docker.getNetwork(n.Id).remove();
      removed.networks.push(n.Id);
    } catch (err) {
      // 403: something is still attached (a container of a run going on): left for a later set-up
      if (!gone(err) && (err as { statusCode?: number }).statusCode !== 403) throw err;
    }
  }
  return removed;
}
