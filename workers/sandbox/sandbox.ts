import { posix } from 'node:path';
import { Duplex, PassThrough, Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { LABELS } from './docker.js';
import { hardenedHostConfig, removeContainer } from './containers.js';
import type { BackupDigest, FileIdentity, ResolvedBackup } from '../sources/file.source.js';
import { BACKUP_NAME, copyIntoSandbox } from './transfer.js';

/** How the driver's sandbox starts: everything it runs is started as `user`, never root. */
export interface SandboxRecipe {
  user: string;
  /** The writable data area (a volume of its own, bounded); everything else is read-only or tmpfs. */
  dataDir: string;
  /** The container's command: argv, no shell text built from the backup. */
  command: string[];
  env?: string[];
  /**
   * The backup's copy belongs to this user and is writable for it (a borg
   * repository, whose check writes to it). Without it the copy is root's and
   * read-only, so nothing in the sandbox can change it.
   */
  backupOwner?: { uid: number; gid: number };
}

export interface SandboxSpec {
  image: string;
  runId: string;
  planId: string;
  tenantId: string;
  instance: string;
  memoryBytes: number;
  cpus: number;
  pids: number;
  /** How the driver's service starts, as whom, and where its writable data area is. */
  recipe: SandboxRecipe;
  /** copy: the backup is streamed into the data area (hashed on the way); bind: a read-only bind mount of the host path. */
  transfer: 'bind' | 'copy';
  /** Host path of the backup (file or folder); only bind mounts use it. */
  backupPath: string;
  backupIsDirectory: boolean;
  /** An application group's run: the sandbox joins the run's internal network under this alias (decisions/021); else no network. */
  network?: { name: string; alias: string };
  /** Further read-only inputs beside the backup (a WAL archive), by name; bind mounts use their host path. */
  inputs?: SandboxInput[];
}

/** A read-only folder the sandbox gets beside the backup (e.g. a WAL archive), never writable for it. */
export interface SandboxInput {
  /** A fixed name (letters): where it appears inside the sandbox. */
  name: string;
  backup: ResolvedBackup;
  /** Only these files of the folder (copy: the others are not copied). */
  files?: string[];
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

/** Small scratch space for sockets and lists; data goes to the data area. */
const TMPFS = 'rw,nosuid,nodev,size=256m,mode=1777';
/** The folder in the data area that holds the copied backup (root-owned, read-only for the sandbox user). */
export const BACKUP_DIR = 'ef-backup';

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
  private readonly closers: Array<() => void> = [];
  constructor(
    private readonly docker: Docker,
    readonly container: Docker.Container,
    readonly image: string,
    readonly imageId: string,
    readonly recipe: SandboxRecipe,
    /** Where the backup is visible inside the sandbox. */
    readonly backupPath: string,
    private readonly log: Logger,
    private readonly transfer: 'bind' | 'copy' = 'copy',
  ) {}

  /** Where an input (SandboxSpec.inputs) is visible inside the sandbox. */
  inputPath(name: string): string {
    return this.transfer === 'bind' ? `/backup/${name}` : posix.join(this.recipe.dataDir, `${BACKUP_DIR}-${name}`, BACKUP_NAME);
  }

  /** Streams an input into the data area, read-only for the sandbox (root's, 0444), hashing it on the way. */
  copyInput(input: SandboxInput, signal: AbortSignal): Promise<BackupDigest> {
    return copyIntoSandbox(this.container, input.backup, this.recipe.dataDir, `${BACKUP_DIR}-${input.name}`, signal, undefined, input.files);
  }

  get dataDir(): string {
    return this.recipe.dataDir;
  }

  /** Streams the backup into the data area, hashing it on the way (before the sandbox starts). */
  copyBackup(backup: ResolvedBackup, signal: AbortSignal): Promise<BackupDigest & { identity?: FileIdentity }> {
    return copyIntoSandbox(this.container, backup, this.recipe.dataDir, BACKUP_DIR, signal, this.recipe.backupOwner);
  }

  async start(): Promise<void> {
    await this.container.start();
  }

  /**
   * The kernel's OOM kills in this sandbox so far (cgroup v1 memory.oom_control
   * or v2 memory.events), or null when the sandbox cannot tell.
   */
  async oomKills(): Promise<number | null> {
    const r = await this.exec(['cat', '/sys/fs/cgroup/memory.events', '/sys/fs/cgroup/memory/memory.oom_control']).catch(() => undefined);
    const m = r ? /^oom_kill (\d+)$/m.exec(r.stdout) : null;
    return m ? Number(m[1]) : null;
  }

  /** Bytes used in the data area (du, one file system). */
  async dataUsage(): Promise<number | null> {
    const r = await this.exec(['du', '-skx', '--', this.recipe.dataDir]).catch(() => undefined);
    const kib = r && r.exitCode === 0 ? Number(r.stdout.trim().split(/\s+/)[0]) : NaN;
    return Number.isFinite(kib) ? kib * 1024 : null;
  }

  /** What Docker knows about how the sandbox ended (or is). */
  async state(): Promise<{ running: boolean; oomKilled: boolean; exitCode: number | null } | null> {
    try {
      const s = (await this.container.inspect()).State;
      return { running: s.Running === true, oomKilled: s.OOMKilled === true, exitCode: s.Running ? null : s.ExitCode };
    } catch {
      return null;
    }
  }

  get id(): string {
    return this.container.id;
  }

  /** Runs argv as the recipe's (unprivileged) user; there is no way to run a step as root. */
  async exec(cmd: string[], opts: { env?: string[]; maxOutput?: number; workdir?: string } = {}): Promise<ExecResult> {
    const out = capped(opts.maxOutput ?? MAX_OUTPUT);
    const r = await this.run(cmd, opts, out.sink);
    return { ...r, stdout: out.text(), stdoutTruncated: out.truncated() };
  }

  /**
   * Like exec, but stdout is handed to `onLine` one line at a time and never
   * held whole (an inventory of a million files). A line longer than
   * `maxLine` bytes is cut and reported as such.
   */
  async execLines(cmd: string[], onLine: (line: string, cut: boolean) => void, opts: { env?: string[]; maxLine?: number } = {}): Promise<Omit<ExecResult, 'stdout' | 'stdoutTruncated'>> {
    const max = opts.maxLine ?? 1024 * 1024;
    let parts: Buffer[] = [];
    let size = 0;
    let cut = false;
    const flush = () => {
      onLine(Buffer.concat(parts).toString('utf8'), cut);
      parts = [];
      size = 0;
      cut = false;
    };
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        try {
          let from = 0;
          for (let nl = chunk.indexOf(10, from); nl !== -1; nl = chunk.indexOf(10, from)) {
            const piece = chunk.subarray(from, nl);
            if (size + piece.length <= max) parts.push(piece);
            else cut = true;
            size += piece.length;
            flush();
            from = nl + 1;
          }
          const rest = chunk.subarray(from);
          if (rest.length > 0) {
            if (size + rest.length <= max) parts.push(Buffer.from(rest));
            else cut = true;
            size += rest.length;
          }
          cb();
        } catch (err) {
          cb(err as Error);
        }
      },
      final(cb) {
        if (size > 0) flush();
        cb();
      },
    });
    return this.run(cmd, opts, sink);
  }

  /**
   * Starts argv with its stdin attached and hands back both directions as one
   * duplex byte stream (stdout only; stderr is collected, capped). For a
   * long-lived helper such as the constant socket relay that lets the worker
   * speak a server's own protocol to it without one exec per request. The
   * stream ends when the program exits; closing it ends the program's stdin.
   */
  async openStream(cmd: string[], opts: { env?: string[] } = {}): Promise<{ stream: Duplex; stderr: () => string; exited: Promise<number | null> }> {
    const exec = await this.createExec(cmd, { ...opts, stdin: true });
    const raw = (await exec.start({ hijack: true, stdin: true })) as Duplex;
    const out = new PassThrough();
    const err = capped(16 * 1024);
    const errPipe = new PassThrough();
    errPipe.pipe(err.sink);
    this.docker.modem.demuxStream(raw, out, errPipe);
    const stream = new Duplex({
      // the program's end ends both directions, so a client on the stream sees it close
      allowHalfOpen: false,
      read() {
        out.resume();
      },
      write(chunk: Buffer, _enc, cb) {
        raw.write(chunk, cb);
      },
      final(cb) {
        // half-close: the program sees the end of its stdin, its output still arrives
        (raw as Duplex & { end(): void }).end();
        cb();
      },
      destroy(e, cb) {
        raw.destroy();
        cb(e);
      },
    });
    out.on('data', (chunk: Buffer) => {
      if (!stream.push(chunk)) out.pause();
    });
    const ended = new Promise<void>((resolve) => {
      let done = false;
      const end = () => {
        if (done) return;
        done = true;
        out.end();
        errPipe.end();
        stream.push(null);
        resolve();
      };
      raw.on('end', end);
      raw.on('close', end);
      raw.on('error', (e) => {
        stream.destroy(e);
        end();
      });
    });
    const exited = ended.then(async () => (await exec.inspect().catch(() => undefined))?.ExitCode ?? null);
    return { stream, stderr: () => err.text(), exited };
  }

  /** An exec as the recipe's user, with the sandbox's locale and environment; never as root. */
  private createExec(cmd: string[], opts: { env?: string[]; workdir?: string; stdin?: boolean }): Promise<Docker.Exec> {
    return this.container.exec({
      Cmd: cmd,
      User: this.recipe.user,
      Env: ['LC_MESSAGES=C', 'LC_ALL=C.UTF-8', ...(this.recipe.env ?? []), ...(opts.env ?? [])],
      AttachStdin: opts.stdin === true,
      AttachStdout: true,
      AttachStderr: true,
      ...(opts.workdir && { WorkingDir: opts.workdir }),
    });
  }

  private async run(cmd: string[], opts: { env?: string[]; maxOutput?: number; workdir?: string }, stdoutSink: Writable): Promise<Omit<ExecResult, 'stdout' | 'stdoutTruncated'>> {
    const exec = await this.createExec(cmd, opts);
    const stream = await exec.start({ hijack: true, stdin: false });
    const err = capped(opts.maxOutput ?? MAX_OUTPUT);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const sinkDone = new Promise<void>((resolve, reject) => {
      stdoutSink.on('finish', resolve);
      stdoutSink.on('error', reject);
    });
    stdout.pipe(stdoutSink);
    stderr.pipe(err.sink);
    this.docker.modem.demuxStream(stream, stdout, stderr);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    stdout.end();
    stderr.end();
    await sinkDone;
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? null, stderr: err.text(), stderrTruncated: err.truncated() };
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
    // eslint-disable-next-line no-restricted-syntax -- a file time inside the sandbox (the host's wall clock), not business time
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

  /** Something that lives as long as the sandbox (a database session): closed first when the sandbox is destroyed. */
  onDestroy(close: () => void): void {
    this.closers.push(close);
  }

  /**
   * Idempotent and safe to call concurrently (cancel and teardown both do):
   * every caller waits for the same removal. Kills whatever runs inside and
   * removes the container with its anonymous volumes.
   */
  destroy(): Promise<void> {
    for (const close of this.closers.splice(0)) {
      try {
        close();
      } catch {
        // a helper that cannot close dies with the container
      }
    }
    this.destroying ??= this.remove().catch((err: unknown) => {
      this.destroying = undefined;
      throw err;
    });
    return this.destroying;
  }

  private async remove(): Promise<void> {
    await removeContainer(this.container);
    this.log.debug({ containerId: this.container.id }, 'sandbox removed');
  }
}

