import pg from 'pg';
import type { Duplex } from 'node:stream';
import type { Sandbox } from '../../sandbox/sandbox.js';

/**
 * Database sessions into a sandbox without a network.
 *
 * Each session is one `docker exec` of a constant relay (perl, which every
 * PostgreSQL image carries) between its stdin/stdout and the server's unix
 * socket; the worker's `pg` client speaks the wire protocol over it. A query
 * then costs a round trip instead of an exec, a psql start and a new backend
 * (measured here: about 1 ms against 100–200 ms), and results arrive as typed
 * protocol messages rather than text to be split. Nothing from a backup or a
 * plan ever reaches the relay's command line: the socket path is a constant.
 *
 * Every query starts from the same state: after each one the session is
 * rolled back if the query left a transaction open and reset with
 * `DISCARD ALL`, so a `SET` in one check (say, turning read-only off) never
 * carries into the next. A session that cannot be reset is closed.
 */

const RELAY = String.raw`use strict; use IO::Socket::UNIX; use IO::Select;
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]) or die "connect: $!\n";
binmode STDIN; binmode STDOUT;
my $sel = IO::Select->new(\*STDIN, $s);
while (1) { for my $h ($sel->can_read) { my $n = sysread($h, my $buf, 65536); exit 0 unless $n;
  my $out = $h == $s ? \*STDOUT : $s; my $off = 0;
  while ($off < $n) { my $w = syswrite($out, $buf, $n - $off, $off); die "write: $!\n" unless defined $w; $off += $w } } }`;

/**
 * The most a query's rows may weigh on the worker (the database profile is the biggest honest
 * answer). The pg client holds a result whole, so a check that selects a whole table, or a
 * restored value of a gigabyte, would otherwise land in the worker's memory: the session is cut
 * instead and the query fails saying why.
 */
export const MAX_RESULT_BYTES = 64 * 1024 * 1024;

/**
 * Follows the server's messages in the byte stream (a type byte and a length each) and calls
 * `onMessage` with every message's type and length: enough to weigh the rows of a result
 * without parsing them.
 */
export function messageMeter(onMessage: (type: number, length: number) => void): (chunk: Buffer) => void {
  let header = Buffer.alloc(0);
  let skip = 0;
  return (chunk) => {
    let i = 0;
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i);
        skip -= n;
        i += n;
        continue;
      }
      const take = Math.min(5 - header.length, chunk.length - i);
      header = Buffer.concat([header, chunk.subarray(i, i + take)]);
      i += take;
      if (header.length === 5) {
        const length = header.readUInt32BE(1);
        onMessage(header[0]!, length);
        skip = Math.max(0, length - 4);
        header = Buffer.alloc(0);
      }
    }
  };
}

/** Concurrent sessions per sandbox and database: the plan's checks and the built-in checks run side by side. */
const MAX_SESSIONS = 3;
/** Values arrive as the server's text, as psql printed them: no conversion to JS types. */
const TEXT = { getTypeParser: () => (v: string) => v };

export type SessionResult<T> = { ok: true; value: T } | { ok: false; error: string; lost?: boolean };

export class SessionUnavailable extends Error {}

export interface SessionOptions {
  /** Default `true`: every transaction is read-only unless the caller says otherwise. */
  readOnly?: boolean;
  statementTimeoutMs: number;
}

class Pool {
  private readonly idle: pg.Client[] = [];
  private readonly waiting: Array<(c: pg.Client | Error) => void> = [];
  private open = 0;
  private closed = false;
  /** Set when the relay could not be started: callers fall back to one exec per query. */
  unavailable?: string;

  constructor(private readonly sandbox: Sandbox, private readonly database: string, private readonly socketDir: string, private readonly opts: SessionOptions) {}

  get statementTimeoutMs(): number {
    return this.opts.statementTimeoutMs;
  }

  private async connect(): Promise<pg.Client> {
    const { stream, stderr, exited } = await this.sandbox.openStream(['perl', '-e', RELAY, '--', `${this.socketDir}/.s.PGSQL.5432`]);
    // rows since the last ReadyForQuery ('Z'): DataRow ('D') messages beyond the limit cut the session
    let rowBytes = 0;
    stream.on('data', messageMeter((type, length) => {
      if (type === 0x5a) rowBytes = 0;
      else if (type === 0x44 && (rowBytes += length) > MAX_RESULT_BYTES) {
        tooLarge.add(client);
        stream.destroy(new Error('result too large'));
      }
    }));
    const sock = Object.assign(stream, {
      connect() {
        queueMicrotask(() => stream.emit('connect'));
        return stream;
      },
      setNoDelay: () => stream,
      setKeepAlive: () => stream,
    });
    const client = new pg.Client({
      user: 'postgres',
      database: this.database,
      application_name: 'ernstfall',
      options: `-c default_transaction_read_only=${this.opts.readOnly === false ? 'off' : 'on'} -c statement_timeout=${Math.round(this.opts.statementTimeoutMs)}`,
      stream: () => sock as unknown as Duplex & { connect(): void },
    } as pg.ClientConfig);
    // an idle session whose container went away must not take the worker with it
    client.on('error', () => this.drop(client));
    try {
      await client.connect();
    } catch (err) {
      stream.destroy();
      const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
      throw new SessionUnavailable(`${(err as Error).message}${stderr() ? `: ${stderr().split('\n')[0]}` : ''}${code !== null ? ` (relay exit ${code})` : ''}`);
    }
    return client;
  }

