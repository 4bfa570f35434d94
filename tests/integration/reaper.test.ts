import { afterAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createDocker, LABELS } from '../../workers/sandbox/docker.js';
import { reapSandboxes } from '../../workers/sandbox/reaper.js';
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

afterAll(async () => {
  for (const id of made) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
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
});
