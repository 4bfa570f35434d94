/**
 * Runs the commands of docs/verify-by-hand.md for real (sha256sum, base64,
 * openssl, jq, node, python3) on a generated bundle, and the offline CLI
 * `services/evidence/verify-cli.ts` on good, tampered and unusable bundles.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUNDLE_FORMAT, ZERO_HASH, fingerprintOf, keyIdOf, sealCheckpoint, sealRecord,
  type Bundle, type LedgerRecord, type RecordKind,
} from '../../services/evidence/ledger-format.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOC = readFileSync(join(ROOT, 'docs/verify-by-hand.md'), 'utf8');
const TENANT = '7d4f6a52-1c1b-4b7e-8f0e-5a2f3c9d0001';
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const KEY_ID = keyIdOf(publicKey);
const PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const foreign = generateKeyPairSync('ed25519');
const ATTACHMENT = { name: 'restore.log', sha256: 'a1'.repeat(32), sizeBytes: 123 };
let dir: string;

/** The fenced bash block that follows `<!-- step:NAME -->` in the doc. */
function step(name: string): string {
  const m = new RegExp(`<!-- step:${name} -->\\s*\`\`\`bash\\n([\\s\\S]*?)\`\`\``).exec(DOC);
  if (!m) throw new Error(`docs/verify-by-hand.md has no step ${name}`);
  return m[1]!;
}

function bash(script: string, cwd = dir): { status: number | null; out: string } {
  const r = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], { cwd, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function makeBundle(n: number): Bundle {
  const kinds: RecordKind[] = ['run', 'review', 'measure', 'audit'];
  const records: LedgerRecord[] = [];
  let prev = ZERO_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const rec = sealRecord({
      v: 1, tenantId: TENANT, seq, kind: kinds[seq % 4]!, subjectId: `subject-${seq}`, createdAt: `2026-11-${String(seq).padStart(2, '0')}T08:00:00.000Z`,
      retainUntil: '2036-11-28', prevHash: prev,
      // non-ASCII and an escaped quote: the extraction must stay byte-exact
      payload: { verdict: seq === 3 ? 'failed' : 'passed', note: 'Rücksicherung geprüft ✓ "Größe" ok', ...(seq === 2 ? { attachments: [{ ...ATTACHMENT, retainUntil: '2027-11-28' }] } : {}) },
    }, privateKey, KEY_ID);
    records.push(rec);
    prev = rec.hash;
  }
  const checkpoints = records.map((r) => sealCheckpoint({ tenantId: TENANT, seq: r.seq, hash: r.hash, at: '2026-11-28T09:00:00.000Z' }, privateKey, KEY_ID));
  return {
    format: BUNDLE_FORMAT, version: 1, tenantId: TENANT, exportedAt: '2026-11-28T10:00:00.000Z', anchorPrevHash: ZERO_HASH,
    records, publicKeys: [{ keyId: KEY_ID, pem: PEM }], checkpoints, attachments: [{ recordHash: records[1]!.hash, ...ATTACHMENT }],
  };
}

