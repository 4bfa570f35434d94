import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { TEST_TOKEN } from '../helpers/config.js';
import { freePort, startService, stopServices, type ServiceProcess } from '../helpers/processes.js';
import { seedRun } from '../helpers/seed.js';
import { faultDumps, faultEngine, faultPlan, faultPostgres, faultRedis, recordFigure, startFaultStack, type FaultEngine, type FaultPostgres, type FaultRedis, type FaultStack } from './kit.js';
import { until } from '../helpers/until.js';

/**
 * Issue 14, item 4: the API process is SIGKILLed while it generates the audit
 * report of a large tenant (a year of runs), once while it reads and verifies
 * the chain and once while it renders the PDF; meanwhile a restore test ends
 * and its worker hands the outcome over to the API (the only process holding
 * the key). Reports are not stored: they are built per request. A new API
 * process must serve a complete PDF whose verification data match the
 * ledger; no export is recorded that was not handed out; the run ends.
 */

const PLANS = 20;
const RUNS_PER_PLAN = 150;
const REPORT = '/api/v1/reports/audit?from=2025-01-01&to=2025-12-31';
const exec = promisify(execFile);

interface Fetched { complete: boolean; status?: number; body?: Buffer; error?: string; ms: number }

let pg: FaultPostgres;
let redis: FaultRedis;
let engine: FaultEngine;
let dumps: Awaited<ReturnType<typeof faultDumps>>;
let s: FaultStack | undefined;
let work: string;

beforeAll(async () => {
  [pg, redis, engine, dumps] = await Promise.all([faultPostgres(), faultRedis(), faultEngine(), faultDumps('report', { big: false })]);
  work = await mkdtemp(join(tmpdir(), 'ef-faults-report-'));
});
afterAll(async () => {
  await stopServices();
  await s?.close();
  await redis?.kill();
  await dumps?.remove();
  if (work) await rm(work, { recursive: true, force: true });
});

/** GET over real HTTP; `complete` only for a whole body (as long as content-length says). Kills `api` after `killAfterMs`. */
function fetchReport(port: number, path: string, kill?: { api: ServiceProcess; afterMs: number }): Promise<Fetched> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${TEST_TOKEN}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => resolve({ complete: false, status: res.statusCode, error: err.message, ms: Date.now() - t0 }));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const length = Number(res.headers['content-length'] ?? NaN);
        resolve({ complete: res.complete && body.length === length, status: res.statusCode, body, ms: Date.now() - t0 });
      });
    });
    req.on('error', (err) => resolve({ complete: false, error: err.message, ms: Date.now() - t0 }));
    req.end();
    if (kill) setTimeout(() => void kill.api.kill(), kill.afterMs);
  });
}

async function startApi(env: Record<string, string>): Promise<{ api: ServiceProcess; port: number; readySeconds: number }> {
  const port = await freePort();
  const t0 = Date.now();
  const api = startService(['api'], { ...env, PORT: String(port) });
  await until('the API to be ready', async () => {
    if (api.child.exitCode !== null) throw new Error(`the API exited: ${api.output()}`);
    // refused until it listens
    const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
    return r?.status === 200 ? true : undefined;
  }, 90_000, 200).catch((err: Error) => {
    throw new Error(`${err.message}; API output:\n${api.output()}`);
  });
  return { api, port, readySeconds: (Date.now() - t0) / 1000 };
}

/** pdfinfo accepts it; its text (pdftotext) holds the head of the chain it names. */
async function readPdf(body: Buffer): Promise<{ pages: number; text: string }> {
  const file = join(work, `report-${Date.now()}.pdf`);
  await writeFile(file, body);
  const info = await exec('pdfinfo', [file]);
  const text = await exec('pdftotext', ['-layout', file, '-']);
  return { pages: Number(/Pages:\s+(\d+)/.exec(info.stdout)?.[1] ?? 0), text: text.stdout };
}

