import { afterAll, describe, expect, it } from 'vitest';
import { formatPlanIssues, parsePlanText } from '../../services/plans/plan.parser.js';
import type { PlanIssue, RestorePlan } from '../../services/plans/plan.types.js';
import { parseMoment } from '../../services/plans/pitr.plan.js';
import { labelTime, parseBackupLabel, segmentName, segmentNumber, walChain } from '../../workers/drivers/postgres/wal-chain.js';
import { inspectBaseBackup, parseRecoveryLog, recoveryConf } from '../../workers/drivers/postgres/pitr.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';

const plan = (source: string, restore: string) => `id: ewo-pitr
title: EWO PITR
targets: { rto: 4h, rpo: 1h }
source: ${source}
restore: ${restore}
checks:
  - { name: Einwohner, sql: "select count(*) from einwohner", expect: ">= 1" }
`;
const BASE = '{ type: basebackup, path: /srv/backups/pg/base, wal: /srv/backups/pg/wal }';

function ok(text: string): RestorePlan {
  const r = parsePlanText(text);
  if ('issues' in r) throw new Error(formatPlanIssues(r.issues).join('\n'));
  return r.plan;
}
function issues(text: string): PlanIssue[] {
  const r = parsePlanText(text, { file: 'restore-plans/pitr.yaml' });
  if (!('issues' in r)) throw new Error('expected issues, the plan was accepted');
  return r.issues;
}