/**
 * Creates the sandbox (not started): no network, no capabilities, no new
 * privileges, a read-only root file system, tmpfs for /tmp and /run, and one
 * writable data area of its own (an anonymous volume removed with it). Every
 * process in it runs as the recipe's unprivileged user.
 */
export async function createSandbox(docker: Docker, spec: SandboxSpec, imageId: string, log: Logger): Promise<Sandbox> {
  const { recipe } = spec;
  const backupInside = spec.transfer === 'bind' ? `/backup/${BACKUP_NAME}` : posix.join(recipe.dataDir, BACKUP_DIR, BACKUP_NAME);
  const labels = {
    [LABELS.role]: 'sandbox',
    [LABELS.instance]: spec.instance,
    [LABELS.runId]: spec.runId,
    [LABELS.planId]: spec.planId,
    [LABELS.tenantId]: spec.tenantId,
  };
  const container = await docker.createContainer({
    Image: spec.image,
    name: `ernstfall-${spec.instance}-${spec.runId}`,
    User: recipe.user,
    Entrypoint: recipe.command.slice(0, 1),
    Cmd: recipe.command.slice(1),
    Env: ['LC_MESSAGES=C', 'LANG=C.UTF-8', ...(recipe.env ?? [])],
    WorkingDir: '/tmp',
    NetworkDisabled: !spec.network,
    Labels: labels,
    ...(spec.network && { NetworkingConfig: { EndpointsConfig: { [spec.network.name]: { Aliases: [spec.network.alias] } } } }),
    HostConfig: {
      NetworkMode: spec.network?.name ?? 'none',
      ...hardenedHostConfig(spec),
      Tmpfs: { '/tmp': TMPFS, '/run': TMPFS },
      ShmSize: 256 * 1024 * 1024,
      Mounts: [
        // the data area: Docker copies the image's content of dataDir into it (a cluster initialised at image build)
        { Type: 'volume', Source: '', Target: recipe.dataDir, VolumeOptions: { NoCopy: false, Labels: labels, DriverConfig: { Name: 'local', Options: {} } } },
        // Mounts, not Binds: a path with ':' (e.g. a timestamp in the file name) would break the Binds syntax
        ...(spec.transfer === 'bind' ? [{ Type: 'bind' as const, Source: spec.backupPath, Target: backupInside, ReadOnly: true }] : []),
        ...(spec.transfer === 'bind' ? (spec.inputs ?? []).map((i) => ({ Type: 'bind' as const, Source: i.backup.realPath, Target: `/backup/${i.name}`, ReadOnly: true })) : []),
      ],
    },
  });
  return new Sandbox(docker, container, spec.image, imageId, recipe, backupInside, log.child({ containerId: container.id }), spec.transfer);
}
