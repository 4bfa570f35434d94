import { PassThrough, Writable } from 'node:stream';
import type Docker from 'dockerode';
import { LABELS } from './docker.js';
import { hardenedHostConfig, removeContainer } from './containers.js';
import type { RunLabels } from './network.js';

/**
 * One container of an application group (decisions/021), or ernstfall's
 * probe: on the run's internal network only, under the sandbox's hardening
 * (all capabilities dropped, no new privileges, read-only root file system
 * with tmpfs, memory without swap, CPU and pids limits, labels the reaper
 * knows) and never as root: the image's own user is not trusted to be
 * unprivileged, so the user is always set.
 */
export interface ServiceContainerSpec {
  run: RunLabels;
  /** The service's name: its host name on the network; `probe` for ernstfall's probe. */
  name: string;
  image: string;
  /** uid:gid, never 0. */
  user: string;
  /** NAME=value; may hold the run's database password (the container's env is the only place it goes). */
  env: string[];
  /** Replaces the image's command (argv). */
  command?: string[];
  /** A container whose mounts this one gets read-only at the same paths (a file restore's sandbox: the restored tree). */
  volumesFrom?: string;
  network: string;
  memoryBytes: number;
  cpus: number;
  pids: number;
}

const TMPFS = 'rw,nosuid,nodev,size=64m,mode=1777';
const MAX_EXEC_OUTPUT = 64 * 1024;

export class ServiceContainer {
  private removing?: Promise<void>;
  constructor(private readonly docker: Docker, readonly container: Docker.Container, readonly name: string, readonly user: string) {}

  get id(): string {
    return this.container.id;
  }

  async start(): Promise<void> {
    await this.container.start();
  }

  async state(): Promise<{ running: boolean; exitCode: number | null; oomKilled: boolean } | null> {
    try {
      const s = (await this.container.inspect()).State;
      return { running: s.Running === true, exitCode: s.Running ? null : s.ExitCode, oomKilled: s.OOMKilled === true };
    } catch {
      return null;
    }
  }

  /** Runs argv as the container's user; resolves with the exit code and the first 64 KiB of stdout, or rejects after `timeoutMs`. */
  async exec(cmd: string[], timeoutMs: number): Promise<{ exitCode: number | null; stdout: string }> {
    const exec = await this.container.exec({ Cmd: cmd, User: this.user, AttachStdout: true, AttachStderr: true, AttachStdin: false });
    const stream = await exec.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    let size = 0;
    const out = new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (size < MAX_EXEC_OUTPUT) chunks.push(chunk.subarray(0, MAX_EXEC_OUTPUT - size));
        size += chunk.length;
        cb();
      },
    });
    const stdout = new PassThrough();
    stdout.pipe(out);
    this.docker.modem.demuxStream(stream, stdout, new Writable({ write: (_c, _e, cb) => cb() }));
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve, reject) => {
          stream.on('end', resolve);
          stream.on('close', resolve);
          stream.on('error', reject);
        }),
        new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)}s`)), timeoutMs); }),
      ]);
    } finally {
      clearTimeout(timer);
      stream.destroy();
    }
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? null, stdout: Buffer.concat(chunks).toString('utf8') };
  }

  /** The last lines the container wrote (stdout and stderr), demultiplexed. Untrusted text: redact before keeping. */
  async logsTail(lines: number): Promise<string> {
    try {
      const buf = (await this.container.logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
      return demux(buf);
    } catch {
      return '';
    }
  }

  /** Idempotent: kills and removes the container with its anonymous volumes. */
  destroy(): Promise<void> {
    this.removing ??= removeContainer(this.container).catch((err: unknown) => {
      this.removing = undefined;
      throw err;
    });
    return this.removing;
  }
}

/** Docker's multiplexed log frames (8-byte header: stream, 0, 0, 0, big-endian size) to text. */
export function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && buf[i]! <= 2 && buf[i + 1] === 0 && buf[i + 2] === 0 && buf[i + 3] === 0) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  if (i < buf.length) parts.push(buf.subarray(i));
  return Buffer.concat(parts).toString('utf8');
}

export async function createServiceContainer(docker: Docker, spec: ServiceContainerSpec): Promise<ServiceContainer> {
  if (spec.user.split(':').some((x) => !/^\d+$/.test(x) || Number(x) === 0)) throw new Error(`service ${spec.name}: user ${spec.user} is not an unprivileged uid:gid`);
  const labels = {
    [LABELS.role]: 'sandbox',
    [LABELS.instance]: spec.run.instance,
    [LABELS.runId]: spec.run.runId,
    [LABELS.planId]: spec.run.planId,
    [LABELS.tenantId]: spec.run.tenantId,
    [LABELS.service]: spec.name,
  };
  const container = await docker.createContainer({
    Image: spec.image,
    name: `ernstfall-${spec.run.instance}-${spec.run.runId}-${spec.name}`,
    Hostname: spec.name,
    User: spec.user,
    ...(spec.command && { Cmd: spec.command }),
    Env: ['LANG=C.UTF-8', ...spec.env],
    WorkingDir: '/tmp',
    Labels: labels,
    ExposedPorts: {},
    NetworkingConfig: { EndpointsConfig: { [spec.network]: { Aliases: [spec.name] } } },
    HostConfig: {
      NetworkMode: spec.network,
      PublishAllPorts: false,
      PortBindings: {},
      ...hardenedHostConfig(spec),
      Tmpfs: { '/tmp': TMPFS, '/run': TMPFS },
      // read-only: a service reads the restored tree, it never changes it (nor the backup's copy beside it)
      ...(spec.volumesFrom && { VolumesFrom: [`${spec.volumesFrom}:ro`] }),
    },
  });
  return new ServiceContainer(docker, container, spec.name, spec.user);
}
