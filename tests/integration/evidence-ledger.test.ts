import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, sign } from 'node:crypto';
import pg from 'pg';
import { sql } from 'kysely';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { hostPsql } from '../fixtures/host-dumps.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { repoRoot } from '../../services/config.js';
import { rotateSigningKey } from '../../services/evidence/signing-key.js';

let h: Harness;
const T = DEFAULT_TENANT_ID;
const ids: string[] = [];

/** As the PostgreSQL superuser, bypassing the append-only trigger the way an attacker with full access could. */
const asSuperuser = (statement: string) => hostPsql(`set session_replication_role = replica; ${statement}`, h.tdb.name);

async function verify() {
  return (await h.request('GET', '/api/v1/evidence/verify')).body;
}

/** Runs `tamper`, checks what verification says, then puts the original rows back. */
async function tampered(tamper: string, seqs: number[]) {
  const saved = await h.tdb.db.selectFrom('ledger_records').selectAll().where('seq', 'in', seqs).execute();
  await asSuperuser(tamper);
  try {
    return await verify();
  } finally {
    await asSuperuser(`delete from ledger_records where tenant_id = '${T}' and seq in (${seqs.join(',')})`);
    for (const r of saved) {
      await asSuperuser(`insert into ledger_records values ('${r.tenant_id}', ${r.seq}, '${r.kind}', '${r.subject_id}', $ef$${r.canonical}$ef$, '${r.hash}', '${r.signature}', '${r.key_id}', '${r.created_at.toISOString()}', '${r.retain_until}')`);
    }
    expect((await verify()).ok).toBe(true);
  }
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  // through the service, not PUT: a PUT is audited ('plan.changed'), and these tests count on seq 1–10 being the runs
  await h.c.plans.put(T, 'ledger-plan', JSON.stringify(pgPlan('ledger-plan', 'x.dump')), 'json');
  const base = Date.UTC(2026, 5, 1);
  const verdicts = ['passed', 'failed', 'passed', 'error', 'passed', 'cancelled', 'passed', 'failed', 'passed', 'passed'] as const;
  for (const [i, v] of verdicts.entries()) ids.push(await seedRun(h, { planId: 'ledger-plan', verdict: v, finishedAt: new Date(base + i * 86_400_000) }));
});
afterAll(async () => {
  await h?.close();
});

describe('the ledger', () => {
  it('holds one signed, chained record per finished run, and the healthy chain verifies', async () => {
    const v = await verify();
    expect(v).toMatchObject({ ok: true, records: 10, headSeq: 10, firstBroken: null });
    const ev = await h.request('GET', `/api/v1/runs/${ids[1]}/evidence`);
    expect(ev.status).toBe(200);
    expect(ev.body.verified).toEqual({ hash: true, signature: true, trustedKey: true });
    expect(ev.body.envelope).toMatchObject({ v: 1, seq: 2, kind: 'run', subjectId: ids[1] });
    expect(ev.body.envelope.payload.run.verdict).toBe('failed');
    expect(ev.body.envelope.payload.plan.version).toMatch(/^[0-9a-f]{64}$/);
    expect(ev.body.envelope.prevHash).toBe((await h.request('GET', `/api/v1/runs/${ids[0]}/evidence`)).body.record.hash);
    expect(ev.body.envelope.retainUntil).toMatch(/^20(3[5-9])-/); // ten years by default
  });

  it('cannot be changed by the app role, nor by the owner role (trigger)', async () => {
    await expect(sql`update ledger_records set kind = 'x'`.execute(h.tdb.db)).rejects.toThrow(/permission denied/);
    await expect(sql`delete from ledger_records`.execute(h.tdb.db)).rejects.toThrow(/permission denied/);
    const owner = new pg.Client({ connectionString: h.tdb.ownerUrl });
    await owner.connect();
    await expect(owner.query('delete from ledger_records where seq = 2')).rejects.toThrow(/append-only/);
    await expect(owner.query(`update ledger_records set canonical = '{}' where seq = 2`)).rejects.toThrow(/append-only/);
    await expect(owner.query('truncate ledger_records')).rejects.toThrow(/append-only/);
    await owner.end();
  });

  it('detects a field changed directly in the database: the exact record', async () => {
    const v = await tampered(`update ledger_records set canonical = replace(canonical, '"verdict":"failed"', '"verdict":"passed"') where seq = 8`, [8]);
    expect(v.ok).toBe(false);
    expect(v.firstBroken).toMatchObject({ seq: 8, reason: 'hash-mismatch' });
  });

  it('detects a deleted failed run', async () => {
    const v = await tampered(`delete from ledger_records where seq = 2`, [2]);
    expect(v.ok).toBe(false);
    // named by the missing record itself: seq 2 is gone
    expect(v.firstBroken).toMatchObject({ seq: 2, reason: 'seq-gap' });
  });

  it('detects two records swapped', async () => {
    const v = await tampered(`
      update ledger_records set seq = -4 where seq = 4;
      update ledger_records set seq = 4 where seq = 5;
      update ledger_records set seq = 5 where seq = -4`, [4, 5]);
    expect(v.ok).toBe(false);
    expect(v.firstBroken.seq).toBe(4);
  });

  it('detects an altered signature', async () => {
    const v = await tampered(`update ledger_records set signature = translate(signature, 'ABCabc', 'BCAbca') where seq = 6`, [6]);
    expect(v.firstBroken).toMatchObject({ seq: 6, reason: 'bad-signature' });
  });

  it('detects a record signed with a foreign key', async () => {
    const rec = await h.tdb.db.selectFrom('ledger_records').selectAll().where('seq', '=', 7).executeTakeFirstOrThrow();
    const foreign = generateKeyPairSync('ed25519');
    const sig = sign(null, Buffer.from(rec.canonical), foreign.privateKey).toString('base64');
    const v = await tampered(`update ledger_records set signature = '${sig}', key_id = 'f0f0f0f0f0f0f0f0' where seq = 7`, [7]);
    expect(v.firstBroken).toMatchObject({ seq: 7, reason: 'unknown-key' });
  });

  it('detects the newest records deleted, through the checkpoint outside the database', async () => {
    const v = await tampered(`delete from ledger_records where seq in (9, 10)`, [9, 10]);
    expect(v.ok).toBe(false);
    expect(v.firstBroken).toMatchObject({ seq: 9, reason: 'missing-after-checkpoint' });
  });
});

