import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { LABELS } from './docker.js';

/**
 * The internal network of one run with an application group (decisions/021):
 * a bridge with `Internal: true` and no address of the host's on it, so
 * nothing is routed out, the host is not reachable and there is no NAT;
 * nothing on it publishes a port. The restored database, the services
 * and ernstfall's probe talk to each other on it and to nothing else. It is
 * labelled like the sandbox and removed with it, by teardown or the reaper.
 */
export const NETWORK_ROLE = 'sandbox-network';

export interface RunNetwork {
  id: string;
  name: string;
}

export interface RunLabels {
  instance: string;
  runId: string;
  planId: string;
  tenantId: string;
}

export function networkName(instance: string, runId: string): string {
  return `ernstfall-${instance}-${runId}`;
}

export async function createRunNetwork(docker: Docker, run: RunLabels): Promise<RunNetwork> {
  const name = networkName(run.instance, run.runId);
  const net = await docker.createNetwork({
    Name: name,
    Driver: 'bridge',
    Internal: true,
    Attachable: false,
    CheckDuplicate: true,
    EnableIPv6: false,
    Labels: {
      [LABELS.role]: NETWORK_ROLE,
      [LABELS.instance]: run.instance,
      [LABELS.runId]: run.runId,
      [LABELS.planId]: run.planId,
      [LABELS.tenantId]: run.tenantId,
    },
    // Internal only keeps traffic from being forwarded: the host itself stays reachable through the bridge's
    // address (the containers' gateway) and through its other addresses (docker0's), since that traffic goes to
    // the host's INPUT, not FORWARD. Without an address on the bridge the host has no foot on this network:
    // the containers reach each other (and Docker's DNS) and nothing else. Masquerading off as well.
    Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true', 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
  });
  return { id: net.id, name };
}

/** Removes the network (its containers must be gone first); a network already gone is fine. */
export async function removeRunNetwork(docker: Docker, id: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await docker.getNetwork(id).remove();
      return;
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code === 404) return;
      // 403/409: an endpoint is still attached while the engine removes a container
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Whether the engine still knows the network (the proof of teardown). */
export async function networkExists(docker: Docker, id: string): Promise<boolean> {
  return docker.getNetwork(id).inspect().then(() => true, (e: { statusCode?: number }) => e.statusCode !== 404);
}

async function listRunNetworks(docker: Docker, instance: string, runId?: string): Promise<Docker.NetworkInspectInfo[]> {
  return docker.listNetworks({
    filters: { label: [`${LABELS.role}=${NETWORK_ROLE}`, `${LABELS.instance}=${instance}`, ...(runId ? [`${LABELS.runId}=${runId}`] : [])] },
  });
}

/**
 * The reaper's part for networks: this instance's run networks whose run is
 * over (or unknown for longer than `unknownGraceSeconds`, judged by the
 * engine's clock). Called after the containers are removed.
 */
export async function reapNetworks(
  docker: Docker, instance: string, status: (runIds: string[]) => Promise<Map<string, string>>, engineNow: number, unknownGraceSeconds: number, log: Logger,
): Promise<string[]> {
  const nets = await listRunNetworks(docker, instance);
  if (nets.length === 0) return [];
  const known = await status(nets.map((n) => n.Labels?.[LABELS.runId] ?? '').filter((id) => /^[0-9a-f-]{36}$/.test(id)));
  const removed: string[] = [];
  for (const n of nets) {
    const runId = n.Labels?.[LABELS.runId];
    const s = runId ? known.get(runId) : undefined;
    if (s !== undefined && s !== 'finished') continue;
    if (s === undefined && !(engineNow - Date.parse(n.Created) / 1000 >= unknownGraceSeconds)) continue;
    try {
      await docker.getNetwork(n.Id).remove();
      removed.push(n.Id);
      log.warn({ networkId: n.Id, runId }, 'reaper removed a run network whose run is no longer active');
    } catch (err) {
      // still in use (a container being removed): the next pass takes it
      if ((err as { statusCode?: number }).statusCode !== 404) log.warn({ networkId: n.Id, err: (err as Error).message }, 'run network not removed yet');
    }
  }
  return removed;
}

export async function removeNetworksOfRun(docker: Docker, instance: string, runId: string): Promise<number> {
  const nets = await listRunNetworks(docker, instance, runId);
  for (const n of nets) await removeRunNetwork(docker, n.Id).catch(() => undefined);
  return nets.length;
}
