/**
 * The main job, end to end on a bundled sample: make a realistic PostgreSQL
 * backup, run one restore test through the real HTTP API, queue, worker and
 * Docker sandbox, and print the result. Exit code 0 only if the test passed.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { loadConfig, loadEnvFile } from '../services/config.js';
import { createLogger } from '../services/logger.js';
import { createContainer } from '../services/container.js';
import { appDeps, buildApp } from '../services/api/app.js';
import { startWorker } from '../workers/main.js';
import { formatDuration } from '../services/util/duration.js';
import type { RunJson } from '../services/runs/run.view.js';

const en = process.argv.includes('--lang=en') || process.env.ERNSTFALL_LANG === 'en';
const t = (de: string, english: string) => (en ? english : de);
const SOURCE_DB = 'ernstfall_demo_source';
const CANARY = 'ernstfall-demo-kanarienvogel-2026';

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err.trim().slice(0, 500)}`))));
  });
}

/** A sample Meldewesen database on the local PostgreSQL, dumped in custom format into the backup root. */
async function makeSampleBackup(ownerUrl: string, backupDir: string): Promise<string> {
  const admin = new pg.Client({ connectionString: ownerUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${SOURCE_DB} with (force)`);
  await admin.query(`create database ${SOURCE_DB}`);
  await admin.end();
  const u = new URL(ownerUrl);
  u.pathname = `/${SOURCE_DB}`;
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  await c.query(`
    create table einwohner (id integer primary key, vorname text not null, nachname text not null, ort text not null, geburtsdatum date not null);
    insert into einwohner
      select i, (array['Jürgen','Käthe','Sören','Özlem','Björn','Anneliese','Jörg','Gülsen','Lena','Mehmet'])[1 + i % 10],
             (array['Müller','Schäfer','Größer','Köhler','Weiß','Böhm','Hübner','Krüger','Straßer','Jäger'])[1 + (i / 10) % 10],
             (array['Musterstadt','Beispielheim','Altdorf','Neustadt a. d. Weinstraße'])[1 + (i / 100) % 4],
             date '1930-01-01' + (i * 37) % 32000
      from generate_series(1, 52000) as i;
    -- a live register: the newest Meldung was written just before the backup (the built-in freshness check reads it)
    create table meldung (id bigserial primary key, einwohner_id integer not null references einwohner(id), art text not null, am timestamptz not null);
    insert into meldung (einwohner_id, art, am)
      select 1 + (i * 13) % 52000, (array['Zuzug','Umzug','Wegzug'])[1 + i % 3], now() - (26000 - i) * interval '17 minutes'
      from generate_series(1, 26000) as i;
    create index meldung_einwohner on meldung (einwohner_id);
    create table ef_canary (token text not null);
    insert into ef_canary values ('${CANARY}');
  `);
  await c.end();
  await mkdir(backupDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
  const file = join(backupDir, `ewo-${stamp}.dump`);
  // the password reaches pg_dump through its environment, never its argv
  await sh('pg_dump', ['-Fc', '-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username), '-f', file, SOURCE_DB],
    { ...process.env, PGPASSWORD: decodeURIComponent(u.password), TZ: 'Europe/Berlin' });
  return file;
}

async function main(): Promise<number> {
  loadEnvFile(process.env, { owner: true });
  const config = loadConfig({ ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' });
  if (!config.database.ownerUrl || !config.auth.bootstrapToken || config.backupRoots.length === 0) {
    console.error('demo: DATABASE_OWNER_URL, a bootstrap token and ERNSTFALL_BACKUP_ROOTS are needed; run npm run setup');
    return 2;
  }
  const log = createLogger(config.logLevel);
  console.log(t('1/4 Beispiel-Datensicherung erzeugen (PostgreSQL, 52.000 Einwohner) …', '1/4 Creating a sample backup (PostgreSQL, 52,000 residents) …'));
  const file = await makeSampleBackup(config.database.ownerUrl, join(config.backupRoots[0]!, 'demo'));
  console.log(`    ${file}`);

  const c = createContainer(config, log);
  await c.ledger.init();
  const sync = await c.plans.syncFromDir(config.plansDir);
  if (!sync.loaded.includes('demo-ewo.yaml')) {
    console.error(`demo: restore-plans/demo-ewo.yaml did not load: ${JSON.stringify(sync.invalid)}`);
    return 2;
  }
  const worker = await startWorker({ config, db: c.db, redis: c.redis, queue: c.queue, docker: c.docker, log, clock: c.clock });
  const signer = c.outcomeSigner();
  await signer.start();
  const app = await buildApp(appDeps(c, ['api', 'worker']));
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const headers = { authorization: `Bearer ${config.auth.bootstrapToken}` };
  try {
    // the source waits for the file to settle (the plan says 2s) so a backup still being written is never picked
    await new Promise((r) => setTimeout(r, 2500));
    console.log(t(`2/4 Wiederherstellungstest über die API starten (${address}) …`, `2/4 Starting the restore test through the API (${address}) …`));
    const post = await fetch(`${address}/api/v1/plans/demo-ewo/runs`, { method: 'POST', headers });
    const created = (await post.json()) as { id: string; message?: string };
    if (post.status !== 202) throw new Error(`POST runs: ${post.status} ${created.message ?? ''}`);
    console.log(t(`3/4 Lauf ${created.id}: Sicherung prüfen, Sandbox starten, wiederherstellen, verifizieren …`, `3/4 Run ${created.id}: fetch, sandbox, restore, verify …`));
    let run: RunJson;
    for (;;) {
      run = (await (await fetch(`${address}/api/v1/runs/${created.id}`, { headers })).json()) as RunJson;
      if (run.status === 'finished') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    printRun(run);
    const ev = (await (await fetch(`${address}/api/v1/runs/${created.id}/evidence`, { headers })).json()) as {
      record?: { seq: number; hash: string; keyId: string }; verified?: { hash: boolean; signature: boolean; trustedKey: boolean };
    };
    if (ev.record && ev.verified) {
      const ok = ev.verified.hash && ev.verified.signature && ev.verified.trustedKey;
      console.log(`  ${t('Nachweis', 'Evidence')}: ${t('Datensatz', 'record')} #${ev.record.seq}, SHA-256 ${ev.record.hash.slice(0, 16)}…, ${t('Schlüssel', 'key')} ${ev.record.keyId} → ${ok ? t('Signatur gültig', 'signature valid') : t('UNGÜLTIG', 'INVALID')}`);
      console.log(`  ${t('Protokoll (PDF)', 'Protocol (PDF)')}: GET /api/v1/runs/${created.id}/protocol.pdf\n`);
    }
    return run.verdict === 'passed' ? 0 : 1;
  } finally {
    await app.close();
    await worker.close();
    await signer.stop();
    await c.close();
  }
}

