import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { UserRepository } from '../../db/repositories/user.repository.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { TEST_TOKEN } from '../helpers/config.js';
import { join } from 'node:path';
import { touchNow } from '../fixtures/test-clock.js';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, hostPsql, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';

/**
 * Issue #10: silent damage caught with nothing in the plan. One healthy
 * database; each broken dump differs from it in exactly one respect.
 */
const SRC = 'ef_builtin_src';
const BOOKED = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
const VARIANTS: Record<string, string> = {
  stale: "UPDATE meldung SET am = am - interval '400 days'",
  sequence: "SELECT setval('meldung_id_seq', 5, true)",
  // baselines with one object more than the healthy dump, which then lacks it
  'with-index': 'CREATE INDEX meldung_am ON meldung (am)',
  'with-table': 'CREATE TABLE archiv (id int PRIMARY KEY); INSERT INTO archiv SELECT generate_series(1, 10)',
  'rows-gone': 'DELETE FROM meldung WHERE id % 100 <> 0',
  // about 90 MB restored: above the exact-count size, so estimate and freshness come from ANALYZE's statistics
  // `booked` has an index that leads with it: its newest value is read exactly, through the index
  big: `CREATE TABLE journal AS SELECT g AS id, timestamptz '${new Date().toISOString()}' - g * interval '1 second' AS at, timestamptz '${BOOKED.toISOString()}' - (g - 1) * interval '1 second' AS booked,
    repeat('x', 500) AS pad FROM generate_series(1, 150000) g; CREATE INDEX journal_booked ON journal (booked)`,
  'no-dates': 'ALTER TABLE meldung DROP COLUMN am; ALTER TABLE einwohner DROP COLUMN geburtsdatum',
};
let h: Harness;
let dir: string;
const dumps: Record<string, string> = {};
const codes = (run: { findings: { code: string }[] }) => run.findings.map((f) => f.code);
const builtin = (run: { restore: { builtin: { name: string; status: string }[] } }) =>
  Object.fromEntries(run.restore.builtin.map((b) => [b.name, b.status]));
const BUILTIN_CODES = ['DATA_STALE', 'DATA_STALE_SUSPECTED', 'SEQUENCE_BEHIND', 'SCHEMA_DRIFT', 'VOLUME_DROP', 'BUILTIN_CHECKS_FAILED'];

beforeAll(async () => {
  dir = await makeTempDir('ef-builtin-');
  await makeHostDatabase(SRC, { rows: 3000 });
  dumps.healthy = await dumpHost(SRC, 'custom', join(dir, 'healthy.dump'));
  for (const [name, sql] of Object.entries(VARIANTS)) {
    const db = `${SRC}_${name.replace(/-/g, '_')}`;
    await hostPsql(`DROP DATABASE IF EXISTS ${db}`);
    await hostPsql(`CREATE DATABASE ${db} TEMPLATE ${SRC}`);
    await hostPsql(sql, db);
    dumps[name] = await dumpHost(db, 'custom', join(dir, `${name}.dump`));
    await dropHostDatabase(db);
  }
  h = await startHarness({ backupRoot: dir });
});
afterAll(async () => {
  await h?.close();
  await dropHostDatabase(SRC);
  await rm(dir, { recursive: true, force: true });
});

/** Runs the plan against one of the dumps, always at the same path (as a nightly job overwrites its dump). */
async function runWith(planId: string, dump: string, over: Record<string, unknown> = {}) {
  const path = join(dir, `${planId}.current.dump`);
  await copyFile(dumps[dump]!, path);
  await touchNow(path); // the copy's file time is the kernel's; the tests' clock may be moved (npm run test:date-ahead)
  await h.putPlan(pgPlan(planId, path, { checks: [{ tableRows: { table: 'einwohner', min: 1000 } }], ...over }));
  return h.waitForRun(await h.trigger(planId));
}

