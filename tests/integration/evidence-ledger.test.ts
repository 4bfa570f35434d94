import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { loadSigner, rotateSigningKey } from '../../services/evidence/signing-key.js';
import { LedgerService } from '../../services/evidence/ledger.service.js';
import { sealCheckpoint } from '../../services/evidence/ledger-format.js';
import { createTestDatabase } from '../helpers/db.js';

let h: Harness;
const T = DEFAULT_TENANT_ID;
const ids: string[] = [];

/** As the PostgreSQL superuser, bypassing the append-only trigger the way an attacker with full access could. */
const asSuperuser = (statement: string) => hostPsql(`set session_replication_role = replica; ${statement}`, h.tdb.name);

/** A full verification (admin): tampering below the head verified last is found only by a full one. */
async function verify() {
  return (await h.request('GET', '/api/v1/evidence/verify?full=true')).body;
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
    const fresh = new LedgerService(h.c.db, loadSigner(h.config.evidence.signingKeyFile), h.config.evidence, h.c.log, h.c.clock);
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
    const pruned = await h.c.ledger.repo.pruneAttachments(new Date('2999-01-01T12:00:00Z'));
    expect(pruned).toBeGreaterThanOrEqual(1);
    const [a] = await h.c.ledger.repo.attachments(T, rec.hash);
    expect(a).toMatchObject({ name: 'restore-tool.log', content: null });
    expect(a!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(rec.canonical).payload.attachments[0].sha256).toBe(a!.sha256);
    expect(await h.c.ledger.pruneAttachments()).toBe(0);
  });
});

