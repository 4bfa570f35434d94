import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadWebhooks, type WebhookConfig } from './notify/webhook-config.js';
import { parseRecipient } from './notify/types.js';
import { DEFAULT_POOL, loadSandboxPolicy, poolList, type SandboxPolicy } from './sandbox-policy.js';

/** The folder with package.json above this module: the repository, or the app folder of a compiled build (dist/ below it). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '..');
}
export const repoRoot = findRoot();

export type ProcessRole = 'api' | 'worker' | 'scheduler';
export type PullPolicy = 'never' | 'missing' | 'always';

export interface Config {
  roles: ProcessRole[];
  http: {
    host: string;
    port: number;
    publicUrl?: string;
    /** How far ahead the iCalendar feeds list every scheduled slot and due date (ISO 8601 period). */
    calendarHorizon: string;
    /** Reverse proxies whose X-Forwarded-For is believed: true, a hop count, or comma-separated addresses/CIDRs. */
    trustProxy?: boolean | string | number;
  };
  database: { url: string; ownerUrl?: string; poolSize: number };
  /** `prefix` keeps several installations apart on one Redis. */
  redis: { url: string; prefix: string };
  docker: { host?: string };
  auth: {
    bootstrapToken?: string;
    /** Key material (ERNSTFALL_SECRET_KEY_FILE) from which the key that encrypts TOTP secrets is derived. */
    secretKey?: Buffer;
    /** Session cookies only over HTTPS: default when ERNSTFALL_PUBLIC_URL is https. */
    cookieSecure: boolean;
    sessionIdleSeconds: number;
    sessionMaxSeconds: number;
    /** Failed password or code attempts before an account is locked for lockSeconds (doubling on repeat). */
    maxFailures: number;
    lockSeconds: number;
    oidc?: OidcConfig;
  };
  instance: string;
  /** ernstfall backs itself up daily into this folder and restore-tests it (ERNSTFALL_SELF_BACKUP_DIR); off when unset. */
  selfBackup?: { dir: string; keep: number; time: string };
  /** Backup roots of the default tenant (ERNSTFALL_BACKUP_ROOTS); every tenant's in `policy.tenantRoots`. */
  backupRoots: string[];
  /** What the operator allows plans: backup roots per tenant, images, upper bounds of sandbox limits. */
  policy: SandboxPolicy;
  plansDir: string;
  sandbox: {
    pull: PullPolicy;
    /** Image per PostgreSQL major; `{major}` is replaced. */
    postgresImage: string;
    /** Majors that have an image, smallest first. */
    postgresMajors: number[];
    /** The image of the files driver (archives, folders; restic and borg): deploy/build-files-image.sh. */
    filesImage: string;
    /** Image per MariaDB version; `{version}` is replaced (deploy/build-mariadb-image.sh). */
    mariadbImage: string;
    /** The image of the container that probes an application group's services on their internal network (decisions/021). */
    probeImage: string;
    /** MariaDB versions that have an image, e.g. 10.11. */
    mariadbVersions: string[];
    /** Sandboxes this worker runs at once, over all its pools (ERNSTFALL_WORKER_CONCURRENCY). */
    concurrency: number;
    /** The worker pools this worker serves (ERNSTFALL_WORKER_POOLS, default `default`); its Docker engine is theirs. */
    pools: string[];
    settleSeconds: number;
    /** Free disk needed in the sandbox, as a multiple of the backup size. */
    diskFactor: number;
    /** copy (and auto): streamed into the sandbox while hashed; bind: read-only bind mount (local engine only). */
    transfer: 'auto' | 'bind' | 'copy';
    /** A running run without a heartbeat for this long is declared lost. */
    staleSeconds: number;
    heartbeatMs: number;
  };
  evidence: {
    /** Ed25519 private key (PKCS#8 PEM) that signs ledger records and checkpoints. */
    signingKeyFile: string;
    /** Public keys trusted for verification besides the current one (*.pub.pem; rotation keeps old ones here). */
    trustedKeysDir: string;
    /** Signed chain-head checkpoints, one JSONL file per tenant: the anchor outside the database. */
    checkpointDir: string;
    recordRetention: string;
    attachmentRetention: string;
  };
  notify: {
    /** smtp://user:pass@host:port or smtps://… (a secret: never logged). */
    smtpUrl?: string;
    mailFrom: string;
    /** STARTTLS on smtp://: required (refuse without), opportunistic (when offered), off. */
    smtpStarttls: 'required' | 'opportunistic' | 'off';
    /** Extra CA certificate (PEM) for the SMTP server, e.g. the municipality's own CA. */
    smtpCaFile?: string;
    webhooks: Map<string, WebhookConfig>;
    /** Language of notifications: de (default) or en. */
    lang: 'de' | 'en';
    /** Time zone in which notifications show times and the digest is scheduled. */
    timezone: string;
    /** Local time (HH:MM) of the daily digest. */
    digestTime: string;
    /** How often the dispatcher looks for notifications to deliver. */
    dispatchMs: number;
    /** First retry delay; doubles per attempt up to one hour. */
    retryBaseMs: number;
    /** After this long undelivered, a notification is marked failed (still visible, can be retried by hand). */
    retryFor: string;
    /** Recipients of each tenant's signed evidence checkpoint, once a day (kept outside the server). */
    checkpointRecipients: string[];
  };
  metrics: {
    /** Bearer token for GET /metrics; without it /metrics answers 404. */
    token?: string;
    /** Tenant slugs as label values (off by default: names of Kommunen are not for every scraper). */
    tenantLabels: boolean;
  };
  /** The syslog listener for Veeam SureBackup results (ERNSTFALL_SYSLOG_LISTEN); absent: none. */
  syslog?: { host: string; port: number; sources: Map<string, string> };
  logLevel: string;
  stateDir: string;
}