describe('built-in checks on every database restore', () => {
  it('a healthy dump, twice: passed, none of them fires; the first run records the baseline, the second compares', async () => {
    const first = await runWith('healthy', 'healthy');
    expect(first.verdict, JSON.stringify(first.findings)).toBe('passed');
    expect(codes(first).filter((c: string) => BUILTIN_CODES.includes(c))).toEqual([]);
    expect(builtin(first)).toEqual({ freshness: 'passed', sequences: 'passed', schema: 'info', volume: 'info' });
    expect(first.restore.profile.tables.map((t: { name: string }) => t.name)).toEqual(['public.einwohner', 'public.meldung']);
    expect(first.restore.baselineRunId).toBeNull();
    const second = await runWith('healthy', 'healthy');
    expect(second.verdict, JSON.stringify(second.findings)).toBe('passed');
    expect(codes(second).filter((c: string) => BUILTIN_CODES.includes(c))).toEqual([]);
    expect(builtin(second)).toEqual({ freshness: 'passed', sequences: 'passed', schema: 'passed', volume: 'passed' });
    expect(second.restore.baselineRunId).toBe(first.id);
    // names and numbers only: no row data in the evidence
    expect(JSON.stringify(second.restore)).not.toMatch(/Müller|Hauptstra|Zuzug|Umzug/);
  });

  it('data a year older than the dump: a warning when ernstfall detects it, a failure when the plan names the column', async () => {
    const detected = await runWith('stale', 'stale');
    expect(detected.verdict).toBe('passed');
    expect(codes(detected)).toContain('DATA_STALE_SUSPECTED');
    const named = await runWith('stale-named', 'stale', { builtin: { freshness: { table: 'public.meldung', column: 'am' } } });
    expect(named.verdict).toBe('failed');
    expect(codes(named)).toContain('DATA_STALE');
  });

  it('a sequence set below the highest id of its table: SEQUENCE_BEHIND, failed; shown on the run page and in the protocol PDF', async () => {
    const run = await runWith('sequence', 'sequence');
    expect(run.verdict).toBe('failed');
    expect(run.findings.find((f: { code: string }) => f.code === 'SEQUENCE_BEHIND').message).toContain('public.meldung_id_seq next 6');

    const pdf = await h.app.inject({ method: 'GET', url: `/api/v1/runs/${run.id}/protocol.pdf`, headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    expect(pdf.statusCode).toBe(200);
    const file = join(dir, 'protocol.pdf');
    await writeFile(file, pdf.rawPayload);
    const text = execFileSync('pdftotext', ['-layout', file, '-']).toString();
    expect(text).toContain('Eingebaute Prüfungen');
    // the table row: label, state ("nicht bestanden" wraps in its column), what was found
    expect(text).toMatch(/Sequenzen\s+nicht\s+1 von 1 zurück/);

    const user = await new UserRepository(h.tdb.db, h.c.clock).insert({ tenant_id: DEFAULT_TENANT_ID, email: 'leitung@musterstadt.de', name: 'IT-Leitung', role: 'auditor', created_by: 'test' });
    const session = await h.c.sessions.start(user, { stage: 'full', method: 'password' });
    const page = await h.app.inject({ method: 'GET', url: `/runs/${run.id}`, headers: { cookie: `ef_session=${session.token}` } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Eingebaute Prüfungen');
    expect(page.body).toMatch(/Sequenzen<\/th>\s*<td><span class="check check-failed">/);
  });

  it('an index lost since the last passed run: SCHEMA_DRIFT naming it, failed', async () => {
    expect((await runWith('drift-index', 'with-index')).verdict).toBe('passed'); // the baseline, with the index
    const run = await runWith('drift-index', 'healthy');
    expect(run.verdict).toBe('failed');
    expect(run.findings.find((f: { code: string }) => f.code === 'SCHEMA_DRIFT').message).toContain('index public.meldung_am');
  });

  it('an intended change is accepted once as the new baseline (reviewer, reason, ledger); the next run compares with it', async () => {
    const failing = (await h.request('GET', '/api/v1/runs?planId=drift-index&limit=1')).body.items[0];
    expect(failing.findings.map((f: { code: string }) => f.code)).toContain('SCHEMA_DRIFT');
    const before = (await h.request('GET', '/api/v1/plans/drift-index/baseline')).body.baseline;
    expect(before).toMatchObject({ source: 'passed' });
    // refused: too short a reason, a run of another plan, a run that never got a profile
    expect((await h.request('POST', '/api/v1/plans/drift-index/baseline', { runId: failing.id, reason: 'ok' })).status).toBe(400);
    const other = (await h.request('GET', '/api/v1/runs?planId=healthy&limit=1')).body.items[0];
    expect((await h.request('POST', '/api/v1/plans/drift-index/baseline', { runId: other.id, reason: 'falscher Plan' })).status).toBe(404);
    const operator = (await h.request('POST', '/api/v1/tokens', { name: 'Otto', role: 'operator' })).body.token;
    expect((await h.request('POST', '/api/v1/plans/drift-index/baseline', { runId: failing.id, reason: 'Index entfernt' }, { authorization: `Bearer ${operator}` })).status).toBe(403);

    const res = await h.request('POST', '/api/v1/plans/drift-index/baseline', { runId: failing.id, reason: 'Index meldung_am bewusst entfernt (Ticket 4711)' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ runId: failing.id, source: 'accepted', acceptedBy: 'bootstrap-token', reason: 'Index meldung_am bewusst entfernt (Ticket 4711)' });
    expect((await h.request('GET', '/api/v1/plans/drift-index/baseline')).body.baseline).toMatchObject({ runId: failing.id, source: 'accepted' });
    // the plan page shows it, with who and why
    const viewer = await new UserRepository(h.tdb.db, h.c.clock).insert({ tenant_id: DEFAULT_TENANT_ID, email: 'pruefer@musterstadt.de', name: 'Prüfer', role: 'auditor', created_by: 'test' });
    const session = await h.c.sessions.start(viewer, { stage: 'full', method: 'password' });
    const page = await h.app.inject({ method: 'GET', url: '/plans/drift-index', headers: { cookie: `ef_session=${session.token}` } });
    expect(page.body).toContain('Basis der eingebauten Prüfungen');
    expect(page.body).toContain(`href="/runs/${failing.id}"`);
    expect(page.body).toContain('übernommen von bootstrap-token: Index meldung_am bewusst entfernt (Ticket 4711)');
    const rec = await h.tdb.db.selectFrom('ledger_records').select(['kind', 'canonical']).where('subject_id', '=', 'plan:drift-index').execute();
    expect(rec.map((r) => JSON.parse(r.canonical).payload.action)).toContain('plan.baseline.accepted');

    const next = await runWith('drift-index', 'healthy');
    expect(next.verdict, JSON.stringify(next.findings)).toBe('passed');
    expect(next.restore).toMatchObject({ baselineRunId: failing.id, baselineSource: 'accepted' });
    expect(next.findings.map((f: { code: string }) => f.code)).not.toContain('SCHEMA_DRIFT');
    expect((await h.request('GET', '/api/v1/evidence/verify')).body).toMatchObject({ ok: true });
  });

  it('a table the plan does not name, lost: SCHEMA_DRIFT, failed; a new one is information only', async () => {
    expect((await runWith('drift-table', 'healthy')).verdict).toBe('passed');
    const added = await runWith('drift-table', 'with-table');
    expect(added.verdict, JSON.stringify(added.findings)).toBe('passed');
    expect(added.findings.find((f: { code: string }) => f.code === 'SCHEMA_ADDED').message).toContain('table public.archiv');
    const lost = await runWith('drift-table', 'healthy'); // the last passed run had archiv
    expect(lost.verdict).toBe('failed');
    expect(lost.findings.find((f: { code: string }) => f.code === 'SCHEMA_DRIFT').message).toContain('table public.archiv');
  });

  it('99 % of one table\'s rows gone (a table the plan does not check): VOLUME_DROP, failed', async () => {
    expect((await runWith('volume', 'healthy')).verdict).toBe('passed');
    const run = await runWith('volume', 'rows-gone');
    expect(run.verdict).toBe('failed');
    expect(run.findings.find((f: { code: string }) => f.code === 'VOLUME_DROP').message).toContain('public.meldung 1500 -> 15');
  });

  it('a big table (over 64 MiB): an estimated row count; an indexed date read exactly; the statistics only when the exact values do not answer', async () => {
    const run = await runWith('big', 'big');
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    const journal = run.restore.profile.tables.find((t: { name: string }) => t.name === 'public.journal');
    expect(journal.exact).toBe(false);
    expect(journal.rows).toBeGreaterThan(140_000);
    expect(journal.rows).toBeLessThan(160_000);
    const col = (r: typeof run, c: string) => r.restore.profile.freshness.find((f: { table: string; column: string }) => f.table === 'public.journal' && f.column === c);
    // through the index, to the second
    expect(col(run, 'booked')).toMatchObject({ exact: true, newest: BOOKED.toISOString().replace('.000Z', 'Z') });
    // an exact value within the RPO answers freshness: the unindexed column is not analysed
    expect(col(run, 'at')).toMatchObject({ exact: false, newest: null });
    expect(run.restore.builtinMs).toBeGreaterThan(0);

    // the plan names the unindexed column: it is read from the statistics of an ANALYZE
    const named = await runWith('big', 'big', { builtin: { freshness: { table: 'public.journal', column: 'at' } } });
    expect(named.verdict, JSON.stringify(named.findings)).toBe('passed');
    expect(col(named, 'at').exact).toBe(false);
    expect(Date.now() - Date.parse(col(named, 'at').newest)).toBeLessThan(6 * 3600_000); // the sample's newest, close to the real one
  });

  it('no date or time column at all: said as information, never a false alarm', async () => {
    const run = await runWith('no-dates', 'no-dates');
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(codes(run)).toContain('DATA_FRESHNESS_UNKNOWN');
    expect(codes(run)).not.toContain('DATA_STALE_SUSPECTED');
  });

  it('switched off in the plan with a reason: skipped, the reason recorded, nothing raised', async () => {
    const run = await runWith('seq-off', 'sequence', { builtin: { sequences: { off: 'IDs vergibt die Anwendung selbst' } } });
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(codes(run)).not.toContain('SEQUENCE_BEHIND');
    expect(run.restore.builtin.find((b: { name: string }) => b.name === 'sequences')).toMatchObject({ status: 'skipped', message: 'abgeschaltet: IDs vergibt die Anwendung selbst' });
    const bad = await h.request('PUT', '/api/v1/plans/seq-off', pgPlan('seq-off', 'x.dump', { builtin: { sequences: { off: '' } } }));
    expect(bad.status).toBe(400);
  });

  it('the plan names the data\'s age by a query: stale fails, fresh passes, a broken query is an error, never a pass', async () => {
    const fresh = await runWith('fresh-sql', 'healthy', { builtin: { freshness: { sql: 'select max(am) from meldung' } } });
    expect(fresh.verdict, JSON.stringify(fresh.findings)).toBe('passed');
    expect(fresh.restore.builtin.find((b: { name: string }) => b.name === 'freshness')).toMatchObject({ status: 'passed', actual: expect.stringContaining('builtin.freshness.sql') });
    const stale = await runWith('fresh-sql', 'stale', { builtin: { freshness: { sql: 'select max(am) from meldung' } } });
    expect(stale.verdict).toBe('failed');
    expect(stale.findings.find((f: { code: string }) => f.code === 'DATA_STALE')).toMatchObject({ severity: 'failure' });
    const broken = await runWith('fresh-sql', 'healthy', { builtin: { freshness: { sql: 'select max(am) from meldungen' } } });
    expect(broken.verdict).toBe('failed');
    expect(broken.findings.find((f: { code: string }) => f.code === 'CHECK_ERROR').message).toContain('meldungen');
  });

  it('every built-in check off: each recorded as skipped with its reason, nothing read from the restore', async () => {
    const reason = 'Testsystem ohne echte Daten';
    const run = await runWith('all-off', 'sequence', { builtin: { freshness: { off: reason }, sequences: { off: reason }, schema: { off: reason }, volume: { off: reason } } });
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(builtin(run)).toEqual({ freshness: 'skipped', sequences: 'skipped', schema: 'skipped', volume: 'skipped' });
    expect(run.restore.profile).toBeUndefined();
    expect(codes(run).filter((c) => BUILTIN_CODES.includes(c))).toEqual([]);
  });
});
