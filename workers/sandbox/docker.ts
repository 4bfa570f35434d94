import Docker from 'dockerode';

export function createDocker(dockerHost?: string): Docker {
  if (!dockerHost) return new Docker();
  const u = new URL(dockerHost);
  if (u.protocol === 'unix:') return new Docker({ socketPath: u.pathname });
  // tcp:// and ssh://: docker-modem reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH itself, so TLS is kept
  if (process.env.DOCKER_HOST !== dockerHost) process.env.DOCKER_HOST = dockerHost;
  return new Docker();
}

export const LABELS = {
  role: 'org.ernstfall.role',
  instance: 'org.ernstfall.instance',
  runId: 'org.ernstfall.run-id',
  planId: 'org.ernstfall.plan-id',
  tenantId: 'org.ernstfall.tenant-id',
  /** An application group's container (decisions/021): the service's name, or `probe`. */
  service: 'org.ernstfall.service',
} as const;

export type { Docker };