describe('the API is killed (SIGKILL) while it generates an audit report', () => {
  it('no export is recorded that was not handed out; a new API serves a complete PDF matching the ledger; the handed-over run ends; the ledger verifies', { timeout: 420_000 }, async () => {
    s = await startFaultStack({ pg, redisUrl: redis.url, dockerHost: engine.host, backupRoot: dumps.dir, signer: false });
    // a year of runs: every plan tested about every 2.4 days, one in ten failed
    for (let p = 0; p < PLANS; p++) {
      await s.putPlan({ ...faultPlan(`system-${String(p).padStart(2, '0')}`, 'small.dump'), cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P7D', grace: 'P1D' } });
    }
    await s.c.db.updateTable('plans').set({ created_at: new Date('2024-12-01T00:00:00Z') }).execute();
    const t0 = Date.UTC(2025, 0, 1, 3);
    const step = (365 * 86_400_000) / RUNS_PER_PLAN;
    for (let i = 0; i < RUNS_PER_PLAN; i++) {
      for (let p = 0; p < PLANS; p++) {
        await seedRun(s, { planId: `system-${String(p).padStart(2, '0')}`, verdict: (i + p) % 10 === 0 ? 'failed' : 'passed', finishedAt: new Date(t0 + i * step + p * 60_000), rtoSeconds: 300 + ((i * 7 + p) % 600) });
      }
    }
    await s.putPlan(faultPlan('live', 'small.dump'));

    const delivered: { format: string; bytes: number }[] = [];
    const deliver = (f: Fetched, format: string) => {
      expect(f.complete, JSON.stringify({ ...f, body: undefined })).toBe(true);
      expect(f.status).toBe(200);
      delivered.push({ format, bytes: f.body!.length });
    };

    // the generation time, measured on a warm process: B = read, verify and aggregate (JSON), T = B + render (PDF)
    let a = await startApi(s.env);
    deliver(await fetchReport(a.port, REPORT), 'pdf');
    const json = await fetchReport(a.port, `${REPORT}&format=json`);
    deliver(json, 'json');
    const B = json.ms;
    const pdfRun = await fetchReport(a.port, REPORT);
    deliver(pdfRun, 'pdf');
    const T = pdfRun.ms;
    const pdfBytes = pdfRun.body!.length;
    expect(JSON.parse(json.body!.toString('utf8')).summary.runs).toBe(PLANS * RUNS_PER_PLAN);

    // a restore test whose outcome the worker hands over while no process holds the key
    const runId = await s.trigger('live');
    await s.waitForPhase(runId, 'restore', 90_000);

    const kills: { at: string; afterMs: number; outcome: string; readySeconds: number }[] = [];
    const outcome = (f: Fetched) => (f.complete ? 'delivered before the kill' : `cut (${f.error ?? f.status})`);
    // 1: while it reads and verifies the chain
    const cut1 = await fetchReport(a.port, REPORT, { api: a.api, afterMs: Math.round(B / 2) });
    await a.api.exited;
    if (cut1.complete) deliver(cut1, 'pdf');
    // the run is done in the sandbox and handed over, but nobody signs it: it stays running (not lost, not failed)
    await until('the worker to hand the outcome over', async () => {
      const o = await s!.c.db.selectFrom('run_outcomes').select('signed_at').where('run_id', '=', runId).executeTakeFirst();
      return o ? o : undefined;
    }, 120_000, 250);
    expect((await s.runRow(runId))?.status).toBe('running');
    const restarted = Date.now();
    a = await startApi(s.env);
    kills.push({ at: 'reading and verifying the chain', afterMs: Math.round(B / 2), outcome: outcome(cut1), readySeconds: a.readySeconds });
    const run = await s.waitForRun(runId, 60_000);
    const signedSeconds = (Date.now() - restarted) / 1000;
    expect(run.verdict).toBe('passed');

    // 2: while it renders the PDF, between build and build + render measured again on this process (the load of the machine changes)
    const json2 = await fetchReport(a.port, `${REPORT}&format=json`);
    deliver(json2, 'json');
    const pdf2 = await fetchReport(a.port, REPORT);
    deliver(pdf2, 'pdf');
    const at2 = Math.round(json2.ms + (pdf2.ms - json2.ms) / 2);
    const cut2 = await fetchReport(a.port, REPORT, { api: a.api, afterMs: at2 });
    const k2 = Date.now();
    await a.api.exited;
    if (cut2.complete) deliver(cut2, 'pdf');
    a = await startApi(s.env);
    kills.push({ at: 'rendering the PDF', afterMs: at2, outcome: outcome(cut2), readySeconds: a.readySeconds });
    // at least one kill fell into the generation (else the test proved nothing)
    expect([cut1, cut2].some((f) => !f.complete), JSON.stringify(kills)).toBe(true);

    // the new process serves a complete, valid PDF whose verification data are the ledger's
    const final = await fetchReport(a.port, REPORT);
    const recovered = (Date.now() - k2) / 1000;
    deliver(final, 'pdf');
    const { pages, text } = await readPdf(final.body!);
    expect(pages).toBeGreaterThan(1);
    expect(final.body!.subarray(0, 5).toString()).toBe('%PDF-');
    expect(final.body!.subarray(-8).toString()).toContain('%%EOF');
    const flat = text.replace(/\s+/g, '');
    const data = JSON.parse(json.body!.toString('utf8')) as { ledger: { headSeq: number } };
    const heads = await s.c.db.selectFrom('ledger_records').select(['seq', 'hash']).where('tenant_id', '=', DEFAULT_TENANT_ID).orderBy('seq', 'desc').limit(10).execute();
    // the report names the head as it was built: the record just before its own export record (the newest)
    const named = heads.find((h) => flat.includes(h.hash));
    expect(named, `none of the newest hashes in the PDF:\n${text.slice(0, 2000)}`).toBeDefined();
    expect(named!.seq).toBe(heads[0]!.seq - 1);
    expect(named!.seq).toBeGreaterThan(data.ledger.headSeq);
    expect(text).toMatch(/Nachweiskette geprüft\s+ja/);

    // every export recorded was handed out, and every one handed out was recorded
    const audit = await s.request('GET', '/api/v1/audit?action=export.audit-report&limit=100');
    expect(audit.status).toBe(200);
    const recorded = (audit.body.items as { details: { format: string } }[]).map((e) => e.details.format).sort();
    expect(recorded).toEqual(delivered.map((d) => d.format).sort());

    // nothing stays running, no sandbox is left, the chain verifies
    const running = await s.c.db.selectFrom('runs').select('id').where('status', '!=', 'finished').execute();
    expect(running).toEqual([]);
    await until('no sandbox left', async () => ((await s!.sandboxesLeft()) === 0 ? true : undefined), 30_000);
    s.c.ledger.forgetVerified();
    const ledger = await s.c.ledger.verify(DEFAULT_TENANT_ID, { full: true });
    expect(ledger, JSON.stringify(ledger)).toMatchObject({ ok: true });
    await recordFigure({
      fault: `API SIGKILLed while generating the audit report of ${PLANS * RUNS_PER_PLAN} runs (${pages} pages, ${Math.round(pdfBytes / 1024)} KiB; build ${B}/${json2.ms} ms, build + render ${T}/${pdf2.ms} ms)`,
      recoveredSeconds: recovered,
      runs: `handed over while no API lived: stayed running, ${run.verdict} ${signedSeconds.toFixed(1)} s after a new API was started`,
      containersLeft: await s.sandboxesLeft(),
      ledger: `ok, ${ledger.records} records`,
      detail: `${kills.map((k) => `kill ${k.afterMs} ms into the request (${k.at}): ${k.outcome}, new API ready in ${k.readySeconds.toFixed(1)} s`).join('; ')}; ${delivered.length} reports handed out, ${recorded.length} exports recorded`,
    });
    await a.api.stop();
  });
});
