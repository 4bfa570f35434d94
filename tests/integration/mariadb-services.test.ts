import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dockerLeftovers, startHarness, type Harness } from '../helpers/harness.js';
import { makeTempDir } from '../fixtures/host-dumps.js';
import { clockSkewMs, touchNow } from '../fixtures/test-clock.js';
import { mariadbDump } from '../fixtures/mariadb-dumps.js';

/**
 * Application groups of a MariaDB restore (issue #15, decisions/021): the
 * server listens on the run's internal network, a login made for the run
 * reads and writes nothing else. The service here is the MariaDB sandbox
 * image itself (it has the mariadb client), probed with a command that asks
 * the restored database over the network as that login.
 */
const IMAGE = 'ernstfall/sandbox-mariadb:10.11';
let h: Harness;
let dir: string;

let skewMs = 0;

const DB_ENV = { DBHOST: '${db.host}', DBPORT: '${db.port}', DBUSER: '${db.user}', MYSQL_PWD: '${db.password}', DBNAME: '${db.name}' };
/** Healthy when the restored table has 250 rows, asked over the network; a second command proves the login cannot write. */
const ask = (sql: string, want: string) => ['bash', '-c', `test "$(mariadb --no-defaults -h "$DBHOST" -P "$DBPORT" -u "$DBUSER" -N -B -e "${sql}" "$DBNAME")" = "${want}"`];
const plan = (id: string, services: unknown[]) => ({
  id, title: `MariaDB group ${id}`, targets: { rto: '1h', rpo: '26h' }, source: { type: 'file', path: 'gewerbe.sql' },
  restore: { driver: 'mariadb', database: 'gewerbe' }, sandbox: { memory: '1g', cpus: 1, timeout: '5m' },
  checks: [{ name: 'Betriebe', sql: 'select count(*) from betrieb', expect: '== 250' }], services,
});

beforeAll(async () => {
  skewMs = await clockSkewMs();
  dir = await makeTempDir('ef-maria-services-');
  await writeFile(join(dir, 'gewerbe.sql'), mariadbDump(`CREATE DATABASE gewerbe; USE gewerbe;
CREATE TABLE betrieb (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) NOT NULL);
INSERT INTO betrieb (name) SELECT CONCAT('Betrieb ', seq) FROM seq_1_to_250;`, 'gewerbe', { image: IMAGE, skewMs }));
  await touchNow(dir);
  h = await startHarness({ backupRoot: dir, env: { ERNSTFALL_SANDBOX_IMAGES: IMAGE } });
}, 120_000);
afterAll(async () => {
  await h?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('application groups of a MariaDB restore', () => {
  it('the app reads the restored database over the run\'s network with the run\'s login, which cannot write: passed', async () => {
    await h.putPlan(plan('maria-group-ok', [
      { name: 'app', image: IMAGE, env: DB_ENV, command: ['sleep', '600'], probe: { command: ask('select count(*) from betrieb', '250'), deadline: '30s' } },
      { name: 'guard', image: IMAGE, env: DB_ENV, command: ['sleep', '600'], probe: { command: ['bash', '-c', '! mariadb --no-defaults -h "$DBHOST" -P "$DBPORT" -u "$DBUSER" -e "delete from betrieb" "$DBNAME" 2>/dev/null'], deadline: '30s' } },
    ]));
    const run = await h.waitForRun(await h.trigger('maria-group-ok'), 240_000);
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.restore.endpoint).toEqual({ host: 'db', port: 3306, user: 'ernstfall_app', database: 'gewerbe' });
    expect(run.sandbox.network).toBe('internal');
    expect(run.checks[0].status).toBe('passed');
    expect(JSON.stringify(run)).not.toMatch(/MYSQL_PWD=|password"/i);
    expect(await dockerLeftovers(h)).toEqual({ containers: 0, networks: 0, volumes: 0 });
  }, 300_000);

  it('an app that needs a table the dump lacks fails (SERVICE_UNHEALTHY)', async () => {
    await h.putPlan(plan('maria-group-missing', [
      { name: 'app', image: IMAGE, env: DB_ENV, command: ['sleep', '600'], probe: { command: ask('select count(*) from gewerbeamt', '1'), deadline: '10s' } },
    ]));
    const run = await h.waitForRun(await h.trigger('maria-group-missing'), 240_000);
    expect(run.verdict).toBe('failed');
    expect(run.findings.map((f: { code: string }) => f.code)).toContain('SERVICE_UNHEALTHY');
    expect(await dockerLeftovers(h)).toEqual({ containers: 0, networks: 0, volumes: 0 });
  }, 300_000);

  it('without services the server still listens on no network', async () => {
    await h.putPlan({ ...plan('maria-no-group', []), services: undefined });
    const run = await h.waitForRun(await h.trigger('maria-no-group'), 240_000);
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.sandbox.network).toBe('none');
  }, 300_000);
});
