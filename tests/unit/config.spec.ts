import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../services/config.js';

const base = { DATABASE_URL: 'postgres://app:pw@127.0.0.1:5432/ernstfall', ERNSTFALL_BACKUP_ROOTS: '/srv/backups' };

describe('loadConfig', () => {
  it('gives the documented defaults', () => {
    const c = loadConfig(base);
    expect(c.http).toEqual({ host: '127.0.0.1', port: 8080, publicUrl: undefined, calendarHorizon: 'P90D' });
    expect(c.sandbox.pull).toBe('never');
    expect(c.redis.url).toBe('redis://127.0.0.1:6379');
    expect(c.roles).toEqual(['api', 'worker', 'scheduler']);
  });

  it('the syslog listener: off by default; host:port and at least one sender mapped to a tenant', () => {
    expect(loadConfig(base).syslog).toBeUndefined();
    const c = loadConfig({ ...base, ERNSTFALL_SYSLOG_LISTEN: '0.0.0.0:6514', ERNSTFALL_SYSLOG_SOURCES: '10.0.0.5=kommune-a, 127.0.0.1=default' });
    expect(c.syslog).toEqual({ host: '0.0.0.0', port: 6514, sources: new Map([['10.0.0.5', 'kommune-a'], ['127.0.0.1', 'default']]) });
    expect(() => loadConfig({ ...base, ERNSTFALL_SYSLOG_LISTEN: '0.0.0.0:6514' })).toThrow(/ERNSTFALL_SYSLOG_SOURCES/);
    expect(() => loadConfig({ ...base, ERNSTFALL_SYSLOG_LISTEN: '6514' })).toThrow(/ERNSTFALL_SYSLOG_LISTEN/);
    expect(() => loadConfig({ ...base, ERNSTFALL_SYSLOG_LISTEN: '[::]:6514', ERNSTFALL_SYSLOG_SOURCES: 'vbr01=Kommune A' })).toThrow(/address=tenant-slug/);
  });

  it('names every bad variable at once and never echoes a secret', () => {
    try {
      loadConfig({ DATABASE_URL: 'mysql://u:supersecret@h/db', PORT: 'eighty', ERNSTFALL_SANDBOX_PULL: 'sometimes', ERNSTFALL_BACKUP_ROOTS: 'relative/dir', ERNSTFALL_ROLES: 'api,cook' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      for (const name of ['DATABASE_URL', 'PORT', 'ERNSTFALL_SANDBOX_PULL', 'ERNSTFALL_BACKUP_ROOTS', 'ERNSTFALL_ROLES']) expect(problems).toContain(name);
      expect(problems).not.toContain('supersecret');
    }
  });

  it('reads secrets from *_FILE and reports an unreadable file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-cfg-'));
    writeFileSync(join(dir, 'token'), 'a-long-bootstrap-token-value\n');
    expect(loadConfig({ ...base, ERNSTFALL_BOOTSTRAP_TOKEN_FILE: join(dir, 'token') }).auth.bootstrapToken).toBe('a-long-bootstrap-token-value');
    expect(() => loadConfig({ ...base, ERNSTFALL_BOOTSTRAP_TOKEN_FILE: join(dir, 'missing') })).toThrow(/ERNSTFALL_BOOTSTRAP_TOKEN_FILE/);
  });

  it('requires DATABASE_URL', () => {
    expect(() => loadConfig({})).toThrow(/DATABASE_URL: required/);
  });

  it('refuses a bind-mounted backup with a remote engine (the path would be another machine\'s); local engines may bind', () => {
    expect(() => loadConfig({ ...base, ERNSTFALL_SANDBOX_TRANSFER: 'bind', DOCKER_HOST: 'tcp://10.0.0.9:2376' })).toThrow(/"bind" needs a local Docker engine/);
    expect(loadConfig({ ...base, ERNSTFALL_SANDBOX_TRANSFER: 'bind', DOCKER_HOST: 'unix:///var/run/docker.sock' }).sandbox.transfer).toBe('bind');
    expect(loadConfig({ ...base, DOCKER_HOST: 'tcp://10.0.0.9:2376' }).sandbox.transfer).toBe('auto');
  });
});