/** `host:port` and `address=tenant-slug,…` of the syslog listener, or nothing when it is not asked for. */
function syslogConfig(env: Env, problems: string[]): Config['syslog'] {
  const listen = env.ERNSTFALL_SYSLOG_LISTEN?.trim();
  if (!listen) return undefined;
  const m = /^(\[[0-9a-fA-F:]+\]|[0-9.]+|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[2]) > 65535) {
    problems.push(`ERNSTFALL_SYSLOG_LISTEN: "${listen}" must be host:port, e.g. 0.0.0.0:6514`);
    return undefined;
  }
  const sources = new Map<string, string>();
  for (const part of (env.ERNSTFALL_SYSLOG_SOURCES ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const e = /^([0-9a-fA-F:.]+)=([a-z0-9][a-z0-9-]{0,62})$/.exec(part);
    if (!e) problems.push(`ERNSTFALL_SYSLOG_SOURCES: "${part}" must be address=tenant-slug, e.g. 10.0.0.5=kommune-a`);
    else sources.set(e[1]!, e[2]!);
  }
  if (sources.size === 0) problems.push('ERNSTFALL_SYSLOG_SOURCES: the syslog listener needs at least one sender address mapped to a tenant (syslog has no credentials), e.g. 10.0.0.5=default');
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), sources };
}

/** Single sign-on over OpenID Connect (Keycloak, Entra ID, AD FS …). */
export interface OidcConfig {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Label on the login button, e.g. "Anmelden mit Stadt-Konto". */
  label: string;
  /** Claim holding the user's groups/roles (a list or a space/comma separated string). */
  rolesClaim: string;
  /** Claim value → ernstfall role; the highest mapped role wins; no mapped value = no access. */
  roleMap: Record<string, 'admin' | 'operator' | 'reviewer' | 'auditor'>;
  /** Claim naming the tenant slug; without it every SSO user belongs to `tenant`. */
  tenantClaim?: string;
  tenant: string;
  /** The IdP must report a second factor (amr claim contains one of these) for roles that need 2FA; empty = trust the IdP. */
  mfaAmr: string[];
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * `X` or the content of the file named by `X_FILE` (secrets stay out of the
 * environment). Both set is an error naming both: which one was meant cannot
 * be guessed. (An explicitly set `X` or `X_FILE` already replaces the other
 * half of the pair from the env file: see loadEnvFile.)
 */
function secret(env: Env, name: string, problems: string[]): string | undefined {
  const file = env[`${name}_FILE`];
  if (file && env[name]) {
    problems.push(`${name} and ${name}_FILE are both set: set only one of them (either one set in the environment replaces the other from ${ENV_FILE_HINT})`);
    return undefined;
  }
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      problems.push(`${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
  }
  return env[name] || undefined;
}

const ENV_FILE_HINT = '.ernstfall/env';

function int(env: Env, name: string, def: number, problems: string[], min = 0, max = 1_000_000): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name}: "${raw}" is not a whole number between ${min} and ${max}`);
    return def;
  }
  return n;
}

