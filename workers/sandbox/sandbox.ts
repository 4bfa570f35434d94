import { spawn } from 'node:child_process';
import { basename, dirname, posix } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { LABELS } from './docker.js';

export interface SandboxSpec {
  image: string;
  runId: string;
  planId: string;
  tenantId: string;
  instance: string;
  memoryBytes: number;
  cpus: number;
  pids: number;
  /** Host path of the backup (file or folder). */
  backupPath: string;
  /** bind: read-only bind mount; copy: putArchive into the sandbox (remote engines). */
  transfer: 'bind' | 'copy';
}

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

export class SandboxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxError';
  }
}

export const DATA_DIR = '/var/lib/postgresql/ef-data';
export const SOCKET_DIR = '/tmp';
const COPY_DIR = '/tmp';

/**
 * The container starts as root with only DAC_READ_SEARCH (the restore tools,
 * run as root through exec, can read a backup whatever its owner and mode) and
 * SETUID/SETGID (to drop to `postgres`). The database server then runs as the
 * unprivileged `postgres` user with no capabilities at all. Docker gives exec
 * processes no capabilities when the container's user is not root, hence this
 * order. Durability is off because the sandbox is thrown away.
 * Works with the offline images and with official `postgres:N` images (their
 * entrypoint is bypassed, binaries are found on PATH or under /usr/lib/postgresql).
 */
const BOOT_SCRIPT = `set -e
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | head -n1)
[ -n "$BIN" ] && PATH="$BIN:$PATH"
AS_PG="setpriv --reuid=postgres --regid=postgres --clear-groups"
$AS_PG initdb --no-sync -D ${DATA_DIR} -U postgres --auth=trust -E UTF8 --locale=C >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log >&2; exit 1; }
exec $AS_PG postgres -D ${DATA_DIR} -k ${SOCKET_DIR} -c listen_addresses= -c fsync=off -c full_page_writes=off \\
  -c synchronous_commit=off -c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=8GB \\
  -c checkpoint_timeout=1h -c autovacuum=off -c maintenance_work_mem=256MB -c shared_buffers=128MB \\
  -c log_min_messages=warning -c jit=off`;

const MAX_OUTPUT = 256 * 1024;

function capped(limit: number): { sink: Writable; text: () => string; truncated: () => boolean } {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (size < limit) {
        const part = chunk.subarray(0, limit - size);
        chunks.push(part);
        size += part.length;
      }
      if (size >= limit && chunk.length > 0) truncated = truncated || size + chunk.length > limit;
      cb();
    },
  });
  return { sink, text: () => Buffer.concat(chunks).toString('utf8'), truncated: () => truncated };
}

export class Sandbox {
  private destroying?: Promise<void>;
  constructor(
    private readonly docker: Docker,
    readonly container: Docker.Container,
    readonly image: string,
    readonly imageId: string,
    /** Where the backup is visible inside the sandbox. */
    readonly backupPath: string,
    private readonly log: Logger,
  ) {}

  get id(): string {
    return this.container.id;
  }

