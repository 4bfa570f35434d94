/**
 * Streaming scan of a plain (psql) dump, fed the raw file bytes while the caller hashes
 * the same bytes: is the dump complete (psql exits 0 on a cut-off script), which roles
 * and extensions must exist before it can be restored. Memory stays bounded: only the
 * current partial line is kept, and COPY row data is skipped without being decoded,
 * so personal data is never parsed as SQL.
 */
import { spawn } from 'node:child_process';
import { finished } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

export interface PlainScan {
  complete: boolean; roles: string[]; extensions: string[]; decompressError?: string; bytesUncompressed: number;
  /** `pg_dump --create`: the database the dump creates and connects to itself. */
  createsDatabase?: string;
  /** pg_dumpall output (several databases, roles): not a single-database dump. */
  cluster: boolean;
}

export interface PlainScanner { write(chunk: Buffer): Promise<void>; end(): Promise<PlainScan> }

const MAX_LINE = 64 * 1024; // statements we care about are short; longer lines are only looked at up to here
const MAX_LINES_AFTER_COMPLETE = 6; // 15.14+/17.6+ end with "--", "\unrestrict <key>"
const COMPLETE_RE = /^-- PostgreSQL database (cluster )?dump complete$/;
const NOT_A_ROLE = new Set(['public', 'current_user', 'session_user', 'current_role']);

export function createPlainScanner(format: 'plain' | 'plain-gzip' | 'plain-zstd'): PlainScanner {
  const lines = new LineScanner();
  if (format === 'plain') {
    return {
      write: async (chunk) => lines.feed(chunk),
      end: async () => lines.result(),
    };
  }
  return decompressingScanner(format, lines);
}

/** What a streaming scan of dump lines needs: bytes in, a result out (with the decompressor's error, if any). */
export interface LineConsumer<T> { feed(chunk: Buffer): void; result(error?: string): T }

/** Feeds the decompressed bytes of a gzip or zstd stream to `lines`, with the stream's own backpressure. */
export function decompressingScanner<T>(format: 'plain-gzip' | 'plain-zstd', lines: LineConsumer<T>): { write(chunk: Buffer): Promise<void>; end(): Promise<T> } {
  return format === 'plain-gzip' ? gzipScanner(lines) : zstdScanner(lines);
}

function gzipScanner<T>(lines: LineConsumer<T>): { write(chunk: Buffer): Promise<void>; end(): Promise<T> } {
  const gz = createGunzip();
  let error: string | undefined;
  gz.on('data', (b: Buffer) => lines.feed(b));
  const done = finished(gz).catch((e: Error) => { error = `gzip: ${e.message}`; });
  return {
    write: (chunk) => {
      if (error || gz.destroyed) return Promise.resolve();
      // resolves once zlib consumed the chunk, or when the stream failed (callbacks may then never come)
      return Promise.race([new Promise<void>((res) => gz.write(chunk, () => res())), done]);
    },
    end: async () => {
      if (!gz.destroyed) gz.end();
      await done;
      return lines.result(error);
    },
  };
}