function url(env: Env, name: string, value: string | undefined, protocols: string[], problems: string[]): void {
  if (value === undefined) return;
  try {
    const u = new URL(value);
    if (!protocols.includes(u.protocol)) problems.push(`${name}: protocol must be one of ${protocols.join(', ')}`);
  } catch {
    // never echo the value: it may hold a password
    problems.push(`${name}: not a valid URL`);
  }
}

/** Which variables of an environment object came from the env file (loadEnvFile may run several times on process.env). */
const loadedFromFile = new WeakMap<Env, Set<string>>();

/**
 * Loads `<stateDir>/env` (written by `npm run setup`) underneath the real
 * environment: what is set explicitly wins, for plain variables and `_FILE`
 * pairs alike. A variable the environment sets (even to the empty string) is
 * not taken from the file, and neither is the other half of its pair: an
 * explicit `ERNSTFALL_BOOTSTRAP_TOKEN` makes the file's
 * `ERNSTFALL_BOOTSTRAP_TOKEN_FILE` not count, and an explicit `X_FILE` the
 * file's `X`. (`X` and `X_FILE` both set explicitly is a start-up error:
 * loadConfig.) The owner role's URL lives in `owner.env`, loaded only by
 * tools that need it (migrations, set-up, tests, demo), never by the running
 * service: the app must not hold the password of the role that could change
 * the ledger's table.
 */
export function loadEnvFile(env: Env = process.env, opts: { owner?: boolean } = {}): void {
  const stateDir = env.ERNSTFALL_STATE_DIR ?? join(repoRoot, '.ernstfall');
  let fromFile = loadedFromFile.get(env);
  if (!fromFile) loadedFromFile.set(env, (fromFile = new Set()));
  for (const name of opts.owner ? ['env', 'owner.env'] : ['env']) {
    const file = join(stateDir, name);
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
      if (!m) continue;
      const key = m[1]!;
      if (env[key] !== undefined) continue;
      const pair = key.endsWith('_FILE') ? key.slice(0, -'_FILE'.length) : `${key}_FILE`;
      // the other half set in the environment (not by this file, read earlier): that one was meant
      if (env[pair] !== undefined && !fromFile.has(pair)) continue;
      env[key] = m[2]!.replace(/^"(.*)"$/, '$1');
      fromFile.add(key);
    }
  }
}