const BUNDLE = makeBundle(12);
const REC = BUNDLE.records[1]!;

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'services/evidence/verify-cli.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeBundle(name: string, b: Bundle): string {
  const f = join(dir, name);
  writeFileSync(f, JSON.stringify(b, null, 2));
  return f;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ernstfall-verify-'));
  writeBundle('bundle.json', BUNDLE);
  writeFileSync(join(dir, 'trusted.pem'), PEM);
  writeFileSync(join(dir, 'foreign.pem'), foreign.publicKey.export({ type: 'spki', format: 'pem' }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('docs/verify-by-hand.md, run for real', () => {
  it('runs on OpenSSL 3', () => {
    expect(execFileSync('openssl', ['version'], { encoding: 'utf8' })).toMatch(/^OpenSSL 3\./);
  });

  it('with jq: hash, fingerprint, signature, chain link and envelope check out', () => {
    const r = bash(['choose', 'extract-jq', 'hash', 'hash-compare-jq', 'signature-jq', 'key-jq', 'fingerprint', 'verify', 'prev-jq'].map(step).join('\n'));
    expect(r.status, r.out).toBe(0);
    expect(readFileSync(join(dir, 'record.json'), 'utf8')).toBe(REC.canonical);
    expect(r.out).toContain(`${REC.hash}  record.json`);
    expect(r.out).toContain('hash OK');
    expect(r.out).toContain(`${fingerprintOf(publicKey)}  -`);
    expect(r.out).toContain('Signature Verified Successfully');
    const prevLines = r.out.split('\n').filter((l) => l === BUNDLE.records[0]!.hash);
    expect(prevLines).toHaveLength(2); // prevHash inside = hash of the previous record
    const envelopeLines = r.out.split('\n').filter((l) => l === JSON.stringify({ tenantId: TENANT, seq: 2, kind: REC.kind, subjectId: REC.subjectId }));
    expect(envelopeLines).toHaveLength(2);
  });

  it('with jq: a changed byte fails the signature check', () => {
    const r = bash(`${step('choose')}\n${step('extract-jq')}\n${step('signature-jq')}\nsed -i 's/passed/failed/' record.json\n${step('verify')}`);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('Signature Verification Failure');
  });

  it.each(['node', 'python'])('without jq (%s): the same bytes, hash and verified signature', (variant) => {
    rmSync(join(dir, 'record.json'), { force: true });
    rmSync(join(dir, 'sig.bin'), { force: true });
    const r = bash(['choose', `extract-${variant}`, 'hash', 'fingerprint', 'verify'].map(step).join('\n'));
    expect(r.status, r.out).toBe(0);
    expect(readFileSync(join(dir, 'record.json'), 'utf8')).toBe(REC.canonical);
    expect(r.out).toContain(`hash      ${REC.hash}`);
    expect(r.out).toContain(`prevHash  ${BUNDLE.records[0]!.hash}`);
    expect(r.out).toContain(`previous  ${BUNDLE.records[0]!.hash}`);
    expect(r.out).toContain(`${REC.hash}  record.json`);
    expect(r.out).toContain('Signature Verified Successfully');
  });

  it('the newest checkpoint verifies and names the head', () => {
    const r = bash(`I=0\n${step('key-jq')}\n${step('checkpoint-jq')}`);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('Signature Verified Successfully');
    expect(r.out).toContain(`seq 12 hash ${BUNDLE.records[11]!.hash}`);
  });
});

describe('npm run evidence:verify (offline CLI)', () => {
  it('a good bundle with a trusted key: exit 0, summary and fingerprint', () => {
    const r = cli(join(dir, 'bundle.json'), '--trust', join(dir, 'trusted.pem'));
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Nachweiskette gültig / Evidence chain valid: 12 Einträge / records, Kopf / head seq 12 hash ${BUNDLE.records[11]!.hash}`);
    expect(r.stdout).toContain(fingerprintOf(publicKey).match(/.{4}/g)!.join(' '));
    expect(r.stdout).toMatch(/12 mit der Kette verglichen/);
  });

  it('trusting the bundle keys works but says it proves integrity only; --json is machine-readable', () => {
    const r = cli(join(dir, 'bundle.json'), '--trust-bundle-keys');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('proves integrity, not origin');
    const j = cli(join(dir, 'bundle.json'), '--trust-bundle-keys', '--json');
    expect(j.status).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: true, tenantId: TENANT, result: { ok: true, records: 12, headSeq: 12, firstBroken: null } });
  });

  it('a tampered bundle: exit 1 and the first broken seq', () => {
    const b = structuredClone(BUNDLE);
    b.records[6]!.canonical = b.records[6]!.canonical.replace('passed', 'failed');
    const r = cli(writeBundle('tampered.json', b), '--trust', join(dir, 'trusted.pem'));
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('first broken record seq 7 (hash-mismatch)');

    const cut = structuredClone(BUNDLE);
    cut.records.splice(9);
    const c = cli(writeBundle('cut.json', cut), '--trust', join(dir, 'trusted.pem'), '--json');
    expect(c.status).toBe(1);
    expect(JSON.parse(c.stdout).result.firstBroken).toMatchObject({ seq: 10, reason: 'missing-after-checkpoint' });
  });

  it('records signed by a key that is not trusted: exit 1 unknown-key', () => {
    const r = cli(join(dir, 'bundle.json'), '--trust', join(dir, 'foreign.pem'));
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('first broken record seq 1 (unknown-key)');
    expect(r.stdout).toMatch(/NICHT vertraut \/ NOT trusted/);
  });

  it('an attachment pointing at no record of the bundle: exit 1', () => {
    const b = structuredClone(BUNDLE);
    b.attachments.push({ recordHash: 'ff'.repeat(32), name: 'other.log', sha256: 'b2'.repeat(32), sizeBytes: 5 });
    const r = cli(writeBundle('attach.json', b), '--trust', join(dir, 'trusted.pem'));
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('is no record in the bundle');
  });

  it('usage errors exit 2: no trusted key, missing file, not a bundle', () => {
    const r = cli(join(dir, 'bundle.json'));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('No trusted key given');
    expect(r.stderr).toContain('proves only integrity, not origin');
    expect(cli(join(dir, 'missing.json'), '--trust-bundle-keys').status).toBe(2);
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ hello: 'world' }));
    const nb = cli(join(dir, 'other.json'), '--trust-bundle-keys');
    expect(nb.status).toBe(2);
    expect(nb.stderr).toContain('is not an evidence bundle');
    expect(cli().status).toBe(2);
  });
});
