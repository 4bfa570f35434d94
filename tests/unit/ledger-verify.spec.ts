import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../services/util/canonical-json.js';
import {
  LedgerFormatError, ZERO_HASH, fingerprintOf, keyIdOf, parseEnvelope, sealCheckpoint, sealRecord,
  type Checkpoint, type Envelope, type LedgerRecord,
} from '../../services/evidence/ledger-format.js';
import { verifyChain, type VerifyOptions } from '../../services/evidence/verify.js';
import { fingerprintOfKey } from '../../services/evidence/signing-key.js';

const TENANT = '3b0c1c9e-6a55-4a8e-9a43-2f4d7a1c0001';
const OTHER_TENANT = '3b0c1c9e-6a55-4a8e-9a43-2f4d7a1c0002';
const main = generateKeyPairSync('ed25519');
const foreign = generateKeyPairSync('ed25519');
const KEY_ID = keyIdOf(main.publicKey);
const FOREIGN_ID = keyIdOf(foreign.publicKey);
const trusted = () => new Map<string, KeyObject>([[KEY_ID, main.publicKey]]);

function envelope(seq: number, prevHash: string): Envelope {
  const verdict = seq % 7 === 0 ? 'failed' : 'passed';
  return {
    v: 1, tenantId: TENANT, seq, kind: 'run', subjectId: `run-${seq}`,
    createdAt: new Date(Date.UTC(2026, 0, 1) + seq * 3_600_000).toISOString(), retainUntil: '2036-11-28', prevHash,
    payload: { run: { id: `run-${seq}`, planId: 'pg-main', verdict, rto: { measuredSeconds: 300 + seq, met: true }, note: 'Prüfung ok' }, plan: { version: 'v3' } },
  };
}

function buildChain(n: number, start = 1, prev = ZERO_HASH): LedgerRecord[] {
  const out: LedgerRecord[] = [];
  for (let seq = start; seq < start + n; seq++) {
    const rec = sealRecord(envelope(seq, prev), main.privateKey, KEY_ID);
    out.push(rec);
    prev = rec.hash;
  }
  return out;
}

/** Re-seals a record after changing its envelope (a forger with the key, or with a key of their own). */
function reseal(rec: LedgerRecord, change: (e: Envelope) => void, key = main.privateKey, keyId = KEY_ID): LedgerRecord {
  const env = parseEnvelope(rec);
  change(env);
  return sealRecord(env, key, keyId);
}

const checkpointOf = (rec: Pick<LedgerRecord, 'seq' | 'hash'>, key = main.privateKey, keyId = KEY_ID, tenantId = TENANT): Checkpoint =>
  sealCheckpoint({ tenantId, seq: rec.seq, hash: rec.hash, at: '2026-11-28T10:00:00.000Z' }, key, keyId);

const CHAIN = buildChain(50);
const bySeq = (seq: number) => CHAIN[seq - 1]!;
const copy = () => CHAIN.map((r) => ({ ...r }));
const verify = (records: LedgerRecord[], opts: Partial<VerifyOptions> = {}) => verifyChain(records, { trustedKeys: trusted(), tenantId: TENANT, ...opts });
const broken = (records: LedgerRecord[], opts: Partial<VerifyOptions> = {}) => {
  const r = verify(records, opts);
  expect(r.ok).toBe(false);
  return r.firstBroken!;
};

describe('ledger format', () => {
  it('seals a record: hash over the canonical bytes, keyId and fingerprint from the SPKI DER', () => {
    const rec = bySeq(1);
    expect(rec.canonical).toBe(canonicalJson(envelope(1, ZERO_HASH)));
    expect(rec.hash).toBe(createHash('sha256').update(Buffer.from(rec.canonical, 'utf8')).digest('hex'));
    expect(Buffer.from(rec.signature, 'base64')).toHaveLength(64);
    expect(KEY_ID).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprintOf(main.publicKey)).toBe(fingerprintOfKey(main.publicKey));
    expect(fingerprintOf(main.publicKey).startsWith(KEY_ID)).toBe(true);
    expect(parseEnvelope(rec)).toEqual(envelope(1, ZERO_HASH));
    expect(parseEnvelope(bySeq(2)).prevHash).toBe(rec.hash);
  });

  it('parseEnvelope throws a LedgerFormatError on invalid JSON', () => {
    expect(() => parseEnvelope({ canonical: '{"v":1,' })).toThrow(LedgerFormatError);
    expect(() => parseEnvelope({ canonical: '[1]', seq: 3 })).toThrow(/record 3/);
  });
});