function trustProxy(v: string | undefined, problems: string[]): boolean | string | number | undefined {
  if (v === undefined || v === '' || v === 'false') return undefined;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  if (/^[0-9a-fA-F:.,/ ]+$/.test(v)) return v.split(',').map((x) => x.trim()).filter(Boolean).join(',');
  problems.push(`ERNSTFALL_TRUST_PROXY: "${v}" must be true, a number of hops, or comma-separated proxy addresses (e.g. 10.0.0.5,10.0.1.0/24)`);
  return undefined;
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];

  const roles = (env.ERNSTFALL_ROLES ?? 'api,worker,scheduler').split(',').map((r) => r.trim()).filter(Boolean);
  for (const r of roles) {
    if (!['api', 'worker', 'scheduler'].includes(r)) problems.push(`ERNSTFALL_ROLES: unknown role "${r}" (api, worker, scheduler)`);
  }

  const databaseUrl = secret(env, 'DATABASE_URL', problems);
  if (!databaseUrl) problems.push('DATABASE_URL: required (postgres://user:password@host:port/db), or DATABASE_URL_FILE');
  url(env, 'DATABASE_URL', databaseUrl, ['postgres:', 'postgresql:'], problems);
  const ownerUrl = secret(env, 'DATABASE_OWNER_URL', problems);
  url(env, 'DATABASE_OWNER_URL', ownerUrl, ['postgres:', 'postgresql:'], problems);
  const redisUrl = secret(env, 'REDIS_URL', problems) ?? 'redis://127.0.0.1:6379';
  url(env, 'REDIS_URL', redisUrl, ['redis:', 'rediss:'], problems);

  const publicUrl = env.ERNSTFALL_PUBLIC_URL || undefined;
  url(env, 'ERNSTFALL_PUBLIC_URL', publicUrl, ['http:', 'https:'], problems);


  const pull = (env.ERNSTFALL_SANDBOX_PULL ?? 'never') as PullPolicy;
  if (!['never', 'missing', 'always'].includes(pull)) {
    problems.push(`ERNSTFALL_SANDBOX_PULL: "${pull}" must be never, missing or always`);
  }

  const postgresImage = env.ERNSTFALL_POSTGRES_IMAGE ?? 'ernstfall/sandbox-postgres:{major}';
  if (!postgresImage.includes('{major}')) problems.push('ERNSTFALL_POSTGRES_IMAGE: must contain {major}, e.g. postgres:{major}');
  const majors = (env.ERNSTFALL_POSTGRES_MAJORS ?? '15,17').split(',').map((s) => Number(s.trim()));
  if (majors.some((m) => !Number.isInteger(m) || m < 9)) {
    problems.push(`ERNSTFALL_POSTGRES_MAJORS: "${env.ERNSTFALL_POSTGRES_MAJORS}" must be a comma-separated list of majors, e.g. 15,17`);
  }

  const mariadbImage = env.ERNSTFALL_MARIADB_IMAGE ?? 'ernstfall/sandbox-mariadb:{version}';
  if (!mariadbImage.includes('{version}')) problems.push('ERNSTFALL_MARIADB_IMAGE: must contain {version}, e.g. mariadb:{version}');
  const mariadbVersions = (env.ERNSTFALL_MARIADB_VERSIONS ?? '10.11,11.8').split(',').map((s) => s.trim()).filter(Boolean);
  if (mariadbVersions.some((v) => !/^\d+\.\d+$/.test(v))) problems.push(`ERNSTFALL_MARIADB_VERSIONS: "${env.ERNSTFALL_MARIADB_VERSIONS}" must be a comma-separated list of versions, e.g. 10.11,11.8`);

  // default label from the database's identity (never its password): two installations sharing a
  // Docker engine then never reap each other's sandboxes, even if nobody set ERNSTFALL_INSTANCE
  let dbIdentity = 'unknown';
  try {
    const u = new URL(databaseUrl ?? '');
    dbIdentity = `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch { /* reported above */ }
  const instance = env.ERNSTFALL_INSTANCE ?? `ef-${createHash('sha256').update(dbIdentity).digest('hex').slice(0, 10)}`;
  if (!/^[a-zA-Z0-9_.-]{1,63}$/.test(instance)) problems.push('ERNSTFALL_INSTANCE: 1-63 characters of a-z, 0-9, _ . -');

  const diskFactor = Number(env.ERNSTFALL_DISK_FACTOR ?? '4');
  if (!(diskFactor >= 0)) problems.push('ERNSTFALL_DISK_FACTOR: must be a number >= 0');

  const transfer = (env.ERNSTFALL_SANDBOX_TRANSFER ?? 'auto') as Config['sandbox']['transfer'];
  if (!['auto', 'bind', 'copy'].includes(transfer)) problems.push(`ERNSTFALL_SANDBOX_TRANSFER: "${transfer}" must be auto, bind or copy`);
  // a bind mount names a path on the engine's host: with a remote engine that would be another machine's file
  if (transfer === 'bind' && env.DOCKER_HOST && !/^(unix|npipe):/.test(env.DOCKER_HOST)) {
    problems.push('ERNSTFALL_SANDBOX_TRANSFER: "bind" needs a local Docker engine; with a remote DOCKER_HOST the backup is copied in (auto or copy)');
  }

  const logLevel = env.LOG_LEVEL ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    problems.push(`LOG_LEVEL: "${logLevel}" must be one of fatal, error, warn, info, debug, trace, silent`);
  }

  const stateDir = resolve(env.ERNSTFALL_STATE_DIR ?? join(repoRoot, '.ernstfall'));
  for (const name of ['ERNSTFALL_RECORD_RETENTION', 'ERNSTFALL_ATTACHMENT_RETENTION', 'ERNSTFALL_CALENDAR_HORIZON']) {
    const v = env[name];
    // a period of at least a day ("P" alone or "P0D" would break every feed and every record)
    if (v && (!/^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?$/.test(v) || !/[1-9]/.test(v))) problems.push(`${name}: "${v}" must be an ISO 8601 period of at least a day, like P10Y or P90D`);
  }

  const smtpUrl = secret(env, 'ERNSTFALL_SMTP_URL', problems);
  url(env, 'ERNSTFALL_SMTP_URL', smtpUrl, ['smtp:', 'smtps:'], problems);
  const mailFrom = env.ERNSTFALL_MAIL_FROM ?? 'ernstfall <ernstfall@localhost>';
  if (!/^[^\r\n]{3,200}$/.test(mailFrom) || !mailFrom.includes('@')) problems.push('ERNSTFALL_MAIL_FROM: must be an address like "ernstfall <ernstfall@musterstadt.de>"');
  const smtpStarttls = (env.ERNSTFALL_SMTP_STARTTLS ?? 'opportunistic') as Config['notify']['smtpStarttls'];
  if (!['required', 'opportunistic', 'off'].includes(smtpStarttls)) problems.push(`ERNSTFALL_SMTP_STARTTLS: "${smtpStarttls}" must be required, opportunistic or off`);
  const notifyLang = (env.ERNSTFALL_NOTIFY_LANG ?? 'de') as 'de' | 'en';
  if (notifyLang !== 'de' && notifyLang !== 'en') problems.push(`ERNSTFALL_NOTIFY_LANG: "${notifyLang}" must be de or en`);
  const timezone = env.ERNSTFALL_TIMEZONE ?? 'Europe/Berlin';
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    problems.push(`ERNSTFALL_TIMEZONE: "${timezone}" is not an IANA time zone like Europe/Berlin`);
  }
  const selfBackupDir = env.ERNSTFALL_SELF_BACKUP_DIR ? resolve(env.ERNSTFALL_SELF_BACKUP_DIR) : undefined;
  const selfBackupTime = env.ERNSTFALL_SELF_BACKUP_TIME ?? '02:30';
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(selfBackupTime)) problems.push(`ERNSTFALL_SELF_BACKUP_TIME: "${selfBackupTime}" must be HH:MM`);
  const selfBackupKeep = int(env, 'ERNSTFALL_SELF_BACKUP_KEEP', 7, problems, 1, 365);
  const digestTime = env.ERNSTFALL_DIGEST_TIME ?? '07:00';
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(digestTime)) problems.push(`ERNSTFALL_DIGEST_TIME: "${digestTime}" must be HH:MM`);
  const retryFor = env.ERNSTFALL_NOTIFY_RETRY_FOR ?? 'P3D';
  if (!/^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/.test(retryFor)) problems.push(`ERNSTFALL_NOTIFY_RETRY_FOR: "${retryFor}" must be an ISO 8601 duration like P3D or PT6H`);
  for (const r of (env.ERNSTFALL_CHECKPOINT_RECIPIENTS ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const parsed = parseRecipient(r);
    if (typeof parsed === 'string') problems.push(`ERNSTFALL_CHECKPOINT_RECIPIENTS: ${parsed}`);
  }
  const metricsToken = secret(env, 'ERNSTFALL_METRICS_TOKEN', problems);
  if (metricsToken !== undefined && metricsToken.length < 16) problems.push('ERNSTFALL_METRICS_TOKEN: must be at least 16 characters');

  let secretKey: Buffer | undefined;
  const secretKeyText = secret(env, 'ERNSTFALL_SECRET_KEY', problems);
  if (secretKeyText !== undefined) {
    if (secretKeyText.length < 32) problems.push('ERNSTFALL_SECRET_KEY: must be at least 32 characters (npm run setup creates one in .ernstfall/secrets/secret-key)');
    else secretKey = Buffer.from(secretKeyText, 'utf8');
  }
  const durationSeconds = (name: string, def: number, min: number, max: number): number => {
    const v = env[name];
    if (!v) return def;
    const m = /^PT(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$/.exec(v);
    const n = m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : NaN;
    if (!(n >= min && n <= max)) {
      problems.push(`${name}: "${v}" must be an ISO 8601 time like PT30M or PT12H, between ${min} and ${max} seconds`);
      return def;
    }
    return n;
  };
  const policy = loadSandboxPolicy(env, problems, durationSeconds);
  let oidc: OidcConfig | undefined;
  if (env.ERNSTFALL_OIDC_ISSUER) {
    url(env, 'ERNSTFALL_OIDC_ISSUER', env.ERNSTFALL_OIDC_ISSUER, ['https:', 'http:'], problems);
    const clientSecret = secret(env, 'ERNSTFALL_OIDC_CLIENT_SECRET', problems);
    if (!env.ERNSTFALL_OIDC_CLIENT_ID) problems.push('ERNSTFALL_OIDC_CLIENT_ID: required with ERNSTFALL_OIDC_ISSUER');
    if (!clientSecret) problems.push('ERNSTFALL_OIDC_CLIENT_SECRET: required with ERNSTFALL_OIDC_ISSUER (or ERNSTFALL_OIDC_CLIENT_SECRET_FILE)');
    if (!publicUrl) problems.push('ERNSTFALL_PUBLIC_URL: required for single sign-on (the redirect URI is <public URL>/auth/oidc/callback)');
    const roleMap: OidcConfig['roleMap'] = {};
    for (const pair of (env.ERNSTFALL_OIDC_ROLE_MAP ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
      const i = pair.lastIndexOf('=');
      const role = pair.slice(i + 1);
      if (i < 1 || !['admin', 'operator', 'reviewer', 'auditor'].includes(role)) {
        problems.push(`ERNSTFALL_OIDC_ROLE_MAP: "${pair}" must be <claim value>=<admin|operator|reviewer|auditor>`);
      } else roleMap[pair.slice(0, i)] = role as OidcConfig['roleMap'][string];
    }
    if (Object.keys(roleMap).length === 0) problems.push('ERNSTFALL_OIDC_ROLE_MAP: required, e.g. "ernstfall-admins=admin,ernstfall-pruefer=reviewer"');
    oidc = {
      issuer: env.ERNSTFALL_OIDC_ISSUER,
      clientId: env.ERNSTFALL_OIDC_CLIENT_ID ?? '',
      clientSecret: clientSecret ?? '',
      label: env.ERNSTFALL_OIDC_LABEL ?? 'Single Sign-On',
      rolesClaim: env.ERNSTFALL_OIDC_ROLES_CLAIM ?? 'roles',
      roleMap,
      tenantClaim: env.ERNSTFALL_OIDC_TENANT_CLAIM || undefined,
      tenant: env.ERNSTFALL_OIDC_TENANT ?? 'default',
      mfaAmr: (env.ERNSTFALL_OIDC_MFA_AMR ?? '').split(',').map((x) => x.trim()).filter(Boolean),
    };
  }
  const cookieSecureEnv = env.ERNSTFALL_COOKIE_SECURE;
  if (cookieSecureEnv !== undefined && cookieSecureEnv !== 'true' && cookieSecureEnv !== 'false') problems.push('ERNSTFALL_COOKIE_SECURE: must be true or false');

  const config: Config = {
    roles: roles as ProcessRole[],
    http: {
      host: env.HOST ?? '127.0.0.1',
      port: int(env, 'PORT', 8080, problems, 0, 65535),
      publicUrl,
      calendarHorizon: env.ERNSTFALL_CALENDAR_HORIZON || 'P90D',
      trustProxy: trustProxy(env.ERNSTFALL_TRUST_PROXY, problems),
    },
    database: { url: databaseUrl ?? '', ownerUrl, poolSize: int(env, 'DATABASE_POOL_SIZE', 10, problems, 1, 200) },
    redis: { url: redisUrl, prefix: env.ERNSTFALL_QUEUE_PREFIX ?? 'ernstfall' },
    docker: { host: env.DOCKER_HOST || undefined },
    auth: {
      bootstrapToken: secret(env, 'ERNSTFALL_BOOTSTRAP_TOKEN', problems),
      secretKey,
      cookieSecure: cookieSecureEnv !== undefined ? cookieSecureEnv === 'true' : (publicUrl ?? '').startsWith('https:'),
      sessionIdleSeconds: durationSeconds('ERNSTFALL_SESSION_IDLE', 3600, 60, 86_400),
      sessionMaxSeconds: durationSeconds('ERNSTFALL_SESSION_MAX', 12 * 3600, 300, 7 * 86_400),
      maxFailures: int(env, 'ERNSTFALL_LOGIN_MAX_FAILURES', 5, problems, 1, 100),
      lockSeconds: durationSeconds('ERNSTFALL_LOGIN_LOCK', 900, 1, 86_400),
      oidc,
    },
    instance,
    backupRoots: policy.tenantRoots.get('default') ?? [],
    ...(selfBackupDir && { selfBackup: { dir: selfBackupDir, keep: selfBackupKeep, time: selfBackupTime } }),
    policy,
    plansDir: resolve(env.ERNSTFALL_PLANS_DIR ?? join(repoRoot, 'restore-plans')),
    sandbox: {
      pull,
      postgresImage,
      postgresMajors: [...majors].sort((a, b) => a - b),
      filesImage: env.ERNSTFALL_FILES_IMAGE ?? 'ernstfall/sandbox-files:bookworm',
      mariadbImage,
      mariadbVersions,
      probeImage: env.ERNSTFALL_PROBE_IMAGE ?? 'ernstfall/node-base:24',
      concurrency: int(env, 'ERNSTFALL_WORKER_CONCURRENCY', 2, problems, 1, 64),
      pools: env.ERNSTFALL_WORKER_POOLS?.trim() ? poolList(env.ERNSTFALL_WORKER_POOLS, 'ERNSTFALL_WORKER_POOLS', problems) : [DEFAULT_POOL],
      settleSeconds: int(env, 'ERNSTFALL_SETTLE_SECONDS', 60, problems, 0, 86_400),
      diskFactor,
      transfer,
      staleSeconds: int(env, 'ERNSTFALL_STALE_SECONDS', 60, problems, 2, 86_400),
      heartbeatMs: int(env, 'ERNSTFALL_HEARTBEAT_MS', 5000, problems, 200, 600_000),
    },
    evidence: {
      signingKeyFile: resolve(env.ERNSTFALL_SIGNING_KEY_FILE || join(stateDir, 'secrets', 'signing-key.pem')),
      trustedKeysDir: resolve(env.ERNSTFALL_TRUSTED_KEYS_DIR || join(stateDir, 'keys')),
      checkpointDir: resolve(env.ERNSTFALL_CHECKPOINT_DIR || join(stateDir, 'checkpoints')),
      recordRetention: env.ERNSTFALL_RECORD_RETENTION || 'P10Y',
      attachmentRetention: env.ERNSTFALL_ATTACHMENT_RETENTION || 'P90D',
    },
    notify: {
      smtpUrl,
      mailFrom,
      smtpStarttls,
      smtpCaFile: env.ERNSTFALL_SMTP_CA_FILE || undefined,
      webhooks: loadWebhooks(env.ERNSTFALL_WEBHOOKS_FILE || undefined, problems),
      lang: notifyLang,
      timezone,
      digestTime,
      dispatchMs: int(env, 'ERNSTFALL_NOTIFY_DISPATCH_MS', 10_000, problems, 50, 3_600_000),
      retryBaseMs: int(env, 'ERNSTFALL_NOTIFY_RETRY_BASE_MS', 30_000, problems, 10, 3_600_000),
      retryFor,
      checkpointRecipients: (env.ERNSTFALL_CHECKPOINT_RECIPIENTS ?? '').split(',').map((r) => r.trim()).filter(Boolean),
    },
    metrics: { token: metricsToken, tenantLabels: env.ERNSTFALL_METRICS_TENANT_LABELS === 'true' },
    syslog: syslogConfig(env, problems),
    logLevel,
    stateDir,
  };
  if (config.sandbox.heartbeatMs * 2 > config.sandbox.staleSeconds * 1000) {
    problems.push(`ERNSTFALL_HEARTBEAT_MS: ${config.sandbox.heartbeatMs} ms must be at most half of ERNSTFALL_STALE_SECONDS (${config.sandbox.staleSeconds} s), or every run would be declared lost`);
  }
  if (config.auth.bootstrapToken !== undefined && config.auth.bootstrapToken.length < 16) {
    problems.push('ERNSTFALL_BOOTSTRAP_TOKEN: must be at least 16 characters');
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}

export const defaultHostname = hostname();
