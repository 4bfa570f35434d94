/**
 * Verification of a tenant's evidence chain (docs/decisions/006-evidence-ledger.md).
 * Pure: the caller brings the records, the trusted keys and the checkpoints.
 */
import { verify, type KeyObject } from 'node:crypto';
import { LedgerFormatError, ZERO_HASH, parseCheckpoint, parseEnvelope, sha256Hex, type Checkpoint, type CheckpointBody, type LedgerRecord } from './ledger-format.js';

export type Reason =
  | 'hash-mismatch'
  | 'envelope-mismatch'
  | 'seq-gap'
  | 'prev-hash-mismatch'
  | 'unknown-key'
  | 'bad-signature'
  | 'missing-after-checkpoint'
  | 'checkpoint-mismatch';

export interface Broken {
  seq: number;
  reason: Reason;
  message: string;
}

/**
 * Checkpoints of another ledger (another database's chain of the same tenant
 * id, e.g. a benchmark's or a second checkout's): listed, never counted as
 * tampering and never compared with this chain. docs/decisions/015-ledger-id.md
 */
export interface ForeignCheckpoints {
  reason: 'foreign-checkpoint';
  ledgerId: string;
  /** how many checkpoints of that ledger were found */
  count: number;
  /** the highest seq they claim */
  newestSeq: number;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  /** records given */
  records: number;
  /** seq and hash of the last record given (as stored), null without records */
  headSeq: number | null;
  headHash: string | null;
  /** the lowest seq at which the chain is broken, null when it is whole */
  firstBroken: Broken | null;
  /** checked: checkpoints compared with a record of the chain; newestSeq: the highest seq any readable checkpoint claims */
  checkpoints: { checked: number; newestSeq: number | null; foreign: number };
  /** the ledger id the chain's own signed records name (null: no verified record carries one, e.g. a chain older than migration 0016) */
  ledgerId: string | null;
  /** checkpoints of other ledgers, one entry per ledger: not part of the verdict */
  foreign: ForeignCheckpoints[];
}

export interface VerifyOptions {
  /** keyId → public key; only keys obtained outside the database / bundle belong here */
  trustedKeys: Map<string, KeyObject>;
  /** prevHash expected for the first record of a segment not starting at seq 1 (unchecked when absent) */
  anchorPrevHash?: string;
  /** seq the first record must have; default 1, or the first record's seq when anchorPrevHash is given */
  firstSeq?: number;
  checkpoints?: Checkpoint[];
  /** when given, every record and checkpoint must belong to this tenant */
  tenantId?: string;
  /**
   * The ledger the records are said to belong to (the database's ledger_chains
   * row, a bundle's ledgerId): a record naming another ledger is an
   * envelope-mismatch. Not trusted for classifying checkpoints: only the
   * records' signed envelopes (or knownLedgerId) say which ledger this is.
   */
  ledgerId?: string;
  /** The ledger id established by signed records verified before this segment (incremental verification). */
  knownLedgerId?: string;
  /** seq → hash of records before this segment that were verified already: checkpoints naming them are compared with these. */
  priorHashes?: Map<number, string>;
}