  async exec(cmd: string[], opts: { user?: string; env?: string[]; maxOutput?: number } = {}): Promise<ExecResult> {
    const exec = await this.container.exec({
      Cmd: cmd,
      User: opts.user ?? 'root',
      Env: ['LC_MESSAGES=C', 'LC_ALL=C.UTF-8', 'PGHOST=' + SOCKET_DIR, 'PGUSER=postgres', ...(opts.env ?? [])],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const out = capped(opts.maxOutput ?? MAX_OUTPUT);
    const err = capped(opts.maxOutput ?? MAX_OUTPUT);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.pipe(out.sink);
    stderr.pipe(err.sink);
    this.docker.modem.demuxStream(stream, stdout, stderr);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    stdout.end();
    stderr.end();
    const info = await exec.inspect();
    return {
      exitCode: info.ExitCode ?? null,
      stdout: out.text(),
      stderr: err.text(),
      stdoutTruncated: out.truncated(),
      stderrTruncated: err.truncated(),
    };
  }

  /**
   * Writes `content` to the absolute `path` inside the sandbox through the engine's archive API:
   * no shell and no command line ever sees the bytes, so text taken from a backup or from tool
   * output stays data. Meant for small files (lists, SQL the driver generated); the tar is built
   * in memory. An existing file is replaced; the folder must exist.
   */
  async putFile(path: string, content: Buffer, opts: { mode?: number; uid?: number; gid?: number } = {}): Promise<void> {
    const dir = posix.dirname(path);
    const name = posix.basename(path);
    const nameBytes = Buffer.byteLength(name, 'utf8');
    if (!posix.isAbsolute(path) || !name || name === '.' || name === '..' || nameBytes > 100 || name.includes('\0')) {
      throw new SandboxError(`putFile: "${path}" is not an absolute path with a file name of at most 100 bytes`);
    }
    if (content.length > 0o77777777777) throw new SandboxError('putFile: content too large for a ustar entry');
    const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;
    const header = Buffer.alloc(512);
    header.write(name, 0, 100, 'utf8');
    header.write(octal(opts.mode ?? 0o644, 8), 100, 8, 'latin1');
    header.write(octal(opts.uid ?? 0, 8), 108, 8, 'latin1');
    header.write(octal(opts.gid ?? 0, 8), 116, 8, 'latin1');
    header.write(octal(content.length, 12), 124, 12, 'latin1');
    header.write(octal(Math.floor(Date.now() / 1000), 12), 136, 12, 'latin1');
    header.write(' '.repeat(8), 148, 8, 'latin1'); // checksum field counts as spaces while summing
    header.write('0', 156, 1, 'latin1'); // regular file
    header.write('ustar\0', 257, 6, 'latin1');
    header.write('00', 263, 2, 'latin1');
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
    const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
    const tar = Buffer.concat([header, content, padding, Buffer.alloc(1024)]); // two zero blocks end the archive
    await this.container.putArchive(Readable.from([tar]), { path: dir });
  }

  /** The last lines the server printed, for a failed start. Never contains backup data. */
  async logsTail(lines = 20): Promise<string> {
    try {
      const buf = (await this.container.logs({ stdout: true, stderr: true, tail: lines })) as unknown as Buffer;
      // strip the 8-byte multiplex headers
      // eslint-disable-next-line no-control-regex
      return buf.toString('utf8').replace(/[\x00-\x08]/g, '').trim();
    } catch {
      return '';
    }
  }

  async isRunning(): Promise<boolean> {
    const info = await this.container.inspect();
    return info.State.Running === true;
  }

  /**
   * Idempotent and safe to call concurrently (cancel and teardown both do):
   * every caller waits for the same removal. Kills whatever runs inside and
   * removes the container with its anonymous volumes.
   */
  destroy(): Promise<void> {
    this.destroying ??= this.remove().catch((err: unknown) => {
      this.destroying = undefined;
      throw err;
    });
    return this.destroying;
  }

  private async remove(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.container.remove({ force: true, v: true });
        this.log.debug({ containerId: this.container.id }, 'sandbox removed');
        return;
      } catch (err) {
        const code = (err as { statusCode?: number }).statusCode;
        if (code === 404) return;
        // 409: a removal is already in progress (e.g. the engine still tears down an exec)
        if (code !== 409 || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }
}

export async function provisionSandbox(docker: Docker, spec: SandboxSpec, imageId: string, log: Logger): Promise<Sandbox> {
  const name = basename(spec.backupPath);
  const mountPoint = `/backup/${name}`;
  const container = await docker.createContainer({
    Image: spec.image,
    name: `ernstfall-${spec.instance}-${spec.runId}`,
    User: 'root',
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: [BOOT_SCRIPT],
    Env: ['LC_MESSAGES=C', 'LANG=C.UTF-8'],
    WorkingDir: '/tmp',
    NetworkDisabled: true,
    Labels: {
      [LABELS.role]: 'sandbox',
      [LABELS.instance]: spec.instance,
      [LABELS.runId]: spec.runId,
      [LABELS.planId]: spec.planId,
      [LABELS.tenantId]: spec.tenantId,
    },
    HostConfig: {
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      // see BOOT_SCRIPT: read the backup, drop to postgres; the server itself keeps none
      CapAdd: ['DAC_READ_SEARCH', 'SETUID', 'SETGID'],
      SecurityOpt: ['no-new-privileges'],
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes,
      NanoCpus: Math.round(spec.cpus * 1e9),
      PidsLimit: spec.pids,
      ShmSize: 256 * 1024 * 1024,
      // Mounts, not Binds: a path with ':' (e.g. a timestamp in the file name) would break the Binds syntax
      Mounts: spec.transfer === 'bind' ? [{ Type: 'bind', Source: spec.backupPath, Target: mountPoint, ReadOnly: true }] : [],
      RestartPolicy: { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } },
    },
  });
  const sandbox = new Sandbox(docker, container, spec.image, imageId, spec.transfer === 'bind' ? mountPoint : `${COPY_DIR}/${name}`, log.child({ containerId: container.id }));
  try {
    if (spec.transfer === 'copy') {
      // tar streams the backup from disk; it is never held in memory
      const tar = spawn('tar', ['-C', dirname(spec.backupPath), '-cf', '-', '--', name], { stdio: ['ignore', 'pipe', 'pipe'] });
      let tarErr = '';
      tar.stderr.on('data', (d: Buffer) => { tarErr += d.toString().slice(0, 500); });
      const tarDone = new Promise<number | null>((resolve) => tar.on('close', resolve));
      await container.putArchive(tar.stdout, { path: COPY_DIR });
      const code = await tarDone;
      if (code !== 0) throw new SandboxError(`copying the backup into the sandbox failed (tar exit ${code}): ${tarErr.trim()}`);
      await container.start();
    } else {
      await container.start();
    }
  } catch (err) {
    await sandbox.destroy().catch(() => undefined);
    throw err;
  }
  return sandbox;
}

/** Waits until the server accepts connections, or fails with the server's own last words. */
export async function waitForPostgres(sandbox: Sandbox, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (!(await sandbox.isRunning())) {
      throw new SandboxError(`sandbox database server exited during start: ${(await sandbox.logsTail()).slice(0, 500)}`);
    }
    const r = await sandbox.exec(['pg_isready', '-q', '-h', SOCKET_DIR, '-U', 'postgres'], { user: 'postgres' })
      .catch(() => ({ exitCode: 1 }));
    if (r.exitCode === 0) return;
    await new Promise((res) => setTimeout(res, delay));
    // a server is usually up within 1–3 s; polling often notices it without idling (measured in docs/BENCHMARKS.md)
    delay = Math.min(delay * 1.5, 200);
  }
  throw new SandboxError(`sandbox database server did not become ready within ${Math.round(timeoutMs / 1000)}s`);
}