describe('verifyChain', () => {
  it('accepts the healthy chain, with and without checkpoints', () => {
    expect(verify(CHAIN)).toEqual({ ok: true, records: 50, headSeq: 50, headHash: bySeq(50).hash, firstBroken: null, checkpoints: { checked: 0, newestSeq: null, foreign: 0 }, ledgerId: null, foreign: [] });
    const r = verify(CHAIN, { checkpoints: CHAIN.map((x) => checkpointOf(x)) });
    expect(r).toMatchObject({ ok: true, firstBroken: null, checkpoints: { checked: 50, newestSeq: 50 } });
    expect(verify([])).toMatchObject({ ok: true, records: 0, headSeq: null, headHash: null });
  });

  it('a changed field inside canonical → hash-mismatch at that seq', () => {
    const recs = copy();
    recs[16]!.canonical = recs[16]!.canonical.replace('"verdict":"passed"', '"verdict":"failed"');
    expect(recs[16]!.canonical).not.toBe(CHAIN[16]!.canonical);
    expect(broken(recs)).toMatchObject({ seq: 17, reason: 'hash-mismatch' });
  });

  it('hash recomputed after changing canonical → bad-signature', () => {
    const recs = copy();
    const r = recs[16]!;
    r.canonical = r.canonical.replace('"verdict":"passed"', '"verdict":"failed"');
    r.hash = createHash('sha256').update(r.canonical).digest('hex');
    expect(broken(recs)).toMatchObject({ seq: 17, reason: 'bad-signature' });
  });

  it('a deleted middle record → seq-gap naming the missing seq', () => {
    const recs = CHAIN.filter((r) => r.seq !== 25);
    const b = broken(recs);
    expect(b).toMatchObject({ seq: 25, reason: 'seq-gap' });
    expect(b.message).toMatch(/record 25 is missing/);
  });

  it('two records swapped in order → seq-gap at the first of them', () => {
    const recs = copy();
    [recs[29], recs[30]] = [recs[30]!, recs[29]!];
    expect(broken(recs)).toMatchObject({ seq: 30, reason: 'seq-gap' });
  });

  it("two records' seq swapped (stored sorted by seq) → envelope-mismatch", () => {
    const recs = copy();
    recs[29]!.seq = 31;
    recs[30]!.seq = 30;
    recs.sort((a, b) => a.seq - b.seq);
    expect(broken(recs)).toMatchObject({ seq: 30, reason: 'envelope-mismatch' });
  });

  it('an altered signature → bad-signature', () => {
    const recs = copy();
    const sig = Buffer.from(recs[11]!.signature, 'base64');
    sig[5] = sig[5]! ^ 0x01;
    recs[11]!.signature = sig.toString('base64');
    expect(broken(recs)).toMatchObject({ seq: 12, reason: 'bad-signature' });
    recs[11]!.signature = 'not base64 at all!';
    expect(broken(recs)).toMatchObject({ seq: 12, reason: 'bad-signature' });
  });

  it('a record re-sealed with a foreign key → unknown-key; fine once that key is trusted (rotation)', () => {
    const recs = copy();
    recs[39] = reseal(recs[39]!, () => {}, foreign.privateKey, FOREIGN_ID);
    expect(recs[39]!.hash).toBe(CHAIN[39]!.hash);
    expect(broken(recs)).toMatchObject({ seq: 40, reason: 'unknown-key' });
    const both = trusted().set(FOREIGN_ID, foreign.publicKey);
    expect(verify(recs, { trustedKeys: both }).ok).toBe(true);
  });

  it('a validly signed record with a wrong prevHash → prev-hash-mismatch', () => {
    const recs = copy();
    recs[9] = reseal(recs[9]!, (e) => { e.prevHash = 'ab'.repeat(32); });
    expect(broken(recs)).toMatchObject({ seq: 10, reason: 'prev-hash-mismatch' });
  });

  it('deleting the newest 3 records: undetectable without checkpoints, missing-after-checkpoint with them', () => {
    const recs = CHAIN.slice(0, 47);
    expect(verify(recs)).toMatchObject({ ok: true, headSeq: 47, firstBroken: null });
    const cps = CHAIN.map((x) => checkpointOf(x));
    const b = broken(recs, { checkpoints: cps });
    expect(b).toMatchObject({ seq: 48, reason: 'missing-after-checkpoint' });
    expect(verify(recs, { checkpoints: cps }).checkpoints).toEqual({ checked: 47, newestSeq: 50, foreign: 0 });
  });

  it('a checkpoint with a wrong hash → checkpoint-mismatch at its seq, signed or forged', () => {
    const wrong = { seq: 20, hash: 'cd'.repeat(32) };
    expect(broken(CHAIN, { checkpoints: [checkpointOf(wrong)] })).toMatchObject({ seq: 20, reason: 'checkpoint-mismatch' });
    const forged = checkpointOf(wrong, foreign.privateKey, KEY_ID);
    const b = broken(CHAIN, { checkpoints: [checkpointOf(bySeq(50)), forged] });
    expect(b).toMatchObject({ seq: 20, reason: 'checkpoint-mismatch' });
    expect(b.message).toMatch(/signature .* is invalid/);
  });

  it('checkpoints must be validly signed by a trusted key and belong to the tenant', () => {
    const untrusted = checkpointOf({ seq: 60, hash: 'ef'.repeat(32) }, foreign.privateKey, FOREIGN_ID);
    const b = broken(CHAIN, { checkpoints: [untrusted] });
    expect(b).toMatchObject({ seq: 60, reason: 'checkpoint-mismatch' });
    expect(b.message).toMatch(/signature/);
    const newestForged = checkpointOf(bySeq(50), foreign.privateKey, KEY_ID);
    expect(broken(CHAIN, { checkpoints: [newestForged] })).toMatchObject({ seq: 50, reason: 'checkpoint-mismatch' });
    const otherTenant = checkpointOf(bySeq(10), main.privateKey, KEY_ID, OTHER_TENANT);
    expect(broken(CHAIN, { checkpoints: [otherTenant] })).toMatchObject({ seq: 10, reason: 'checkpoint-mismatch' });
    expect(broken(CHAIN, { checkpoints: [{ canonical: 'nope', signature: '', keyId: KEY_ID }] })).toMatchObject({ seq: 0, reason: 'checkpoint-mismatch' });
  });

  it('envelope tenantId differing from the record’s → envelope-mismatch', () => {
    const recs = copy();
    recs[7]!.tenantId = OTHER_TENANT;
    expect(broken(recs, { tenantId: undefined })).toMatchObject({ seq: 8, reason: 'envelope-mismatch' });
    const moved = copy();
    moved[7] = reseal(moved[7]!, (e) => { e.tenantId = OTHER_TENANT; });
    expect(broken(moved)).toMatchObject({ seq: 8, reason: 'envelope-mismatch' });
    const rekinded = copy();
    rekinded[3]!.kind = 'review';
    expect(broken(rekinded)).toMatchObject({ seq: 4, reason: 'envelope-mismatch' });
  });

  it('a segment starting at seq 20 verifies with the right anchor and fails with a wrong one', () => {
    const seg = CHAIN.slice(19);
    const anchor = bySeq(19).hash;
    expect(verify(seg, { anchorPrevHash: anchor, firstSeq: 20 })).toMatchObject({ ok: true, records: 31, headSeq: 50 });
    expect(verify(seg, { anchorPrevHash: anchor })).toMatchObject({ ok: true });
    expect(broken(seg, { anchorPrevHash: ZERO_HASH, firstSeq: 20 })).toMatchObject({ seq: 20, reason: 'prev-hash-mismatch' });
    expect(broken(seg, { anchorPrevHash: anchor, firstSeq: 19 })).toMatchObject({ seq: 19, reason: 'seq-gap' });
    // a full chain must start at 1
    expect(broken(seg)).toMatchObject({ seq: 1, reason: 'seq-gap' });
    // checkpoints before the segment cannot be compared, later ones still count
    const r = verify(seg, { anchorPrevHash: anchor, checkpoints: CHAIN.map((x) => checkpointOf(x)) });
    expect(r).toMatchObject({ ok: true, checkpoints: { checked: 31, newestSeq: 50 } });
  });

  it('names the lowest broken seq across records and checkpoints', () => {
    const recs = copy();
    recs[29]!.hash = 'ab'.repeat(32);
    recs[9]!.signature = recs[8]!.signature;
    expect(broken(recs)).toMatchObject({ seq: 10, reason: 'bad-signature' });
    const cps = [checkpointOf({ seq: 5, hash: '12'.repeat(32) }), checkpointOf(bySeq(50))];
    expect(broken(recs, { checkpoints: cps })).toMatchObject({ seq: 5, reason: 'checkpoint-mismatch' });
    // at the same seq the record's own failure is named
    const rehashed = copy();
    rehashed[14] = { ...reseal(rehashed[14]!, (e) => { e.payload = { forged: true }; }), signature: CHAIN[14]!.signature };
    expect(broken(rehashed, { checkpoints: [checkpointOf(bySeq(15))] })).toMatchObject({ seq: 15, reason: 'bad-signature' });
  });

  it('verifies 7,300 records with a checkpoint per record in under 2 s', () => {
    const big = buildChain(7300);
    const cps = big.map((x) => checkpointOf(x));
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const r = verify(big, { checkpoints: cps });
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const wallMs = performance.now() - t0;
    expect(r).toMatchObject({ ok: true, records: 7300, headSeq: 7300, checkpoints: { checked: 7300, newestSeq: 7300 } });
    // CPU time of this process: the wall clock also counts other jobs on the shared 2-core machine
    expect(cpuMs).toBeLessThan(2000);
    console.log(`verifyChain: 7300 records + 7300 checkpoints in ${cpuMs.toFixed(0)} ms CPU, ${wallMs.toFixed(0)} ms wall`);
  });
});