const signatureValid = (data: Buffer, key: KeyObject, signature: unknown): boolean => {
  if (typeof signature !== 'string') return false;
  try {
    return verify(null, data, key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
};

/**
 * Checks one record at position `expectedSeq`; returns why it is broken or null.
 * Order as in the spec: hash, envelope, seq, prevHash, key, signature.
 */
function checkRecord(rec: LedgerRecord, expectedSeq: number, expectedPrev: string | undefined, chainLedgerId: string | undefined, opts: VerifyOptions, seen: { ledgerId?: string }): Broken | null {
  const at = (reason: Reason, message: string): Broken => ({ seq: expectedSeq, reason, message });
  if (typeof rec.canonical !== 'string' || typeof rec.hash !== 'string') return at('hash-mismatch', `record ${expectedSeq} has no canonical text or no hash`);
  const bytes = Buffer.from(rec.canonical, 'utf8');
  const actual = sha256Hex(bytes);
  if (actual !== rec.hash) return at('hash-mismatch', `sha256(canonical) is ${actual}, the record says ${rec.hash}: the record's content was changed`);

  let env;
  try {
    env = parseEnvelope(rec);
  } catch (err) {
    if (err instanceof LedgerFormatError) return at('envelope-mismatch', err.message);
    throw err;
  }
  if (env.v !== 1) return at('envelope-mismatch', `envelope version ${String(env.v)} is not 1`);
  for (const f of ['tenantId', 'seq', 'kind', 'subjectId'] as const) {
    if (env[f] !== rec[f]) return at('envelope-mismatch', `${f} is ${JSON.stringify(rec[f])} on the record but ${JSON.stringify(env[f])} in the signed envelope`);
  }
  if (opts.tenantId !== undefined && rec.tenantId !== opts.tenantId) {
    return at('envelope-mismatch', `record belongs to tenant ${rec.tenantId}, not to ${opts.tenantId}`);
  }
  if (env.ledgerId !== undefined && typeof env.ledgerId !== 'string') return at('envelope-mismatch', 'ledgerId in the signed envelope is not a string');
  if (env.ledgerId !== undefined && opts.ledgerId !== undefined && env.ledgerId !== opts.ledgerId) {
    return at('envelope-mismatch', `record belongs to ledger ${env.ledgerId}, not to ${opts.ledgerId}`);
  }
  seen.ledgerId = env.ledgerId;
  if (chainLedgerId !== undefined && env.ledgerId !== chainLedgerId) {
    return at('envelope-mismatch', env.ledgerId === undefined
      ? `record names no ledger, but the records before it belong to ledger ${chainLedgerId}`
      : `record belongs to ledger ${env.ledgerId}, but the records before it to ledger ${chainLedgerId}`);
  }

  if (rec.seq !== expectedSeq) {
    return at('seq-gap', rec.seq > expectedSeq
      ? `record ${expectedSeq} is missing: seq ${rec.seq} follows seq ${expectedSeq - 1}`
      : `seq ${rec.seq} is out of order: seq ${expectedSeq} was expected here`);
  }
  if (expectedPrev !== undefined && env.prevHash !== expectedPrev) {
    return at('prev-hash-mismatch', `prevHash is ${String(env.prevHash)}, the previous record's hash is ${expectedPrev}`);
  }
  const key = typeof rec.keyId === 'string' ? opts.trustedKeys.get(rec.keyId) : undefined;
  if (!key) {
    return at('unknown-key', `signed with key ${String(rec.keyId)}, which is not a trusted key (if the database is shared with another installation, `
      + 'this record was signed by that installation\'s key: docs/operations.md#one-database-one-signing-key)');
  }
  if (!signatureValid(bytes, key, rec.signature)) return at('bad-signature', `the signature does not verify with key ${rec.keyId}`);
  return null;
}

interface ReadCheckpoint {
  cp: Checkpoint;
  body: CheckpointBody | null;
  error?: string;
}

function checkpointSignatureValid(cp: Checkpoint, trustedKeys: Map<string, KeyObject>): boolean {
  const key = typeof cp.keyId === 'string' ? trustedKeys.get(cp.keyId) : undefined;
  return key !== undefined && typeof cp.canonical === 'string' && signatureValid(Buffer.from(cp.canonical, 'utf8'), key, cp.signature);
}

/**
 * Verifies records (sorted by seq as stored) against trusted keys and
 * checkpoints. Reports the broken spot with the lowest seq: for a record the
 * seq it should have at its position (so a deleted record is named by its own
 * seq), for a checkpoint the checkpoint's seq, for a chain that ends too early
 * the first missing seq. A record failure wins over a checkpoint finding at the same seq.
 */
export function verifyChain(records: LedgerRecord[], opts: VerifyOptions): VerifyResult {
  const claimed = records[0]?.seq; // a tampered bundle may carry anything here
  const firstSeq = opts.firstSeq ?? (opts.anchorPrevHash !== undefined && Number.isSafeInteger(claimed) && claimed! >= 1 ? claimed! : 1);
  let broken: Broken | null = null;
  let prevHash: string | undefined = firstSeq === 1 ? ZERO_HASH : opts.anchorPrevHash;
  // the chain's ledger id, as its own verified records name it
  let ledgerId: string | undefined = opts.knownLedgerId;
  for (let i = 0; i < records.length; i++) {
    const rec = records[i]!;
    const seen: { ledgerId?: string } = {};
    broken = checkRecord(rec, firstSeq + i, prevHash, ledgerId, opts, seen);
    if (broken) break;
    prevHash = rec.hash;
    ledgerId ??= seen.ledgerId;
  }
  const last = records.at(-1);
  // the chain is verified for seq < verifiedEnd; findings at or beyond a broken record cannot name a lower seq
  const verifiedEnd = broken ? broken.seq : firstSeq + records.length;

  const cps = checkCheckpoints(records, firstSeq, verifiedEnd, ledgerId, opts);
  let firstBroken = broken;
  if (cps.finding && (!firstBroken || cps.finding.seq < firstBroken.seq)) firstBroken = cps.finding;
  return {
    ok: firstBroken === null,
    records: records.length,
    headSeq: last ? last.seq : null,
    headHash: last ? last.hash : null,
    firstBroken,
    checkpoints: { checked: cps.checked, newestSeq: cps.newestSeq, foreign: cps.foreign.reduce((n, f) => n + f.count, 0) },
    ledgerId: ledgerId ?? null,
    foreign: cps.foreign,
  };
}

/**
 * Each checkpoint within the verified part must name that record's hash; the
 * chain must reach the highest checkpointed seq. Signatures are verified for
 * every checkpoint that would be a finding and for the newest one; a
 * checkpoint that only repeats the hash of a record already verified by its
 * own trusted signature adds no claim, so its signature is not re-checked
 * (that halves the cost: there is a checkpoint per append).
 */
function checkCheckpoints(records: LedgerRecord[], firstSeq: number, verifiedEnd: number, chainLedgerId: string | undefined, opts: VerifyOptions): { finding: Broken | null; checked: number; newestSeq: number | null; foreign: ForeignCheckpoints[] } {
  const list: ReadCheckpoint[] = (opts.checkpoints ?? []).map((cp) => {
    try {
      return { cp, body: parseCheckpoint(cp) };
    } catch (err) {
      return { cp, body: null, error: (err as Error).message };
    }
  });
  const tenantId = opts.tenantId ?? records[0]?.tenantId;
  // another ledger's checkpoint only when this chain's own signed records name a different ledger;
  // without that (an old chain, an old checkpoint) it is compared by seq and hash as before
  const isForeign = (b: CheckpointBody | null): boolean => b !== null && b.ledgerId !== undefined && chainLedgerId !== undefined && b.ledgerId !== chainLedgerId;
  const foreign = new Map<string, ForeignCheckpoints>();
  let newest: ReadCheckpoint | null = null;
  for (const c of list) {
    if (!c.body || isForeign(c.body) || (tenantId !== undefined && c.body.tenantId !== tenantId)) continue;
    if (!newest || c.body.seq > newest.body!.seq) newest = c;
  }

  let finding: Broken | null = null;
  const report = (b: Broken) => {
    if (!finding || b.seq < finding.seq) finding = b;
  };
  const signed = (c: ReadCheckpoint, seq: number): boolean => {
    if (checkpointSignatureValid(c.cp, opts.trustedKeys)) return true;
    report({ seq, reason: 'checkpoint-mismatch', message: `the signature of the checkpoint for seq ${seq} is invalid or its key ${String(c.cp.keyId)} is not trusted` });
    return false;
  };
  let checked = 0;
  const reach = firstSeq + records.length - 1; // the last seq, when nothing is broken
  for (const c of list) {
    if (!c.body) {
      report({ seq: 0, reason: 'checkpoint-mismatch', message: `a checkpoint cannot be read: ${c.error ?? 'malformed'}` });
      continue;
    }
    const { seq, hash } = c.body;
    if (isForeign(c.body)) {
      const id = c.body.ledgerId!;
      const f = foreign.get(id) ?? { reason: 'foreign-checkpoint' as const, ledgerId: id, count: 0, newestSeq: 0, message: '' };
      f.count++;
      f.newestSeq = Math.max(f.newestSeq, seq);
      f.message = `${f.count} checkpoint(s) up to seq ${f.newestSeq} belong to ledger ${id}, not to this chain's ledger ${chainLedgerId!} `
        + '(another database\'s chain of the same tenant id, e.g. a benchmark or a second installation): not compared, not part of the verdict';
      foreign.set(id, f);
      continue;
    }
    if (verifiedEnd <= reach && seq >= verifiedEnd) continue; // at or after a broken record: that record is named
    if (tenantId !== undefined && c.body.tenantId !== tenantId) {
      report({ seq, reason: 'checkpoint-mismatch', message: `the checkpoint for seq ${seq} belongs to tenant ${c.body.tenantId}, not to ${tenantId}` });
      continue;
    }
    if (seq < firstSeq) {
      const prior = opts.priorHashes?.get(seq);
      if (prior !== undefined) {
        checked++;
        if (prior !== hash) {
          if (signed(c, seq)) report({ seq, reason: 'checkpoint-mismatch', message: `record ${seq} has hash ${prior}, the checkpoint of ${c.body.at} says ${hash}` });
          continue;
        }
      }
      if (c === newest) signed(c, seq);
      continue; // before this segment: nothing (more) to compare with
    }
    if (seq > reach) {
      if (!signed(c, seq)) continue;
      report({ seq: reach + 1, reason: 'missing-after-checkpoint', message: `a checkpoint vouches for seq ${seq} (hash ${hash}), but the chain ends at seq ${reach}: records ${reach + 1}–${seq} are missing` });
      continue;
    }
    checked++;
    const rec = records[seq - firstSeq]!;
    if (rec.hash !== hash) {
      if (signed(c, seq)) report({ seq, reason: 'checkpoint-mismatch', message: `record ${seq} has hash ${rec.hash}, the checkpoint of ${c.body.at} says ${hash}` });
    } else if (c === newest) {
      signed(c, seq);
    }
  }
  return { finding, checked, newestSeq: newest ? newest.body!.seq : null, foreign: [...foreign.values()] };
}