function printRun(run: RunJson): void {
  const backup = run.backup as { path?: string; format?: string; sizeBytes?: number; sha256?: string } | null;
  const sandbox = run.sandbox as { image?: string; network?: string } | null;
  const phases = run.phases as { name: string; durationMs: number; status: string }[];
  const checks = run.checks as { name: string; status: string; expected: string; actual: string | null }[];
  const findings = run.findings as { code: string; severity: string; message: string }[];
  const rto = run.rto as { measuredSeconds: number | null; targetSeconds: number; met: boolean | null } | null;
  const rpo = run.rpo as { backupAgeSeconds: number | null; targetSeconds: number; met: boolean | null } | null;
  const verdicts: Record<string, string> = en
    ? { passed: 'PASSED', failed: 'FAILED', error: 'ERROR (not verified)', cancelled: 'CANCELLED' }
    : { passed: 'BESTANDEN', failed: 'NICHT BESTANDEN', error: 'FEHLER (nicht verifiziert)', cancelled: 'ABGEBROCHEN' };
  console.log(t('4/4 Ergebnis', '4/4 Result'));
  console.log(`\n  ${t('Urteil', 'Verdict')}: ${verdicts[run.verdict ?? ''] ?? run.verdict}`);
  console.log(`  ${t('Sicherung', 'Backup')}: ${backup?.path} (${backup?.format}, ${Math.round((backup?.sizeBytes ?? 0) / 1024)} KiB, SHA-256 ${String(backup?.sha256).slice(0, 16)}…)`);
  console.log(`  Sandbox: ${sandbox?.image ?? '-'} (${t('Netzwerk', 'network')}: ${sandbox?.network ?? '-'})`);
  console.log(`\n  ${t('Phasen', 'Phases')}:`);
  for (const p of phases) console.log(`    ${p.name.padEnd(10)} ${formatDuration(p.durationMs / 1000).padStart(10)}  ${p.status}`);
  console.log(`\n  ${t('Prüfungen', 'Checks')}:`);
  for (const ch of checks) console.log(`    [${ch.status === 'passed' ? 'ok' : ch.status}] ${ch.name}: ${t('erwartet', 'expected')} ${ch.expected}, ${t('erhalten', 'actual')} ${ch.actual ?? '-'}`);
  console.log(`\n  RTO: ${rto?.measuredSeconds != null ? formatDuration(rto.measuredSeconds) : '-'} ${t('gemessen', 'measured')} / ${formatDuration(rto?.targetSeconds ?? 0)} ${t('Ziel', 'target')} → ${rto?.met === true ? t('eingehalten', 'met') : rto?.met === false ? t('überschritten', 'exceeded') : t('nicht messbar', 'not measured')}`);
  console.log(`  RPO: ${t('Alter der Sicherung', 'backup age')} ${rpo?.backupAgeSeconds != null ? formatDuration(rpo.backupAgeSeconds) : '-'} / ${formatDuration(rpo?.targetSeconds ?? 0)} → ${rpo?.met === true ? t('eingehalten', 'met') : rpo?.met === false ? t('überschritten', 'exceeded') : t('nicht messbar', 'not measured')}`);
  if (findings.length) {
    console.log(`\n  ${t('Befunde', 'Findings')}:`);
    for (const f of findings) console.log(`    ${f.code} (${f.severity}): ${f.message}`);
  }
  console.log('');
}

main().then((code) => process.exit(code), (err: Error) => {
  console.error(`demo: ${err.message}`);
  process.exit(2);
});