describe('ledger ids (issue #14: anchors that cannot be crossed)', () => {
  const LEDGER = '7d1e0f52-1111-4a8e-9a43-000000000001';
  const OTHER_LEDGER = '7d1e0f52-2222-4a8e-9a43-000000000002';
  /** A chain whose records 1..old carry no ledger id (written before migration 0016), the later ones `ledger`. */
  function chainWithLedger(n: number, old: number, ledger = LEDGER): LedgerRecord[] {
    const out: LedgerRecord[] = [];
    let prev = ZERO_HASH;
    for (let seq = 1; seq <= n; seq++) {
      const env = envelope(seq, prev);
      if (seq > old) env.ledgerId = ledger;
      const rec = sealRecord(env, main.privateKey, KEY_ID);
      out.push(rec);
      prev = rec.hash;
    }
    return out;
  }
  const cpOf = (rec: Pick<LedgerRecord, 'seq' | 'hash'>, ledgerId?: string) =>
    sealCheckpoint({ tenantId: TENANT, ledgerId, seq: rec.seq, hash: rec.hash, at: '2026-12-08T10:00:00.000Z' }, main.privateKey, KEY_ID);

  it('the chain\'s ledger id comes from its signed records; checkpoints of another ledger are listed as foreign, not as tampering', () => {
    const own = chainWithLedger(20, 5);
    // another database's chain with the same tenant id, longer than ours (the benchmark's, seen in issue #14: seq 242 vs head 189)
    const other = chainWithLedger(40, 0, OTHER_LEDGER);
    const cps = [...own.map((r) => cpOf(r, LEDGER)), ...other.map((r) => cpOf(r, OTHER_LEDGER))];
    const r = verify(own, { checkpoints: cps, ledgerId: LEDGER });
    expect(r.ok).toBe(true);
    expect(r.ledgerId).toBe(LEDGER);
    expect(r.checkpoints).toEqual({ checked: 20, newestSeq: 20, foreign: 40 });
    expect(r.foreign).toEqual([expect.objectContaining({ reason: 'foreign-checkpoint', ledgerId: OTHER_LEDGER, count: 40, newestSeq: 40 })]);
    // the same chain with the newest records deleted is still caught by its own checkpoints
    expect(broken(own.slice(0, 17), { checkpoints: cps })).toMatchObject({ seq: 18, reason: 'missing-after-checkpoint' });
  });

  it('old checkpoints without a ledger id belong to the chain when seq and hash match, else are reported as before', () => {
    const own = chainWithLedger(20, 5);
    expect(verify(own, { checkpoints: own.map((r) => cpOf(r)) })).toMatchObject({ ok: true, checkpoints: { checked: 20, foreign: 0 } });
    const crossed = cpOf({ seq: 30, hash: 'ab'.repeat(32) });
    expect(broken(own, { checkpoints: [crossed] })).toMatchObject({ seq: 21, reason: 'missing-after-checkpoint' });
    expect(broken(own, { checkpoints: [cpOf({ seq: 3, hash: 'ab'.repeat(32) })] })).toMatchObject({ seq: 3, reason: 'checkpoint-mismatch' });
  });

  it('while no verified record names a ledger, a checkpoint naming one is compared by seq and hash (never waved through as foreign)', () => {
    const oldChain = chainWithLedger(10, 10);
    expect(verify(oldChain, { checkpoints: oldChain.map((r) => cpOf(r, LEDGER)) })).toMatchObject({ ok: true, ledgerId: null, checkpoints: { checked: 10 } });
    // the database's (or bundle's) ledger id is a claim only: it does not make checkpoints foreign
    const b = broken(oldChain, { ledgerId: OTHER_LEDGER, checkpoints: [cpOf({ seq: 12, hash: 'cd'.repeat(32) }, LEDGER)] });
    expect(b).toMatchObject({ seq: 11, reason: 'missing-after-checkpoint' });
  });

  it('a record naming another ledger than the expected one, or than the records before it → envelope-mismatch', () => {
    const own = chainWithLedger(12, 5);
    expect(broken(own, { ledgerId: OTHER_LEDGER })).toMatchObject({ seq: 6, reason: 'envelope-mismatch' });
    const switched = [...own];
    switched[9] = reseal(switched[9]!, (e) => { e.ledgerId = OTHER_LEDGER; });
    // re-link the rest so only the ledger id is wrong
    for (let i = 10; i < switched.length; i++) switched[i] = reseal(switched[i]!, (e) => { e.prevHash = switched[i - 1]!.hash; });
    expect(broken(switched)).toMatchObject({ seq: 10, reason: 'envelope-mismatch' });
    const dropped = [...own];
    dropped[7] = reseal(dropped[7]!, (e) => { delete e.ledgerId; });
    for (let i = 8; i < dropped.length; i++) dropped[i] = reseal(dropped[i]!, (e) => { e.prevHash = dropped[i - 1]!.hash; });
    expect(broken(dropped)).toMatchObject({ seq: 8, reason: 'envelope-mismatch' });
  });

  it('incremental: a segment after a verified head compares new checkpoints naming earlier records with their known hashes', () => {
    const own = chainWithLedger(30, 0);
    const seg = own.slice(20);
    const prior = new Map(own.slice(0, 20).map((r) => [r.seq, r.hash]));
    const opts = { anchorPrevHash: own[19]!.hash, firstSeq: 21, knownLedgerId: LEDGER, priorHashes: prior };
    expect(verify(seg, { ...opts, checkpoints: [cpOf(own[4]!, LEDGER), cpOf(own[29]!, LEDGER)] })).toMatchObject({ ok: true, checkpoints: { checked: 2, newestSeq: 30 } });
    expect(broken(seg, { ...opts, checkpoints: [cpOf({ seq: 5, hash: 'ef'.repeat(32) }, LEDGER)] })).toMatchObject({ seq: 5, reason: 'checkpoint-mismatch' });
    // nothing new: the chain must still reach the newest checkpoint seen
    expect(broken([], { ...opts, firstSeq: 31, anchorPrevHash: own[29]!.hash, checkpoints: [cpOf({ seq: 33, hash: 'ef'.repeat(32) }, LEDGER)] }))
      .toMatchObject({ seq: 31, reason: 'missing-after-checkpoint' });
  });
});
