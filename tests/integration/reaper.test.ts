import { afterAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createDocker, LABELS } from '../../workers/sandbox/docker.js';
import { reapSandboxes, removeSandboxesOfRun } from '../../workers/sandbox/reaper.js';
import { createRunNetwork, networkExists } from '../../workers/sandbox/network.js';
import { createLogger } from '../../services/logger.js';

const docker = createDocker();
const log = createLogger('silent');
const made: string[] = [];

async function sandbox(instance: string, runId: string): Promise<string> {
  const c = await docker.createContainer({
    Image: 'ernstfall/sandbox-postgres:15', Cmd: ['sleep', '300'], NetworkDisabled: true, HostConfig: { NetworkMode: 'none' },
    Labels: { [LABELS.role]: 'sandbox', [LABELS.instance]: instance, [LABELS.runId]: runId },
  });
  made.push(c.id);
  return c.id;
}
const exists = (id: string) => docker.getContainer(id).inspect().then(() => true, () => false);

const nets: string[] = [];
async function network(instance: string, runId: string): Promise<string> {
  const n = await createRunNetwork(docker, { instance, runId, planId: 'p', tenantId: 't' });
  nets.push(n.id);
  return n.id;
}

afterAll(async () => {
  for (const id of made) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  for (const id of nets) await docker.getNetwork(id).remove().catch(() => undefined);
});

describe('the reaper', () => {
  it('removes only its own instance\'s sandboxes of finished runs; running and unknown runs and other instances are left', async () => {
    const mine = `test-reaper-${randomUUID().slice(0, 8)}`;
    const [finished, running, unknown] = [randomUUID(), randomUUID(), randomUUID()];
    const a = await sandbox(mine, finished);
    const b = await sandbox(mine, running);
    const c = await sandbox(mine, unknown); // e.g. another installation using the same label by mistake
    const d = await sandbox(`${mine}-other`, finished);
    const removed = await reapSandboxes(docker, mine, async () => new Map([[finished, 'finished'], [running, 'running']]), log);
    expect(removed).toEqual([a]);
    expect(await exists(a)).toBe(false);
    expect(await exists(b)).toBe(true);
    expect(await exists(c)).toBe(true);
    expect(await exists(d)).toBe(true);
  });

  it('removes the internal networks of application groups whose run is over, after their containers; running and unknown runs and other instances keep theirs', async () => {
    const mine = `test-reaper-${randomUUID().slice(0, 8)}`;
    const [finished, running, unknown, lost] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const a = await network(mine, finished);
    const inA = await sandbox(mine, finished);
    await docker.getNetwork(a).connect({ Container: inA }); // a container still attached: removed first, then the network
    const b = await network(mine, running);
    const c = await network(mine, unknown);
    const d = await network(`${mine}-other`, finished);
    await reapSandboxes(docker, mine, async () => new Map([[finished, 'finished'], [running, 'running']]), log);
    expect(await exists(inA)).toBe(false);
    expect(await networkExists(docker, a)).toBe(false);
    expect(await networkExists(docker, b)).toBe(true);
    expect(await networkExists(docker, c)).toBe(true);
    expect(await networkExists(docker, d)).toBe(true);
    // with no container left at all, a finished run's network still goes
    const e = await network(mine, lost);
    await reapSandboxes(docker, mine, async () => new Map([[lost, 'finished'], [running, 'running']]), log);
    expect(await networkExists(docker, e)).toBe(false);
    // a lost run's network goes with its sandboxes (the maintenance pass)
    await removeSandboxesOfRun(docker, mine, running);
    expect(await networkExists(docker, b)).toBe(false);
  });
});
