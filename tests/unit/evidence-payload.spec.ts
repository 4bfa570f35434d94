import { generateKeyPairSync, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RunRow } from '../../db/schema.js';
import type { RestorePlan } from '../../services/plans/plan.types.js';
import { keyIdOf, sealRecord, type Envelope } from '../../services/evidence/ledger-format.js';
import { measureChangedPayload, measureCreatedPayload, reviewRecordPayload, runRecordPayload } from '../../services/evidence/evidence-payload.js';

/**
 * The evidence format, pinned. What a record signs must never change by
 * accident (an API field renamed, a column added): these are the exact bytes
 * of sample records. A deliberate change of the format changes the golden
 * files (tests/fixtures/evidence/) and the hashes below, in the same commit,
 * with docs/decisions/006-evidence-ledger.md.
 */
const golden = (name: string) => readFileSync(new URL(`../fixtures/evidence/${name}`, import.meta.url), 'utf8').trimEnd();

const TENANT = '00000000-0000-4000-8000-000000000001';
const key = generateKeyPairSync('ed25519');
const KEY_ID = keyIdOf(key.publicKey);

const row = {
  id: '6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f', tenant_id: TENANT, plan_id: 'einwohnermeldewesen',
  plan_version_hash: 'a'.repeat(64), status: 'finished', verdict: 'failed', trigger: 'schedule', triggered_by: 'scheduler',
  slot: new Date('2026-12-07T02:00:00.000Z'), queued_at: new Date('2026-12-07T02:00:00.123Z'), started_at: new Date('2026-12-07T02:00:01.500Z'),
  finished_at: new Date('2026-12-07T02:07:42.250Z'), heartbeat_at: new Date('2026-12-07T02:07:40.000Z'), worker_id: 'worker-a-1234-abcdef',
  attempts: 1, cancel_requested_at: null,
  phases: [
    { name: 'fetch', status: 'ok', startedAt: '2026-12-07T02:00:01.500Z', durationMs: 1200 },
    { name: 'restore', status: 'failed', startedAt: '2026-12-07T02:00:02.700Z', durationMs: 455000 },
  ],
  checks: [{ name: 'Einwohner vorhanden', kind: 'sql', status: 'failed', expected: '> 1000', actual: '0', message: 'zu wenige Zeilen' }],
  findings: [{ code: 'CHECK_FAILED', severity: 'failure', message: 'Einwohner vorhanden: 0' }],
  rto: { targetSeconds: 3600, measuredSeconds: 461, met: true }, rpo: { targetSeconds: 93600, backupAgeSeconds: 7200, met: true },
  backup: { path: '/backups/ewo/ewo-2026-12-07.dump', sizeBytes: 1048576, sha256: 'b'.repeat(64), createdAt: '2026-12-07T00:00:00.000Z', format: 'custom' },
  sandbox: { image: 'ernstfall/sandbox-postgres:16', memory: '1g', cpus: 1, teardown: { verified: true } },
  restore: { tool: 'pg_restore', exitCode: 0, tables: 42 },
  origin: 'ernstfall', external_id: null, pool: 'dmz',
} as RunRow;

const plan = {
  id: 'einwohnermeldewesen', title: 'Einwohnermeldewesen (OK.EWO)', system: { id: 'ewo', name: 'OK.EWO', process: 'Meldewesen', protectionNeed: 'hoch' },
  targets: { rtoSeconds: 3600, rpoSeconds: 93600 }, cadence: { schedule: '0 2 * * *', timezone: 'Europe/Berlin', requiredEvery: 'P1D', grace: 'PT6H' },
  controls: ['DER.4.A14', 'CON.3.A15'], source: { type: 'file', path: '/backups/ewo/ewo-*.dump' },
  restore: { driver: 'postgres', database: 'ewo' },
  checks: [{ name: 'Einwohner vorhanden', kind: 'sql', sql: 'select count(*) from einwohner', expect: '> 1000', canary: 'Musterfrau-4711' }],
} as unknown as RestorePlan;

function seal(seq: number, kind: Envelope['kind'], subjectId: string, payload: Record<string, unknown>) {
  return sealRecord({
    v: 1, tenantId: TENANT, seq, kind, subjectId, createdAt: '2026-12-07T02:07:43.000Z', retainUntil: '2036-12-07',
    prevHash: 'c'.repeat(64), ledgerId: '1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5', payload,
  }, key.privateKey, KEY_ID);
}

describe('the signed evidence payload (golden records)', () => {
  it('a finished run: the run, the plan version it ran (never a canary value), the worker that reported it', () => {
    const rec = seal(7, 'run', row.id, runRecordPayload(row, plan, 'worker-a-1234-abcdef'));
    expect(rec.canonical).toBe(golden('run-record.json'));
    expect(rec.hash).toBe('9f64f1e1842044cac3d45f20a02d4baadf6472b11c090741c1c5ca34ed75cd64');
    expect(rec.canonical).not.toContain('Musterfrau-4711');
    expect(verify(null, Buffer.from(rec.canonical), key.publicKey, Buffer.from(rec.signature, 'base64'))).toBe(true);
  });

  it('a result another tool reported: the external plan snapshot, its external id, no pool for the default one', () => {
    const external = { ...plan, restore: undefined, kind: 'external', external: { tool: 'veeam', veeamJob: 'EWO SureBackup' } } as unknown as RestorePlan;
    const rec = seal(8, 'run', row.id, runRecordPayload({ ...row, pool: 'default', origin: 'external', external_id: 'veeam-42' }, external));
    expect(rec.canonical).toBe(golden('external-run-record.json'));
    expect(rec.hash).toBe('7157d1bc8fcf59b98e12d144510820ccf4e1025b85fcb4e0ea7ba406af651d11');
  });

  it('a review and the measures it opened and closed', () => {
    const review = seal(9, 'review', row.id, reviewRecordPayload({
      reviewId: '7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d', runId: row.id, planId: row.plan_id, runVerdict: 'failed', runRecordHash: 'd'.repeat(64),
      decision: 'approved-with-deviations', comment: 'Prüfung der Tabelle einwohner nachholen', reviewer: 'pruefer@musterstadt.example',
      measureIds: ['0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e'],
    }));
    const created = seal(10, 'measure', '0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e', measureCreatedPayload({
      measureId: '0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e', planId: row.plan_id, runId: row.id, reviewId: '7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d',
      title: 'Ladejob der Tabelle einwohner reparieren', owner: 'Team Fachverfahren', dueDate: '2026-12-31', by: 'pruefer@musterstadt.example',
    }));
    const closed = seal(11, 'measure', '0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e', measureChangedPayload({
      measureId: '0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e', action: 'closed', planId: row.plan_id, runId: row.id, title: 'Ladejob der Tabelle einwohner reparieren',
      owner: 'Team Fachverfahren', dueDate: '2026-12-31', status: 'done', closedByRunId: '9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b', by: 'betrieb@musterstadt.example',
    }));
    expect([review.canonical, created.canonical, closed.canonical].join('\n')).toBe(golden('review-and-measures.jsonl'));
    expect([review.hash, created.hash, closed.hash]).toEqual(['80cfe914cd06598229c2e29948df7e7066dce6d6d22a0a5a52310663f7ecf7f7', 'f005e217ff1b6baf8cb49f6cfe8201fcd5b7cb1c1f206b9d5ac9d4d107a8f8e4', '09e1681be34cb5a8a59802ab0d4f4529f003f65cff3e2a9dff9719d62981c709']);
  });
});