  private drop(client: pg.Client): void {
    const i = this.idle.indexOf(client);
    if (i >= 0) this.idle.splice(i, 1);
    if ((client as unknown as { __dropped?: boolean }).__dropped) return;
    (client as unknown as { __dropped?: boolean }).__dropped = true;
    this.open--;
    client.end().catch(() => undefined);
  }

  async acquire(): Promise<pg.Client> {
    if (this.closed) throw new SessionUnavailable('the sandbox is being removed');
    if (this.unavailable) throw new SessionUnavailable(this.unavailable);
    const ready = this.idle.pop();
    if (ready) return ready;
    if (this.open < MAX_SESSIONS) {
      this.open++;
      try {
        return await this.connect();
      } catch (err) {
        this.open--;
        if (err instanceof SessionUnavailable) this.unavailable = err.message;
        throw err;
      }
    }
    const got = await new Promise<pg.Client | Error>((resolve) => this.waiting.push(resolve));
    if (got instanceof Error) throw got;
    return got;
  }

  /** Opens sessions until `n` exist (at most MAX_SESSIONS), side by side, so the first queries that run together do not each pay for one. */
  async warm(n: number): Promise<void> {
    const more = Math.max(0, Math.min(n, MAX_SESSIONS) - this.open);
    await Promise.all(Array.from({ length: more }, async () => {
      if (this.closed || this.unavailable) return;
      this.open++;
      try {
        const c = await this.connect();
        await this.release(c, true);
      } catch (err) {
        this.open--;
        if (err instanceof SessionUnavailable) this.unavailable = err.message;
      }
    }));
  }

  async release(client: pg.Client, usable: boolean): Promise<void> {
    if (usable && !this.closed) {
      try {
        const status = (client as unknown as { getTransactionStatus(): string | null }).getTransactionStatus();
        if (status !== 'I') await client.query('rollback');
        await client.query('discard all');
      } catch {
        usable = false;
      }
    }
    if (!usable || this.closed) {
      this.drop(client);
      // a waiter gets a fresh session in place of the dropped one
      const next = this.waiting.shift();
      if (next) {
        this.open++;
        this.connect().then(next, (err: Error) => {
          this.open--;
          next(err);
        });
      }
      return;
    }
    const next = this.waiting.shift();
    if (next) next(client);
    else this.idle.push(client);
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) this.drop(c);
    for (const w of this.waiting.splice(0)) w(new SessionUnavailable('the sandbox is being removed'));
  }
}

const pools = new WeakMap<Sandbox, Map<string, Pool>>();
/** Sessions cut because a result outgrew MAX_RESULT_BYTES. */
const tooLarge = new WeakSet<pg.Client>();

function poolFor(sandbox: Sandbox, database: string, socketDir: string, opts: SessionOptions): Pool {
  let byKey = pools.get(sandbox);
  if (!byKey) {
    byKey = new Map();
    pools.set(sandbox, byKey);
    const mine = byKey;
    sandbox.onDestroy(() => {
      for (const p of mine.values()) p.close();
      mine.clear();
    });
  }
  const key = `${opts.readOnly === false ? 'rw' : 'ro'}:${socketDir}:${database}`;
  let pool = byKey.get(key);
  if (!pool) {
    pool = new Pool(sandbox, database, socketDir, opts);
    byKey.set(key, pool);
  }
  return pool;
}

const serverError = (err: unknown) => typeof (err as { code?: unknown }).code === 'string' && typeof (err as { severity?: unknown }).severity === 'string';

/**
 * Runs `sql` (one or more statements, as psql -c would) on a session of the
 * sandbox's database and returns every row of the first result that has rows,
 * values as the server's text. Throws SessionUnavailable when no session can
 * be opened (an image without perl, say), so the caller can fall back.
 */
export async function sessionRows(sandbox: Sandbox, database: string, socketDir: string, sql: string, opts: SessionOptions): Promise<SessionResult<(string | null)[][]>> {
  const pool = poolFor(sandbox, database, socketDir, opts);
  const client = await pool.acquire();
  let usable = true;
  try {
    // a session opened for another limit gets this query's own (DISCARD ALL puts the session's back)
    if (pool.statementTimeoutMs !== opts.statementTimeoutMs) await client.query(`set statement_timeout = ${Math.round(opts.statementTimeoutMs)}`);
    const res = (await client.query({ text: sql, rowMode: 'array', types: TEXT })) as unknown as pg.QueryArrayResult | pg.QueryArrayResult[];
    const results = Array.isArray(res) ? res : [res];
    const first = results.find((r) => Array.isArray(r.rows) && r.rows.length > 0);
    return { ok: true, value: (first?.rows ?? []) as (string | null)[][] };
  } catch (err) {
    if (serverError(err)) return { ok: false, error: (err as Error).message };
    usable = false;
    if (tooLarge.has(client)) {
      return { ok: false, error: `the result is larger than ${MAX_RESULT_BYTES / 2 ** 20} MiB; a check reads one value: aggregate, or add a LIMIT` };
    }
    return { ok: false, error: `the session to the sandbox database was lost: ${(err as Error).message}`, lost: true };
  } finally {
    await pool.release(client, usable);
  }
}

/** Opens `n` sessions of the sandbox's database ahead of the queries that will use them (never fails: a query opens its own). */
export async function warmSessions(sandbox: Sandbox, database: string, socketDir: string, n: number, opts: SessionOptions): Promise<void> {
  await poolFor(sandbox, database, socketDir, opts).warm(n);
}