function zstdScanner<T>(lines: LineConsumer<T>): { write(chunk: Buffer): Promise<void>; end(): Promise<T> } {
  const child = spawn('zstd', ['-dc', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let spawnError: string | undefined;
  child.stdout.on('data', (b: Buffer) => lines.feed(b));
  child.stderr.on('data', (b: Buffer) => { if (stderr.length < 2048) stderr += b.toString('utf8'); });
  child.stdin.on('error', () => undefined); // EPIPE when zstd gave up on corrupt input; reported via its exit code
  const closed = new Promise<number | null>((res) => {
    child.on('error', (e) => { spawnError = `zstd could not be started: ${e.message}`; res(null); });
    child.on('close', (code) => res(code));
  });
  let exited = false;
  void closed.then(() => { exited = true; });
  return {
    write: (chunk) => {
      if (exited || child.stdin.destroyed) return Promise.resolve();
      // the callback fires when the pipe took the bytes: zstd's reading speed is the backpressure
      return Promise.race([new Promise<void>((res) => child.stdin.write(chunk, () => res())), closed.then(() => undefined)]);
    },
    end: async () => {
      if (!child.stdin.destroyed) child.stdin.end();
      const code = await closed;
      const error = spawnError ?? (code === 0 ? undefined : `zstd: ${stderr.trim().replace(/\s+/g, ' ') || `exit code ${code}`}`);
      return lines.result(error);
    },
  };
}

class LineScanner {
  private carry: Buffer[] = [];
  private carryLen = 0;
  private inCopy = false;
  private sawComplete = false;
  private linesAfterComplete = 0;
  private bytes = 0;
  private roles = new Set<string>();
  private extensions = new Set<string>();
  private createsDatabase?: string;
  private cluster = false;

  feed(chunk: Buffer): void {
    this.bytes += chunk.length;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      if (this.carryLen > 0) {
        this.keep(chunk.subarray(start, nl));
        this.line(Buffer.concat(this.carry));
        this.carry = [];
        this.carryLen = 0;
      } else this.line(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length) this.keep(chunk.subarray(start), true);
  }

  private keep(part: Buffer, copy = false): void {
    if (this.carryLen >= MAX_LINE) { this.carryLen += part.length; return; } // keep counting, stop storing
    this.carry.push(copy ? Buffer.from(part) : part); // copy: the caller may reuse its buffer
    this.carryLen += part.length;
  }

  private line(raw: Buffer): void {
    let len = raw.length;
    if (len > 0 && raw[len - 1] === 13) len--; // CRLF
    if (len === 0) return;
    if (this.sawComplete) this.linesAfterComplete++;
    if (this.inCopy) {
      // "\." ends COPY data; every other line is row data and is not looked at
      if (len === 2 && raw[0] === 0x5c && raw[1] === 0x2e) this.inCopy = false;
      return;
    }
    const first = raw[0];
    // Cheap filter on the first byte: only comments and the statements below are decoded.
    if (first !== 0x2d && first !== 0x41 && first !== 0x47 && first !== 0x52 && first !== 0x53 && first !== 0x43) return; // - A G R S C
    const text = raw.toString('utf8', 0, Math.min(len, MAX_LINE));
    if (first === 0x2d) {
      if (COMPLETE_RE.test(text)) { this.sawComplete = true; this.linesAfterComplete = 0; }
      if (text.startsWith('-- PostgreSQL database cluster dump')) this.cluster = true;
      return;
    }
    if (first === 0x43 && this.createsDatabase === undefined && text.startsWith('CREATE DATABASE ')) {
      const t = tokenize(text);
      if (t[2]) this.createsDatabase = t[2].v;
    }
    if (first === 0x43 && text.startsWith('COPY ') && text.endsWith(' FROM stdin;')) { this.inCopy = true; return; }
    this.statement(text);
  }

  private statement(text: string): void {
    const kw = /^(ALTER|GRANT|REVOKE|SET SESSION AUTHORIZATION|CREATE (?:EXTENSION|POLICY|USER MAPPING))\b/.exec(text)?.[1];
    if (!kw) return;
    const t = tokenize(text);
    const up = (i: number) => (t[i] && !t[i]!.quoted ? t[i]!.v.toUpperCase() : '');
    const addList = (from: number, stops: string[]) => {
      for (let i = from; i < t.length && !stops.includes(up(i)) && t[i]!.v !== ';'; i++) {
        if (t[i]!.v === ',' || up(i) === 'GROUP' || up(i) === 'ROLE') continue;
        this.addRole(t[i]!);
      }
    };
    const lastTop = (word: string) => { let found = -1; t.forEach((x, i) => { if (x.depth === 0 && up(i) === word) found = i; }); return found; };
    if (kw === 'SET SESSION AUTHORIZATION') {
      const lit = t.find((x) => x.literal);
      if (lit) this.addRole(lit);
    } else if (kw === 'CREATE EXTENSION') {
      let i = 2;
      if (up(i) === 'IF' && up(i + 1) === 'NOT' && up(i + 2) === 'EXISTS') i += 3;
      if (t[i] && t[i]!.v !== ';') this.extensions.add(t[i]!.v);
    } else if (kw === 'CREATE USER MAPPING') {
      if (up(3) === 'FOR' && t[4]) this.addRole(t[4]);
    } else if (kw === 'CREATE POLICY') {
      const to = lastTop('TO');
      if (to > 0) addList(to + 1, ['USING', 'WITH']);
    } else if (kw === 'ALTER') {
      const owner = t.findIndex((x, i) => x.depth === 0 && up(i) === 'OWNER' && up(i + 1) === 'TO');
      if (owner > 0 && t[owner + 2]) this.addRole(t[owner + 2]!);
      if (up(1) === 'DEFAULT' && up(2) === 'PRIVILEGES') {
        if (up(3) === 'FOR' && (up(4) === 'ROLE' || up(4) === 'USER')) addList(5, ['IN', 'GRANT', 'REVOKE']);
        this.grants(t, up, lastTop, addList);
      }
    } else this.grants(t, up, lastTop, addList);
  }

  /** GRANT … TO a, b [WITH …] [GRANTED BY c]; REVOKE … FROM a [GRANTED BY c] [CASCADE]. */
  private grants(t: Token[], up: (i: number) => string, lastTop: (w: string) => number, addList: (from: number, stops: string[]) => void): void {
    const isGrant = t.some((x, i) => x.depth === 0 && up(i) === 'GRANT');
    const isRevoke = t.some((x, i) => x.depth === 0 && up(i) === 'REVOKE');
    const at = isGrant && !isRevoke ? lastTop('TO') : isRevoke ? lastTop('FROM') : -1;
    if (at > 0) addList(at + 1, ['WITH', 'GRANTED', 'CASCADE', 'RESTRICT']);
    const by = t.findIndex((x, i) => up(i) === 'GRANTED' && up(i + 1) === 'BY');
    if (by > 0 && t[by + 2]) this.addRole(t[by + 2]!);
  }

  private addRole(tok: Token): void {
    const name = tok.v;
    if (!name || name === ',' || name === ';' || name === '(' || name === ')') return;
    if (!tok.quoted && !tok.literal && NOT_A_ROLE.has(name.toLowerCase())) return;
    if (name === 'postgres' || name.startsWith('pg_')) return; // the sandbox superuser; pg_* are built in and reserved
    this.roles.add(name);
  }

  result(decompressError?: string): PlainScan {
    this.flushCarry();
    const complete = !decompressError && this.sawComplete && !this.inCopy && this.linesAfterComplete <= MAX_LINES_AFTER_COMPLETE;
    return {
      complete,
      roles: [...this.roles].sort(),
      extensions: [...this.extensions].sort(),
      cluster: this.cluster,
      ...(this.createsDatabase !== undefined && !this.cluster ? { createsDatabase: this.createsDatabase } : {}),
      ...(decompressError ? { decompressError } : {}),
      bytesUncompressed: this.bytes,
    };
  }

  private flushCarry(): void {
    if (this.carryLen === 0) return;
    const last = Buffer.concat(this.carry);
    this.carry = [];
    this.carryLen = 0;
    this.line(last); // a final line without newline still counts (e.g. cut mid-line)
  }
}

interface Token { v: string; quoted?: boolean; literal?: boolean; depth: number }

/** Just enough SQL lexing for role lists: "quoted" identifiers, 'literals', words, punctuation, paren depth. */
function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let depth = 0;
  const re = /\s+|"((?:[^"]|"")*)"|E?'((?:[^']|'')*)'|([A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)|([(),;.])|(\S)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    if (m[1] !== undefined) out.push({ v: m[1].replace(/""/g, '"'), quoted: true, depth });
    else if (m[2] !== undefined) out.push({ v: m[2].replace(/''/g, "'"), literal: true, depth });
    else if (m[3] !== undefined) out.push({ v: m[3], depth });
    else if (m[4] !== undefined) {
      if (m[4] === '(') depth++;
      out.push({ v: m[4], depth });
      if (m[4] === ')') depth = Math.max(0, depth - 1);
    } else if (m[5] !== undefined) out.push({ v: m[5], depth });
  }
  return out;
}
