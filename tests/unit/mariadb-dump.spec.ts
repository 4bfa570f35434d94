import { describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { completedAtUtc, createMariaScanner, inspectMariaDump } from '../../workers/drivers/mariadb/dump.js';
import { chooseMariaVersion } from '../../workers/drivers/mariadb/index.js';

const HEAD = '-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n-- Host: localhost    Database: gewerbe\n' +
  '-- ------------------------------------------------------\n-- Server version\t10.11.6-MariaDB-0+deb12u1\n\n';
const TAIL = '/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n\n-- Dump completed on 2026-12-05  2:30:01\n';

describe('mariadb dumps', () => {
  it('reads flavor, versions and database from the header; refuses what is no dump', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ef-md-'));
    await writeFile(join(dir, 'a.sql'), `${HEAD}INSERT INTO t VALUES\n(1);\n${TAIL}`);
    expect(await inspectMariaDump(join(dir, 'a.sql'))).toEqual({ format: 'plain', flavor: 'mariadb', dumpVersion: '10.11.6-MariaDB', serverVersion: '10.11.6', headerDatabase: 'gewerbe' });
    await writeFile(join(dir, 'b.sql.gz'), gzipSync(`-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n-- Server version\t8.0.36\n${TAIL}`));
    expect(await inspectMariaDump(join(dir, 'b.sql.gz'))).toMatchObject({ format: 'plain-gzip', flavor: 'mysql', serverVersion: '8.0.36' });
    // MariaDB 11.x: the client's sandbox-mode line first, the version joined to the client's
    await writeFile(join(dir, 'd.sql'), '/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.20-11.8.9-MariaDB, for debian-linux-gnu (x86_64)\n--\n' +
      `-- Host: localhost    Database: gewerbe\n-- Server version\t11.8.9-MariaDB-0+deb13u1 from Debian\n${TAIL}`);
    expect(await inspectMariaDump(join(dir, 'd.sql'))).toEqual({ format: 'plain', flavor: 'mariadb', dumpVersion: '11.8.9-MariaDB', serverVersion: '11.8.9', headerDatabase: 'gewerbe' });
    await writeFile(join(dir, 'c.sql'), 'SELECT 1;\n');
    await expect(inspectMariaDump(join(dir, 'c.sql'))).rejects.toMatchObject({ code: 'ARCHIVE_UNREADABLE' });
  });

  it('the scan sees the closing line and its time, the USE lines, and nothing of the rows', async () => {
    const s = createMariaScanner('plain');
    // fed in pieces that cut lines in the middle, as a stream does
    const text = `${HEAD}USE \`gewerbe\`;\nINSERT INTO t VALUES\n('-- Dump completed on 1999-01-01  0:00:00'),\n('x');\n${TAIL}`;
    for (let i = 0; i < text.length; i += 7) await s.write(Buffer.from(text.slice(i, i + 7), 'latin1'));
    const r = await s.end();
    expect(r).toMatchObject({ complete: true, databases: ['gewerbe'], completedAt: { year: 2026, month: 12, day: 5, hour: 2, minute: 30, second: 1 } });
    expect(completedAtUtc(r, 'Europe/Berlin')!.toISOString()).toBe('2026-12-05T01:30:01.000Z');
    const cut = createMariaScanner('plain');
    await cut.write(Buffer.from(`${HEAD}INSERT INTO t VALUES\n(1),\n(2`));
    expect(await cut.end()).toMatchObject({ complete: false, databases: [] });
  });

  it('chooses the smallest image at least the dump\'s version; MySQL dumps the newest; a pin must exist', () => {
    const info = (v: string, flavor: 'mariadb' | 'mysql' = 'mariadb') => ({ format: 'plain' as const, flavor, serverVersion: v });
    expect(chooseMariaVersion(info('10.6.18'), ['11.8', '10.11'])).toBe('10.11');
    expect(chooseMariaVersion(info('11.4.2'), ['11.8', '10.11'])).toBe('11.8');
    expect(chooseMariaVersion(info('8.0.36', 'mysql'), ['10.11', '11.8'])).toBe('11.8');
    expect(() => chooseMariaVersion(info('11.8.1'), ['10.11'])).toThrow(/newer than every sandbox image/);
    expect(() => chooseMariaVersion(info('10.6.1'), ['10.11'], '11.4')).toThrow(/only for 10.11/);
  });
});
