import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export type WebhookFormat = 'json' | 'teams';

/** A named webhook (ERNSTFALL_WEBHOOKS_FILE). The URL and the secret are secrets: never logged or shown. */
export interface WebhookConfig {
  name: string;
  url: string;
  format: WebhookFormat;
  /** HMAC-SHA256 key for the `json` format (X-Ernstfall-Signature). */
  secret?: string;
  /** Tenant slugs whose plans may use it; undefined = every tenant. */
  tenants?: string[];
}

const KEYS = ['url', 'urlFile', 'format', 'secret', 'secretFile', 'tenants'];

function readSecretFile(file: string, where: string, problems: string[]): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    problems.push(`${where}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}

/**
 * Reads the webhooks file:
 *
 *   webhooks:
 *     teams-it: { urlFile: /run/secrets/teams-it-url, format: teams }
 *     ticket:   { url: https://tickets.example/hook, secretFile: /run/secrets/ticket-hmac, tenants: [musterstadt] }
 *
 * Every problem is added to `problems` with the file and the webhook's name, never a URL or secret.
 */
export function loadWebhooks(file: string | undefined, problems: string[]): Map<string, WebhookConfig> {
  const out = new Map<string, WebhookConfig>();
  if (!file) return out;
  const where = `ERNSTFALL_WEBHOOKS_FILE (${file})`;
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'), { maxAliasCount: 0 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push(`${where}: ${code ? `cannot read (${code})` : `not valid YAML (${(err as Error).message.split('\n')[0]})`}`);
    return out;
  }
  const hooks = (doc as { webhooks?: unknown } | null)?.webhooks;
  if (!hooks || typeof hooks !== 'object' || Array.isArray(hooks)) {
    problems.push(`${where}: expected a mapping "webhooks:" of name → {url, format, secret}`);
    return out;
  }
  for (const [name, raw] of Object.entries(hooks as Record<string, unknown>)) {
    const at = `${where}: webhooks.${name}`;
    if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(name)) {
      problems.push(`${at}: name must be 1-64 characters of a-z, 0-9, _ . -`);
      continue;
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push(`${at}: must be a mapping with url (or urlFile), format, secret (or secretFile)`);
      continue;
    }
    const h = raw as Record<string, unknown>;
    for (const k of Object.keys(h)) if (!KEYS.includes(k)) problems.push(`${at}.${k}: unknown key (allowed: ${KEYS.join(', ')})`);
    const format = (h.format ?? 'json') as WebhookFormat;
    if (format !== 'json' && format !== 'teams') problems.push(`${at}.format: must be json or teams`);
    let url = typeof h.url === 'string' ? h.url : undefined;
    if (typeof h.urlFile === 'string') url = readSecretFile(h.urlFile, `${at}.urlFile`, problems);
    if (!url) {
      problems.push(`${at}: url or urlFile is required`);
      continue;
    }
    try {
      const u = new URL(url);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') problems.push(`${at}.url: must be http(s)`);
    } catch {
      problems.push(`${at}.url: not a valid URL`);
    }
    let secret = typeof h.secret === 'string' ? h.secret : undefined;
    if (typeof h.secretFile === 'string') secret = readSecretFile(h.secretFile, `${at}.secretFile`, problems);
    if (format === 'json' && (!secret || secret.length < 16)) problems.push(`${at}: format json needs a secret (or secretFile) of at least 16 characters for the HMAC signature`);
    let tenants: string[] | undefined;
    if (h.tenants !== undefined) {
      if (!Array.isArray(h.tenants) || !h.tenants.every((t) => typeof t === 'string')) problems.push(`${at}.tenants: must be a list of tenant slugs`);
      else tenants = h.tenants as string[];
    }
    out.set(name, { name, url, format, ...(secret && { secret }), ...(tenants && { tenants }) });
  }
  return out;
}
