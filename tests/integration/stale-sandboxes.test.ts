import { afterAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createDocker, LABELS } from '../../workers/sandbox/docker.js';
import { removeStaleTestSandboxes } from '../helpers/stale-sandboxes.js';
import { createRunNetwork } from '../../workers/sandbox/network.js';
import { TEST_INSTANCE, testInstance } from '../helpers/config.js';

/**
 * The global set-up's clean-up of sandboxes that killed test runs left (tests/helpers/stale-sandboxes.ts), on the
 * real engine. Narrowed to this file's own instances, so sandboxes of test runs beside it stay; the age is two
 * seconds here instead of six hours, so "old" means made before the pause.
 */
const docker = createDocker(process.env.DOCKER_HOST);
const containers: string[] = [];
const volumes: string[] = [];

const labels = (instance: string) => ({ [LABELS.role]: 'sandbox', [LABELS.instance]: instance, [LABELS.runId]: randomUUID() });

/** A sandbox as createSandbox labels it, with its data volume (anonymous, labelled) mounted. */
async function sandbox(instance: string): Promise<string> {
  const l = labels(instance);
  const c = await docker.createContainer({
    Image: 'ernstfall/sandbox-postgres:15', Cmd: ['sleep', '300'], NetworkDisabled: true, Labels: l,
    HostConfig: { NetworkMode: 'none', Mounts: [{ Type: 'volume', Source: '', Target: '/data', VolumeOptions: { NoCopy: true, Labels: l, DriverConfig: { Name: 'local', Options: {} } } }] },
  });
  containers.push(c.id);
  const mount = (await c.inspect()).Mounts.find((m) => m.Destination === '/data');
  if (mount?.Name) volumes.push(mount.Name);
  return c.id;
}
/** A data volume whose container is gone. */
async function orphanVolume(instance: string): Promise<string> {
  const v = await docker.createVolume({ Name: `ef-stale-test-${randomUUID().slice(0, 8)}`, Labels: labels(instance) }) as unknown as { name: string };
  volumes.push(v.name);
  return v.name;
}
const containerExists = (id: string) => docker.getContainer(id).inspect().then(() => true, () => false);
const volumeExists = (name: string) => docker.getVolume(name).inspect().then(() => true, () => false);
const networks: string[] = [];
/** A run network as createRunNetwork labels it (internal, no host address). */
async function runNetwork(instance: string): Promise<string> {
  const n = await createRunNetwork(docker, { instance, runId: randomUUID(), planId: 'stale', tenantId: 'stale' });
  networks.push(n.id);
  return n.id;
}
const networkExists = (id: string) => docker.getNetwork(id).inspect().then(() => true, () => false);

afterAll(async () => {
  for (const id of containers) await docker.getContainer(id).remove({ force: true, v: true }).catch(() => undefined);
  for (const name of volumes) await docker.getVolume(name).remove().catch(() => undefined);
  for (const id of networks) await docker.getNetwork(id).remove().catch(() => undefined);
});

describe('stale test sandboxes', () => {
  it('test instances are named so that no installation\'s default instance matches', () => {
    expect(TEST_INSTANCE.test(testInstance())).toBe(true);
    for (const other of ['ef-1a2b3c4d5e', 'bench-847b87', 'test', 'test-', 'my-test-123456', 'test-1234567', 'test-ABCDEF']) {
      expect(TEST_INSTANCE.test(other), other).toBe(false);
    }
  });

  it('removes an old test sandbox with its volume and an old orphaned test volume; a fresh test sandbox and an old installation\'s are left', async () => {
    const [oldTest, freshTest, installation] = [testInstance(), testInstance(), `ef-${randomUUID().replace(/-/g, '').slice(0, 10)}`];
    const oldBox = await sandbox(oldTest);
    const oldBoxVolume = volumes[volumes.length - 1]!;
    const oldOrphan = await orphanVolume(oldTest);
    const installationBox = await sandbox(installation);
    const installationOrphan = await orphanVolume(installation);
    const oldNet = await runNetwork(oldTest);
    const installationNet = await runNetwork(installation);
    await new Promise((r) => setTimeout(r, 3500));
    const freshBox = await sandbox(freshTest);
    const freshOrphan = await orphanVolume(freshTest);
    const freshNet = await runNetwork(freshTest);

    const removed = await removeStaleTestSandboxes(docker, { olderThanSeconds: 2, onlyInstances: [oldTest, freshTest, installation] });
    expect(removed.containers).toEqual([oldBox]);
    // the sandbox's own volume went with it (v: true)
    expect(removed.volumes).toEqual([oldOrphan]);
    expect(removed.networks).toEqual([oldNet]);
    expect(await networkExists(oldNet)).toBe(false);
    expect(await networkExists(freshNet)).toBe(true);
    expect(await networkExists(installationNet)).toBe(true);
    expect(await containerExists(oldBox)).toBe(false);
    expect(await volumeExists(oldBoxVolume)).toBe(false);
    expect(await volumeExists(oldOrphan)).toBe(false);
    // not old enough, and not a test's
    expect(await containerExists(freshBox)).toBe(true);
    expect(await volumeExists(freshOrphan)).toBe(true);
    expect(await containerExists(installationBox)).toBe(true);
    expect(await volumeExists(installationOrphan)).toBe(true);
  });

  it('without the engine\'s time nothing is judged old', async () => {
    const box = await sandbox(testInstance());
    await new Promise((r) => setTimeout(r, 1500));
    const blind = new Proxy(docker, { get: (t, k) => (k === 'info' ? async () => ({}) : Reflect.get(t, k)) });
    const removed = await removeStaleTestSandboxes(blind, { olderThanSeconds: 0, onlyInstances: [(await docker.getContainer(box).inspect()).Config.Labels[LABELS.instance]!] });
    expect(removed).toEqual({ containers: [], volumes: [], networks: [] });
    expect(await containerExists(box)).toBe(true);
  });
});
