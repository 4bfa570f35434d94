import Docker from 'dockerode';

export function createDocker(dockerHost?: string): Docker {
  // dockerode reads DOCKER_HOST itself; passing nothing keeps its defaults (unix socket).
  if (!dockerHost) return new Docker();
  const u = new URL(dockerHost);
  if (u.protocol === 'unix:') return new Docker({ socketPath: u.pathname });
  return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: u.protocol === 'https:' ? 'https' : 'http' });
}

/** A backup on this host's disk can be bind-mounted only when the engine runs here too. */
export function isLocalEngine(dockerHost?: string): boolean {
  return !dockerHost || dockerHost.startsWith('unix:') || dockerHost.startsWith('npipe:');
}

export const LABELS = {
  role: 'org.ernstfall.role',
  instance: 'org.ernstfall.instance',
  runId: 'org.ernstfall.run-id',
  planId: 'org.ernstfall.plan-id',
  tenantId: 'org.ernstfall.tenant-id',
} as const;

export type { Docker };