describe('keys, bundles, retention', () => {
  it('exports a bundle that the offline CLI verifies without database or server', async () => {
    const res = await h.request('GET', '/api/v1/evidence/bundle');
    expect(res.status).toBe(200);
    const dir = mkdtempSync(join(tmpdir(), 'ef-bundle-'));
    const file = join(dir, 'bundle.json');
    writeFileSync(file, JSON.stringify(res.body));
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'services/evidence/verify-cli.ts'), file, '--trust-bundle-keys'], { cwd: repoRoot, env: { PATH: process.env.PATH } }).toString();
    expect(out).toMatch(/10/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps verifying across a key rotation, and the new key signs from then on', async () => {
    const before = (await h.request('GET', '/api/v1/evidence/keys')).body.items.find((k: { current: boolean }) => k.current).keyId;
    rotateSigningKey(h.config.evidence.signingKeyFile, h.config.evidence.trustedKeysDir);
    // a restart loads the new key
    const { startHarness: _ } = await import('../helpers/harness.js');
    const { LedgerService } = await import('../../services/evidence/ledger.service.js');
    const { loadSigner } = await import('../../services/evidence/signing-key.js');
    const fresh = new LedgerService(h.c.db, loadSigner(h.config.evidence.signingKeyFile), h.config.evidence, h.c.log);
    await fresh.init();
    const rec = await fresh.appendNow({ tenantId: T, kind: 'audit', subjectId: 'key-rotation', payload: { action: 'key-rotated', from: before } });
    expect(rec.keyId).not.toBe(before);
    const v = await fresh.verify(T);
    // 10 runs, the audit record of the bundle export above, the rotation record
    expect(v).toMatchObject({ ok: true, records: 12 });
  });

  it('prunes attachment content after its retention; the hash stays and the chain verifies', async () => {
    const rec = await h.c.ledger.appendNow({
      tenantId: T, kind: 'audit', subjectId: 'attachment-test', payload: { note: 'raw log' },
      attachments: [{ name: 'restore-tool.log', content: Buffer.from('pg_restore: error: something\n') }],
    });
    const pruned = await h.c.ledger.repo.pruneAttachments('2999-01-01');
    expect(pruned).toBeGreaterThanOrEqual(1);
    const [a] = await h.c.ledger.repo.attachments(T, rec.hash);
    expect(a).toMatchObject({ name: 'restore-tool.log', content: null });
    expect(a!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(rec.canonical).payload.attachments[0].sha256).toBe(a!.sha256);
    expect(await h.c.ledger.repo.pruneAttachments(new Date().toISOString().slice(0, 10))).toBe(0);
  });
});