describe('plan: point-in-time recovery', () => {
  it('a base backup with a moment, latest, or beforeLsn', () => {
    const p = ok(plan(BASE, "{ driver: postgres, database: ewo, pitr: { target: '2026-12-05T22:00:00+01:00' } }"));
    expect(p.source).toEqual({ type: 'basebackup', path: '/srv/backups/pg/base', wal: '/srv/backups/pg/wal' });
    expect(p.restore).toEqual({ driver: 'postgres', database: 'ewo', pitr: { target: { kind: 'time', text: '2026-12-05T22:00:00+01:00', iso: '2026-12-05T21:00:00.000Z' } } });
    expect(ok(plan(BASE, '{ driver: postgres, database: ewo, pitr: { target: latest } }')).restore).toMatchObject({ pitr: { target: { kind: 'latest' } } });
    expect(ok(plan(BASE, "{ driver: postgres, database: ewo, pitr: { target: { beforeLsn: '0/3000060' } } }")).restore).toMatchObject({ pitr: { target: { kind: 'beforeLsn', lsn: '0/3000060' } } });
    const m = ok(plan('{ type: basebackup, path: /srv/backups/pg, match: "base-*", wal: /srv/backups/pg/wal, settle: 2m }', '{ driver: postgres, database: ewo, pitr: { target: latest } }'));
    expect(m.source).toEqual({ type: 'basebackup', path: '/srv/backups/pg', match: 'base-*', wal: '/srv/backups/pg/wal', settleSeconds: 120 });
  });

  it('refuses invalid combinations and targets with file, line and path', () => {
    const cases: [string, string, string, RegExp][] = [
      [BASE, '{ driver: postgres, database: ewo }', 'restore.pitr', /needs "pitr: \{target/],
      [BASE, '{ driver: files, pitr: { target: latest } }', 'restore.driver', /postgres driver/],
      ['{ type: file, path: /srv/x.dump }', '{ driver: postgres, database: ewo, pitr: { target: latest } }', 'restore.pitr', /source type basebackup/],
      [BASE, '{ driver: postgres, database: ewo, jobs: 2, pitr: { target: latest } }', 'restore.jobs', /replayed/],
      [BASE, "{ driver: postgres, database: ewo, pitr: { target: '2026-12-05 22:00:00' } }", 'restore.pitr.target', /no offset/],
      [BASE, "{ driver: postgres, database: ewo, pitr: { target: '2026-02-30T22:00:00Z' } }", 'restore.pitr.target', /moment with its offset/],
      [BASE, '{ driver: postgres, database: ewo, pitr: { target: yesterday } }', 'restore.pitr.target', /latest/],
      [BASE, "{ driver: postgres, database: ewo, pitr: { target: { beforeLsn: '0/zz' } } }", 'restore.pitr.target.beforeLsn', /LSN/],
      [BASE, '{ driver: postgres, database: ewo, pitr: { target: { afterLsn: 1 } } }', 'restore.pitr.target.afterLsn', /unknown key/],
      [BASE, '{ driver: postgres, database: ewo, pitr: {} }', 'restore.pitr.target', /missing required key "target"/],
      ['{ type: basebackup, path: /srv/backups/pg/base }', '{ driver: postgres, database: ewo, pitr: { target: latest } }', 'source.wal', /missing required key "wal"/],
      ['{ type: basebackup, path: /srv/b, wal: ../wal }', '{ driver: postgres, database: ewo, pitr: { target: latest } }', 'source.wal', /without "\.\."/],
      ['{ type: basebackup, path: /srv/b, wal: /srv/b }', '{ driver: postgres, database: ewo, pitr: { target: latest } }', 'source.wal', /not the base backup/],
    ];
    for (const [source, restore, path, message] of cases) {
      const found = issues(plan(source, restore));
      const hit = found.find((i) => i.path === path);
      expect(hit, `${source} ${restore}: ${JSON.stringify(found)}`).toBeDefined();
      expect(hit!.message).toMatch(message);
      expect(hit!.line).toBeGreaterThanOrEqual(4);
      expect(formatPlanIssues(found, 'restore-plans/pitr.yaml')[0]).toMatch(/^restore-plans\/pitr\.yaml:\d+/);
    }
  });

  it('refuses services next to pitr (not combined yet), naming the line; services with a dump restore stay accepted', () => {
    const services = '\nservices:\n  - { name: app, image: ernstfall/test-app:1, probe: { tcp: { port: 8080 } } }\n';
    const found = issues(plan(BASE, "{ driver: postgres, database: ewo, pitr: { target: latest } }") + services);
    expect(found).toContainEqual(expect.objectContaining({ path: 'restore.pitr', message: expect.stringMatching(/"services" and "pitr" are not supported in one plan/) }));
    expect(found.find((i) => i.path === 'restore.pitr')?.line).toBeGreaterThan(0);
    expect(ok(plan('{ path: /srv/backups/pg/ewo.dump }', '{ driver: postgres, database: ewo }') + services).services).toHaveLength(1);
  });

  it('the WAL archive must lie inside the tenant\'s roots', () => {
    const r = parsePlanText(plan('{ type: basebackup, path: /srv/backups/pg/base, wal: /var/lib/wal }', '{ driver: postgres, database: ewo, pitr: { target: latest } }'),
      { policy: { tenant: 'musterstadt', roots: ['/srv/backups'], allowedImages: [], max: { memoryBytes: 2 ** 34, cpus: 8, pids: 4096, timeoutSeconds: 86_400, diskBytes: 2 ** 40 }, pools: ['default'] } });
    expect('issues' in r && r.issues.find((i) => i.path === 'source.wal')?.message).toMatch(/outside the backup roots of tenant musterstadt/);
  });

  it('moments: offsets and Z, never a wall time alone', () => {
    expect(parseMoment('2026-12-05T22:00:00+01:00')).toBe('2026-12-05T21:00:00.000Z');
    expect(parseMoment('2026-12-05 22:00:00.123456Z')).toBe('2026-12-05T22:00:00.123Z');
    expect(parseMoment('2026-12-05T22:00+0100')).toBe('2026-12-05T21:00:00.000Z');
    expect(parseMoment('2026-12-05T22:00:00')).toBeUndefined();
    expect(parseMoment('2026-13-05T22:00:00Z')).toBeUndefined();
  });
});

describe('WAL chain and labels', () => {
  const SEG = 16 * 2 ** 20;
  const names = (tli: number, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => segmentName(tli, BigInt(from + i), SEG));

  it('segment names and numbers round-trip across the 8-digit halves', () => {
    expect(segmentName(1, 255n, SEG)).toBe('0000000100000000000000FF');
    expect(segmentName(1, 256n, SEG)).toBe('000000010000000100000000');
    expect(segmentNumber('000000010000000100000000', SEG)).toBe(256n);
  });

  it('a complete archive has no gap; a removed segment is named', () => {
    const all = names(1, 2, 9);
    expect(walChain({ names: all, histories: new Map(), segBytes: SEG, startSegment: all[0]!, startTimeline: 1 })).toEqual({ timelines: [1], newest: all.at(-1) });
    const gap = all.filter((n) => n !== all[3]);
    expect(walChain({ names: gap, histories: new Map(), segBytes: SEG, startSegment: all[0]!, startTimeline: 1 }).missing).toBe(all[3]);
  });

  it('follows a timeline switch by its history file, and names a history that does not continue the base', () => {
    // timeline 2 left timeline 1 in segment 5
    const archive = [...names(1, 2, 5), ...names(2, 5, 8)];
    const histories = new Map([[2, '1\t0/5000100\tno recovery target specified\n']]);
    expect(walChain({ names: archive, histories, segBytes: SEG, startSegment: archive[0]!, startTimeline: 1 })).toEqual({ timelines: [1, 2], newest: segmentName(2, 8n, SEG) });
    const missing = archive.filter((n) => n !== segmentName(2, 7n, SEG));
    expect(walChain({ names: missing, histories, segBytes: SEG, startSegment: archive[0]!, startTimeline: 1 }).missing).toBe(segmentName(2, 7n, SEG));
    const foreign = new Map([[3, '2\t0/1000000\tno recovery target specified\n']]);
    expect(walChain({ names: archive, histories: foreign, segBytes: SEG, startSegment: archive[0]!, startTimeline: 1 }).foreignTimeline).toBe(3);
  });

  it('reads a backup label and its zone', () => {
    const l = parseBackupLabel('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nSTART TIME: 2026-12-07 13:42:43 CET\nSTART TIMELINE: 1\n');
    expect(l).toMatchObject({ startLsn: '0/2000028', startSegment: '000000010000000000000002', startTimeline: 1, startTime: new Date('2026-12-07T12:42:43Z') });
    expect(labelTime('2026-07-07 13:42:43 CEST')).toEqual(new Date('2026-07-07T11:42:43Z'));
    expect(labelTime('2026-07-07 13:42:43 +0530')).toEqual(new Date('2026-07-07T08:12:43Z'));
    expect(labelTime('2026-07-07 13:42:43 XYZT')).toBeUndefined();
  });

  it('reads what PostgreSQL 15 printed during a replay (its own words, from a real run)', () => {
    const log = [
      '2026-12-07 13:43:11.675 UTC [29] LOG:  consistent recovery state reached at 0/2000100',
      '2026-12-07 13:43:11.683 UTC [29] LOG:  recovery stopping before commit of transaction 727, time 2026-12-07 13:42:47.770205+00',
      '2026-12-07 13:43:11.684 UTC [29] LOG:  redo done at 0/4000488 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.34 s',
      '2026-12-07 13:43:11.685 UTC [29] LOG:  last completed transaction was at log time 2026-12-07 13:42:44.593082+00',
      '2026-12-07 13:43:12.040 UTC [52] FATAL:  the database system is not accepting connections',
      '2026-12-07 13:43:12.207 UTC [29] LOG:  selected new timeline ID: 2',
    ].join('\n');
    expect(parseRecoveryLog(log)).toEqual({
      consistentAt: '0/2000100', stoppedBefore: { what: 'before commit of transaction 727', time: '2026-12-07 13:42:47.770205+00' },
      redoDoneAt: '0/4000488', lastCompletedAt: '2026-12-07 13:42:44.593082+00', newTimeline: 2,
    });
    expect(parseRecoveryLog('2026-12-07 13:44:06.516 UTC [30] FATAL:  recovery ended before configured recovery target was reached').fatal).toBe('recovery ended before configured recovery target was reached');
  });

  it('the settings are ernstfall\'s: a fixed restore_command, the target, no archiving', () => {
    const conf = recoveryConf({ kind: 'beforeLsn', lsn: '0/3000060' }, '/backup/wal');
    expect(conf).toContain("restore_command = 'grep -qxF -- \"%f\" /var/lib/postgresql/ef-pitr-conf/wal.list && cp --no-preserve=mode -- \"/backup/wal/%f\" \"%p\"'");
    expect(conf).toContain("recovery_target_lsn = '0/3000060'\nrecovery_target_inclusive = off");
    expect(conf).toContain('archive_mode = off');
    expect(conf).toContain("recovery_target_action = 'promote'");
    expect(recoveryConf({ kind: 'time', text: 'x', iso: '2026-12-05T21:00:00.000Z' }, '/w')).toContain("recovery_target_time = '2026-12-05 21:00:00.000+00'");
    expect(recoveryConf({ kind: 'latest' }, '/w')).not.toMatch(/recovery_target_(time|lsn) =/);
  });
});

describe('base backup layout (read on the worker)', () => {
  const tarOf = async (files: Record<string, string>) => {
    const pack = tarStream.pack();
    for (const [name, content] of Object.entries(files)) pack.entry({ name }, content);
    pack.finalize();
    const parts: Buffer[] = [];
    for await (const c of pack) parts.push(c as Buffer);
    return Buffer.concat(parts);
  };
  const made: string[] = [];
  afterAll(async () => {
    for (const d of made) await rm(d, { recursive: true, force: true });
  });
  const folder = async (files: Record<string, string | Buffer>) => {
    const d = await mkdtemp(join(tmpdir(), 'ef-base-'));
    made.push(d);
    for (const [n, c] of Object.entries(files)) await writeFile(join(d, n), c);
    return { path: d, realPath: d, isDirectory: true, mtime: new Date(0) };
  };

  it('tar format (also gzip): the major from PG_VERSION inside base.tar; plain format from the folder', async () => {
    const tar = await tarOf({ backup_label: 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n', PG_VERSION: '15\n', 'base/1/1259': 'x' });
    expect(await inspectBaseBackup(await folder({ 'base.tar': tar, 'pg_wal.tar': await tarOf({}) }))).toEqual({ format: 'tar', base: 'base.tar', walTar: 'pg_wal.tar', major: 15 });
    expect(await inspectBaseBackup(await folder({ 'base.tar.gz': gzipSync(tar) }))).toEqual({ format: 'tar', base: 'base.tar.gz', major: 15 });
    expect(await inspectBaseBackup(await folder({ 'base.tar.zst': 'zstd' }))).toEqual({ format: 'tar', base: 'base.tar.zst', major: null });
    expect(await inspectBaseBackup(await folder({ PG_VERSION: '17\n', backup_label: 'x' }))).toEqual({ format: 'plain', major: 17 });
  });

  it('refuses what is no base backup, and tablespaces', async () => {
    await expect(inspectBaseBackup(await folder({ 'ewo.dump': 'PGDMP' }))).rejects.toThrow(/no pg_basebackup folder/);
    await expect(inspectBaseBackup(await folder({ 'base.tar': await tarOf({ PG_VERSION: '15\n' }), '16385.tar': 'x' }))).rejects.toThrow(/tablespace/);
    await expect(inspectBaseBackup(await folder({ PG_VERSION: '15\n', backup_label: 'x', tablespace_map: '16385 /srv/ts' }))).rejects.toThrow(/tablespaces/);
    await expect(inspectBaseBackup({ path: '/x/base.tar', realPath: '/x/base.tar', isDirectory: false, mtime: new Date(0) })).rejects.toThrow(/is a folder/);
  });
});