describe('anchors that cannot be crossed, incremental verification (issue #14)', () => {
  const cpFile = () => join(h.config.evidence.checkpointDir, `${T}.jsonl`);

  it('every record and checkpoint names the ledger id made for this database\'s chain', async () => {
    const row = await h.tdb.db.selectFrom('ledger_chains').select('ledger_id').where('tenant_id', '=', T).executeTakeFirstOrThrow();
    const records = await h.c.ledger.repo.list(T);
    expect(records.every((r) => JSON.parse(r.canonical).ledgerId === row.ledger_id)).toBe(true);
    const lines = readFileSync(cpFile(), 'utf8').trim().split('\n').map((l) => JSON.parse(JSON.parse(l).canonical));
    expect(lines.every((b) => b.ledgerId === row.ledger_id)).toBe(true);
    const v = await verify();
    expect(v).toMatchObject({ ok: true, ledgerId: row.ledger_id, foreign: [], mode: 'full' });
    const bundle = (await h.request('GET', '/api/v1/evidence/bundle')).body;
    expect(bundle.ledgerId).toBe(row.ledger_id);
    // the app role cannot change it (and a trigger refuses it for everyone)
    await expect(sql`update ledger_chains set ledger_id = gen_random_uuid()`.execute(h.tdb.db)).rejects.toThrow(/permission denied/);
  });

  it('a second database\'s chain of the same tenant, anchored in the same folder with the same key, is reported as foreign, never as tampering', async () => {
    const other = await createTestDatabase();
    try {
      // what `npm run bench:restore` did: its own database, the installation's key and checkpoint folder
      const bench = new LedgerService(other.db, loadSigner(h.config.evidence.signingKeyFile), h.config.evidence, h.c.log, h.c.clock);
      await bench.init();
      const head = (await h.c.ledger.repo.head(T))!.seq;
      for (let i = 0; i < head + 5; i++) await bench.appendNow({ tenantId: T, kind: 'audit', subjectId: `bench-${i}`, payload: { action: 'bench' } });
      const otherId = (await other.db.selectFrom('ledger_chains').select('ledger_id').where('tenant_id', '=', T).executeTakeFirstOrThrow()).ledger_id;

      const v = await verify();
      expect(v.ok, JSON.stringify(v.firstBroken)).toBe(true);
      expect(v.foreign).toEqual([expect.objectContaining({ reason: 'foreign-checkpoint', ledgerId: otherId, count: head + 5, newestSeq: head + 5 })]);
      expect(v.checkpoint.seq).toBe(head); // the newest checkpoint shown is this chain's, not the longer foreign one
      expect(v.checkpoint.ledgerId).toBe(v.ledgerId);
      // the bench's chain in turn sees ours as foreign
      expect(await bench.verify(T, { full: true })).toMatchObject({ ok: true, foreign: [expect.objectContaining({ ledgerId: v.ledgerId })] });
      // a bundle carries only its own ledger's checkpoints
      const bundle = (await h.request('GET', '/api/v1/evidence/bundle')).body;
      expect(bundle.checkpoints.every((cp: { canonical: string }) => JSON.parse(cp.canonical).ledgerId === v.ledgerId)).toBe(true);
    } finally {
      await other.drop();
    }
  });

  it('an old checkpoint without a ledger id is compared by seq and hash as before', async () => {
    const signer = loadSigner(h.config.evidence.signingKeyFile);
    const head = (await h.c.ledger.repo.head(T))!;
    const before = readFileSync(cpFile(), 'utf8');
    try {
      appendFileSync(cpFile(), `${JSON.stringify(sealCheckpoint({ tenantId: T, seq: head.seq, hash: head.hash, at: new Date().toISOString() }, signer.privateKey, signer.keyId))}\n`);
      expect(await verify()).toMatchObject({ ok: true });
      appendFileSync(cpFile(), `${JSON.stringify(sealCheckpoint({ tenantId: T, seq: head.seq + 50, hash: 'ab'.repeat(32), at: new Date().toISOString() }, signer.privateKey, signer.keyId))}\n`);
      expect((await verify()).firstBroken).toMatchObject({ seq: head.seq + 1, reason: 'missing-after-checkpoint' });
    } finally {
      writeFileSync(cpFile(), before);
    }
  });

  it('readers take the checkpoint with the highest seq, not the last line (processes append out of order)', async () => {
    const ledgerId = (await verify()).ledgerId as string;
    const before = readFileSync(cpFile(), 'utf8');
    try {
      const lines = before.trim().split('\n');
      // the newest line first, older ones after it: as two processes finishing in the other order write them
      writeFileSync(cpFile(), `${[lines.at(-1), ...lines.slice(0, -1).reverse()].join('\n')}\n`);
      const head = (await h.c.ledger.repo.head(T))!;
      expect(h.c.ledger.newestCheckpoint(T)).toMatchObject({ seq: head.seq, hash: head.hash, ledgerId });
      expect(await verify()).toMatchObject({ ok: true, checkpoints: { newestSeq: head.seq } });
      const ev = await h.request('GET', `/api/v1/runs/${ids[0]}/evidence`);
      expect(ev.body.checkpoint.seq).toBe(head.seq);
    } finally {
      writeFileSync(cpFile(), before);
    }
  });

  it('GET /evidence/verify is incremental; full=true is for admins only; deleted newest records are still caught', async () => {
    h.c.ledger.forgetVerified(T);
    const first = (await h.request('GET', '/api/v1/evidence/verify')).body;
    expect(first).toMatchObject({ ok: true, mode: 'full' });
    const again = (await h.request('GET', '/api/v1/evidence/verify')).body;
    expect(again).toMatchObject({ ok: true, mode: 'incremental', verifiedFromSeq: null, records: first.records, headSeq: first.headSeq });
    const rec = await h.c.ledger.appendNow({ tenantId: T, kind: 'audit', subjectId: 'incremental', payload: { action: 'test' } });
    const next = (await h.request('GET', '/api/v1/evidence/verify')).body;
    expect(next).toMatchObject({ ok: true, mode: 'incremental', verifiedFromSeq: rec.seq, headSeq: rec.seq, records: first.records + 1 });
    expect(next.checkpoints.checked).toBeGreaterThan(first.checkpoints.checked);

    // the newest record deleted: the verified head is gone, a full verification follows and names it
    const saved = await h.tdb.db.selectFrom('ledger_records').selectAll().where('tenant_id', '=', T).where('seq', '=', rec.seq).executeTakeFirstOrThrow();
    await asSuperuser(`delete from ledger_records where tenant_id = '${T}' and seq = ${rec.seq}`);
    try {
      const cut = (await h.request('GET', '/api/v1/evidence/verify')).body;
      expect(cut).toMatchObject({ ok: false, mode: 'full', firstBroken: { seq: rec.seq, reason: 'missing-after-checkpoint' } });
    } finally {
      const r = saved;
      await asSuperuser(`insert into ledger_records values ('${r.tenant_id}', ${r.seq}, '${r.kind}', '${r.subject_id}', $ef$${r.canonical}$ef$, '${r.hash}', '${r.signature}', '${r.key_id}', '${r.created_at.toISOString()}', '${r.retain_until}')`);
    }
    expect((await h.request('GET', '/api/v1/evidence/verify')).body).toMatchObject({ ok: true });

    const auditor = await h.request('POST', '/api/v1/tokens', { name: 'auditor-verify', role: 'auditor' });
    expect(auditor.status).toBe(201);
    const asAuditor = (url: string) => h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${auditor.body.token as string}` } });
    expect((await asAuditor('/api/v1/evidence/verify')).statusCode).toBe(200);
    expect((await asAuditor('/api/v1/evidence/verify?full=true')).statusCode).toBe(403);
  });
});

