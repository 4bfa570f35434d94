import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Failed sign-ins per account, counted across API processes (issue 14):
 *
 * * the account is named by a keyed hash of what was typed as e-mail
 *   (HMAC-SHA-256 under a key derived by HKDF from ERNSTFALL_SECRET_KEY_FILE),
 *   never by the typed text, which may be a password typed into the wrong
 *   field and would otherwise stay in the ledger for ten years;
 * * at most `maxFailures` failures per account key and window, then 429
 *   (the same for known and unknown addresses);
 * * at most one audit record per account key and window for the failures
 *   that can come in floods (unknown address, locked or disabled account);
 *   the next record carries how many got none of their own meanwhile.
 *
 * Counted in Redis (the app's connection, under the installation's prefix),
 * so every API process sees the same counts; while Redis is unreachable, or
 * without it (ops app, scripts), in this process's memory.
 */
export interface LoginLimitsConfig {
  /** failed sign-ins per account key and window before further attempts get 429 */
  maxFailures: number;
  windowSeconds: number;
  /** at most one flood record (unknown address, locked, disabled) per account key in this time */
  auditWindowSeconds: number;
}

export const LOGIN_LIMITS: LoginLimitsConfig = { maxFailures: 20, windowSeconds: 900, auditWindowSeconds: 900 };

/** The app's Redis and the installation's key prefix (services/api/routes/auth.routes.ts RateLimitStore). */
export interface SharedCounters {
  redis: Redis;
  nameSpace: string;
}

/** How long a count of failures that got no record of their own is kept for the next record. */
const UNRECORDED_KEEP_MS = 30 * 86_400_000;

/** One failure more; returns the failures of the window so far and the milliseconds until it ends. */
const FAILED = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;

/** The first flood failure of a window gets a record (returns the failures that got none since the previous one); the others are counted (-1). */
const SLOT = `
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  local u = tonumber(redis.call('GET', KEYS[2]) or '0')
  redis.call('DEL', KEYS[2])
  return u
end
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return -1`;

/** The same counts in this process's memory (bounded), for when there is no Redis to share them. */
class MemoryCounters {
  private readonly failures = new Map<string, { n: number; until: number }>();
  private readonly slots = new Map<string, number>();
  private readonly unrecorded = new Map<string, number>();

  private static bound<V>(m: Map<string, V>): void {
    // oldest first out: a flood of distinct addresses cannot grow the process without end
    while (m.size > 10_000) m.delete(m.keys().next().value!);
  }

  blocked(key: string, max: number, now: number): number {
    const f = this.failures.get(key);
    return f && f.until > now && f.n >= max ? f.until - now : 0;
  }

  failed(key: string, windowMs: number, now: number): void {
    const f = this.failures.get(key);
    if (f && f.until > now) f.n++;
    else this.failures.set(key, { n: 1, until: now + windowMs });
    MemoryCounters.bound(this.failures);
  }

  slot(key: string, windowMs: number, now: number): number {
    if ((this.slots.get(key) ?? 0) > now) {
      this.unrecorded.set(key, (this.unrecorded.get(key) ?? 0) + 1);
      MemoryCounters.bound(this.unrecorded);
      return -1;
    }
    this.slots.set(key, now + windowMs);
    MemoryCounters.bound(this.slots);
    const u = this.unrecorded.get(key) ?? 0;
    this.unrecorded.delete(key);
    return u;
  }

  /** A failure that gets no record (throttled): counted for the next record. */
  uncounted(key: string): void {
    this.unrecorded.set(key, (this.unrecorded.get(key) ?? 0) + 1);
    MemoryCounters.bound(this.unrecorded);
  }
}

export class LoginLimits {
  private readonly key: Buffer;
  private readonly memory = new MemoryCounters();

  constructor(secretKey: Buffer | undefined, private readonly cfg: LoginLimitsConfig = LOGIN_LIMITS, private readonly onRedisError: (err: Error) => void = () => undefined) {
    // without a secret key the hashes hold for this process only (and say nothing across restarts); npm run setup creates one
    this.key = Buffer.from(hkdfSync('sha256', secretKey ?? randomBytes(32), 'ernstfall', 'login-account-key-v1', 32));
  }

  /** The account key of what was typed as e-mail (normalised by the caller): `hmac-sha256:<hex>`. */
  accountKey(typed: string): string {
    return `hmac-sha256:${createHmac('sha256', this.key).update(typed, 'utf8').digest('hex')}`;
  }

  private names(shared: SharedCounters, key: string) {
    const id = key.slice('hmac-sha256:'.length);
    return { failures: `${shared.nameSpace}account-failures:${id}`, slot: `${shared.nameSpace}account-record:${id}`, unrecorded: `${shared.nameSpace}account-unrecorded:${id}` };
  }

  private async shared<T>(shared: SharedCounters | undefined, inRedis: (s: SharedCounters) => Promise<T>, inMemory: () => T): Promise<T> {
    if (shared) {
      try {
        return await inRedis(shared);
      } catch (err) {
        this.onRedisError(err as Error);
      }
    }
    return inMemory();
  }

  /** Seconds until the account key may try again (0: it may now). */
  async blockedSeconds(key: string, shared?: SharedCounters): Promise<number> {
    const ms = await this.shared(shared, async (s) => {
      const n = this.names(s, key);
      const [count, ttl] = await Promise.all([s.redis.get(n.failures), s.redis.pttl(n.failures)]);
      return Number(count ?? 0) >= this.cfg.maxFailures && ttl > 0 ? ttl : 0;
    }, () => this.memory.blocked(key, this.cfg.maxFailures, performance.now()));
    return ms > 0 ? Math.ceil(ms / 1000) : 0;
  }

  /** One failed sign-in of the account key. */
  async failed(key: string, shared?: SharedCounters): Promise<void> {
    await this.shared(shared, async (s) => {
      await s.redis.eval(FAILED, 1, this.names(s, key).failures, this.cfg.windowSeconds * 1000);
    }, () => this.memory.failed(key, this.cfg.windowSeconds * 1000, performance.now()));
  }

  /**
   * Whether this flood failure gets an audit record: the first of the account
   * key in its window does, carrying how many failures got none since the
   * key's previous record; the others are only counted.
   */
  async recordSlot(key: string, shared?: SharedCounters): Promise<{ record: true; unrecordedBefore: number } | { record: false }> {
    const r = await this.shared(shared, async (s) => {
      const n = this.names(s, key);
      return Number(await s.redis.eval(SLOT, 2, n.slot, n.unrecorded, this.cfg.auditWindowSeconds * 1000, UNRECORDED_KEEP_MS));
    }, () => this.memory.slot(key, this.cfg.auditWindowSeconds * 1000, performance.now()));
    return r < 0 ? { record: false } : { record: true, unrecordedBefore: r };
  }

  /** A refused attempt (throttled) that gets no record: counted for the key's next record. */
  async unrecorded(key: string, shared?: SharedCounters): Promise<void> {
    await this.shared(shared, async (s) => {
      const n = this.names(s, key).unrecorded;
      await s.redis.multi().incr(n).pexpire(n, UNRECORDED_KEEP_MS).exec();
    }, () => this.memory.uncounted(key));
  }
}
