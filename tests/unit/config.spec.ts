import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, loadEnvFile } from '../../services/config.js';

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

  it('the calendar horizon and the self-backup: periods of at least a day, a time of day, a keep count', () => {
    expect(loadConfig({ ...base, ERNSTFALL_CALENDAR_HORIZON: 'P1Y' }).http.calendarHorizon).toBe('P1Y');
    for (const bad of ['P', 'P0D', '90D', 'PT6H']) expect(() => loadConfig({ ...base, ERNSTFALL_CALENDAR_HORIZON: bad }), bad).toThrow(/ERNSTFALL_CALENDAR_HORIZON/);
    expect(loadConfig(base).selfBackup).toBeUndefined();
    expect(loadConfig({ ...base, ERNSTFALL_SELF_BACKUP_DIR: '/srv/backups/ernstfall' }).selfBackup).toEqual({ dir: '/srv/backups/ernstfall', keep: 7, time: '02:30' });
    expect(() => loadConfig({ ...base, ERNSTFALL_SELF_BACKUP_DIR: '/x', ERNSTFALL_SELF_BACKUP_TIME: '25:00' })).toThrow(/ERNSTFALL_SELF_BACKUP_TIME/);
    expect(() => loadConfig({ ...base, ERNSTFALL_SELF_BACKUP_DIR: '/x', ERNSTFALL_SELF_BACKUP_KEEP: '0' })).toThrow(/ERNSTFALL_SELF_BACKUP_KEEP/);
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

describe('configuration precedence (issue #14 item 3): explicit environment beats the generated env file', () => {
  /** A state folder whose env file is what `npm run setup` writes: the secrets as *_FILE. */
  function state(extra = '') {
    const dir = mkdtempSync(join(tmpdir(), 'ef-env-'));
    writeFileSync(join(dir, 'file-token'), 'token-from-the-env-files-secret\n');
    writeFileSync(join(dir, 'env'), [
      '# Written by deploy/setup.sh',
      'DATABASE_URL=postgres://app:pw@127.0.0.1:5432/ernstfall',
      `ERNSTFALL_BOOTSTRAP_TOKEN_FILE=${join(dir, 'file-token')}`,
      'ERNSTFALL_SANDBOX_PULL=never',
      'REDIS_URL=redis://127.0.0.1:6379',
      extra,
    ].join('\n'));
    return dir;
  }
  const load = (env: Record<string, string | undefined>) => {
    loadEnvFile(env);
    return env;
  };

  it('without anything explicit, the env file applies (the _FILE secret is read)', () => {
    const env = load({ ERNSTFALL_STATE_DIR: state() });
    expect(loadConfig(env).auth.bootstrapToken).toBe('token-from-the-env-files-secret');
  });

  it('an explicit plain variable beats the file\'s plain variable', () => {
    const env = load({ ERNSTFALL_STATE_DIR: state(), ERNSTFALL_SANDBOX_PULL: 'missing', REDIS_URL: 'redis://10.0.0.7:6379' });
    const c = loadConfig(env);
    expect(c.sandbox.pull).toBe('missing');
    expect(c.redis.url).toBe('redis://10.0.0.7:6379');
  });

  it('an explicit X beats the file\'s X_FILE (ERNSTFALL_BOOTSTRAP_TOKEN=… npm start after setup)', () => {
    const env = load({ ERNSTFALL_STATE_DIR: state(), ERNSTFALL_BOOTSTRAP_TOKEN: 'explicit-token-0123456789' });
    expect(env.ERNSTFALL_BOOTSTRAP_TOKEN_FILE).toBeUndefined();
    expect(loadConfig(env).auth.bootstrapToken).toBe('explicit-token-0123456789');
  });

  it('an explicit X_FILE beats the file\'s X, and the file\'s X_FILE', () => {
    const dir = state('ERNSTFALL_METRICS_TOKEN=metrics-token-from-the-file');
    writeFileSync(join(dir, 'other-token'), 'explicit-token-from-a-file\n');
    writeFileSync(join(dir, 'metrics'), 'metrics-token-from-explicit-file\n');
    const env = load({ ERNSTFALL_STATE_DIR: dir, ERNSTFALL_BOOTSTRAP_TOKEN_FILE: join(dir, 'other-token'), ERNSTFALL_METRICS_TOKEN_FILE: join(dir, 'metrics') });
    expect(env.ERNSTFALL_METRICS_TOKEN).toBeUndefined();
    const c = loadConfig(env);
    expect(c.auth.bootstrapToken).toBe('explicit-token-from-a-file');
    expect(c.metrics.token).toBe('metrics-token-from-explicit-file');
  });

  it('an explicitly empty X switches the file\'s secret off', () => {
    const env = load({ ERNSTFALL_STATE_DIR: state(), ERNSTFALL_BOOTSTRAP_TOKEN: '' });
    expect(loadConfig(env).auth.bootstrapToken).toBeUndefined();
  });

  it('X and X_FILE both set explicitly is a start-up error naming both, without echoing the secret', () => {
    const dir = state();
    const env = load({ ERNSTFALL_STATE_DIR: dir, ERNSTFALL_BOOTSTRAP_TOKEN: 'explicit-token-0123456789', ERNSTFALL_BOOTSTRAP_TOKEN_FILE: join(dir, 'file-token') });
    try {
      loadConfig(env);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const text = (err as ConfigError).message;
      expect(text).toMatch(/ERNSTFALL_BOOTSTRAP_TOKEN and ERNSTFALL_BOOTSTRAP_TOKEN_FILE are both set/);
      expect(text).not.toContain('explicit-token-0123456789');
    }
    expect(() => loadConfig({ ...base, DATABASE_URL_FILE: join(dir, 'file-token') })).toThrow(/DATABASE_URL and DATABASE_URL_FILE are both set/);
  });

  it('loading the env file twice (tools call it more than once) changes nothing', () => {
    const env = load({ ERNSTFALL_STATE_DIR: state(), ERNSTFALL_BOOTSTRAP_TOKEN: 'explicit-token-0123456789' });
    loadEnvFile(env);
    expect(env.ERNSTFALL_BOOTSTRAP_TOKEN_FILE).toBeUndefined();
    const fromFile = load({ ERNSTFALL_STATE_DIR: state() });
    loadEnvFile(fromFile);
    expect(loadConfig(fromFile).auth.bootstrapToken).toBe('token-from-the-env-files-secret');
  });
});

