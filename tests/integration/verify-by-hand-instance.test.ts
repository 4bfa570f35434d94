/**
 * docs/verify-by-hand.md and the PDFs' verification annex, run for real
 * (bash, jq, sha256sum, base64, openssl, node) on what a test instance
 * exports: GET /evidence/bundle (records under `.records[]`) and
 * GET /runs/{id}/evidence (the record under `.record`). The run's record is
 * found in the bundle by kind and subjectId as the doc says, and both paths
 * give the same bytes, hash and a verified signature. (The doc's steps on a
 * generated bundle: verify-by-hand.test.ts.)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { TEST_TOKEN } from '../helpers/config.js';
import { verifyCommands } from '../../services/reports/pdf-common.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOC = readFileSync(join(ROOT, 'docs/verify-by-hand.md'), 'utf8');
let h: Harness;
let dir: string;
const runIds: string[] = [];
let bundle: { records: { seq: number; kind: string; subjectId: string; canonical: string; hash: string; keyId: string }[]; publicKeys: { keyId: string; pem: string }[] };
let evidence: { record: { seq: number; canonical: string; hash: string; signature: string; keyId: string }; key: { pem: string; fingerprint: string } };
let keyPem = '';
const hasJq = spawnSync('jq', ['--version']).status === 0;

function step(name: string): string {
  const m = new RegExp(`<!-- step:${name} -->\\s*\`\`\`bash\\n([\\s\\S]*?)\`\`\``).exec(DOC);
  if (!m) throw new Error(`docs/verify-by-hand.md has no step ${name}`);
  return m[1]!;
}
function bash(script: string, env: Record<string, string> = {}): { status: number | null; out: string } {
  const r = spawnSync('bash', ['-c', `set -euo pipefail\n${script}`], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  await h.putPlan(pgPlan('einwohner', 'x.dump', { title: 'Einwohnermeldewesen' }));
  // three runs: the one we check is in the middle, with records before and after it (plan.changed, the other runs)
  for (const [i, verdict] of (['passed', 'failed', 'passed'] as const).entries()) {
    runIds.push(await seedRun(h, { planId: 'einwohner', verdict, finishedAt: new Date(Date.UTC(2026, 10, 20 + i, 3)) }));
  }
  dir = mkdtempSync(join(tmpdir(), 'ef-by-hand-'));
  const b = await h.request('GET', '/api/v1/evidence/bundle');
  expect(b.status).toBe(200);
  bundle = b.body;
  const e = await h.request('GET', `/api/v1/runs/${runIds[1]}/evidence`);
  expect(e.status).toBe(200);
  evidence = e.body;
  // the exports as a client saves them (the bodies as sent)
  writeFileSync(join(dir, 'bundle.json'), JSON.stringify(bundle));
  writeFileSync(join(dir, 'evidence.json'), JSON.stringify(evidence));
  // the key from outside the bundle, as the doc asks: GET /evidence/keys
  const keys = await h.request('GET', '/api/v1/evidence/keys');
  keyPem = keys.body.items.find((k: { keyId: string }) => k.keyId === evidence.record.keyId).pem;
  writeFileSync(join(dir, 'key.pem'), keyPem);
}, 120_000);
afterAll(async () => {
  await h?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasJq)('verify-by-hand.md on a test instance\'s exports (jq installed)', () => {
  it('the bundle holds the run\'s record, found by kind and subjectId; evidence.json holds it under .record', () => {
    const idx = bundle.records.findIndex((r) => r.kind === 'run' && r.subjectId === runIds[1]);
    expect(idx).toBeGreaterThan(0);
    expect(bundle.records[idx]!.hash).toBe(evidence.record.hash);
    expect(bundle.records[idx]!.canonical).toBe(evidence.record.canonical);
    expect((evidence as unknown as { records?: unknown }).records).toBeUndefined();
  });

  it('step 0 finds the run\'s position I, with jq and with node, and null/-1 for a run the bundle lacks', () => {
    const idx = bundle.records.findIndex((r) => r.kind === 'run' && r.subjectId === runIds[1]);
    const jq = bash(step('find-run-jq'), { RUN_ID: runIds[1]! });
    expect(jq.status, jq.out).toBe(0);
    expect(jq.out.trim()).toBe(String(idx));
    const node = bash(step('find-run-node'), { RUN_ID: runIds[1]! });
    expect(node.status, node.out).toBe(0);
    expect(node.out.trim()).toBe(String(idx));
    expect(bash(step('find-run-jq'), { RUN_ID: '00000000-0000-4000-8000-000000000000' }).out.trim()).toBe('null');
    expect(bash(step('find-run-node'), { RUN_ID: '00000000-0000-4000-8000-000000000000' }).out.trim()).toBe('-1');
  });

  it('steps 0–6 from the bundle: the run\'s record hashes to its hash, the signature verifies, the chain link and envelope match', () => {
    rmSync(join(dir, 'record.json'), { force: true });
    const r = bash(['find-run-jq', 'extract-jq', 'hash', 'hash-compare-jq', 'signature-jq', 'fingerprint', 'verify', 'prev-jq'].map(step).join('\n'), { RUN_ID: runIds[1]! });
    expect(r.status, r.out).toBe(0);
    expect(readFileSync(join(dir, 'record.json'), 'utf8')).toBe(evidence.record.canonical);
    expect(r.out).toContain(`${evidence.record.hash}  record.json`);
    expect(r.out).toContain('hash OK');
    expect(r.out).toContain(`${evidence.key.fingerprint}  -`);
    expect(r.out).toContain('Signature Verified Successfully');
    const idx = bundle.records.findIndex((x) => x.subjectId === runIds[1]);
    expect(r.out.split('\n').filter((l) => l === bundle.records[idx - 1]!.hash)).toHaveLength(2);
  });

  it('the annex\'s variant in the doc (run.json) gives the same bytes and a verified signature', () => {
    for (const f of ['record.json', 'sig.bin', 'run.json']) rmSync(join(dir, f), { force: true });
    const r = bash(`${step('run-json-jq')}\n${step('hash')}\n${step('verify')}`, { RUN_ID: runIds[1]! });
    expect(r.status, r.out).toBe(0);
    expect(readFileSync(join(dir, 'record.json'), 'utf8')).toBe(evidence.record.canonical);
    expect(r.out).toContain('Signature Verified Successfully');
  });

  it('the key from the bundle (key-jq) is the one GET /evidence/keys gives', () => {
    const r = bash(`${step('find-run-jq')}\n${step('key-jq')}`, { RUN_ID: runIds[1]! });
    expect(r.status, r.out).toBe(0);
    expect(readFileSync(join(dir, 'key.pem'), 'utf8').trim()).toBe(keyPem.trim());
  });

  it('the evidence.json steps (.record.canonical, .record.hash, .record.signature) give the same bytes and verify', () => {
    rmSync(join(dir, 'record.json'), { force: true });
    rmSync(join(dir, 'sig.bin'), { force: true });
    const r = bash(step('evidence-jq'));
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('hash OK');
    expect(r.out).toContain('Signature Verified Successfully');
    expect(readFileSync(join(dir, 'record.json'), 'utf8')).toBe(evidence.record.canonical);
  });

  it('failing input: the path of one answer on the other gives nothing (.records[0] in evidence.json, .record in a bundle)', () => {
    expect(bash("jq -e -j '.records[0].canonical' evidence.json > /dev/null").status).not.toBe(0);
    expect(bash("jq -e -j '.record.canonical' bundle.json > /dev/null").status).not.toBe(0);
    // and the bundle's first record is not the run's: .records[0] is the plan's creation (audit)
    expect(bundle.records[0]!.kind).not.toBe('run');
  });

  it('without jq: node and python3 extract the found record byte-exactly', () => {
    for (const variant of ['node', 'python']) {
      rmSync(join(dir, 'record.json'), { force: true });
      const r = bash([variant === 'node' ? 'find-run-node' : 'find-run-jq', `extract-${variant}`, 'hash', 'verify'].map(step).join('\n'), { RUN_ID: runIds[1]! });
      expect(r.status, r.out).toBe(0);
      expect(readFileSync(join(dir, 'record.json'), 'utf8')).toBe(evidence.record.canonical);
      expect(r.out).toContain('Signature Verified Successfully');
    }
  });
});

describe.skipIf(!hasJq)('the PDFs\' verification annex, run for real', () => {
  it('the run protocol\'s commands find the run\'s record in evidence.json and in the bundle, the same bytes, and verify', async () => {
    const cmd = verifyCommands({ runId: runIds[1] });
    const save = cmd.save.split('\n');
    const sig = cmd.sig.split('\n');
    expect(cmd.export.split('\n')[0]).toBe(`RUN=${runIds[1]}`);
    // from evidence.json: the first lines; from the bundle: the run's record taken out as run.json, then the same paths
    for (const [saveLines, sigLine] of [[save.slice(0, 1), sig[0]!], [save.slice(1), sig[1]!]] as const) {
      for (const f of ['record.json', 'sig.bin', 'run.json']) rmSync(join(dir, f), { force: true });
      const r = bash(`${cmd.export.split('\n')[0]}\n${saveLines.join('\n')}\n${cmd.hash}\n${sigLine}\n${cmd.verify}`);
      expect(r.status, `${saveLines.join('\n')}\n${r.out}`).toBe(0);
      expect(readFileSync(join(dir, 'record.json'), 'utf8')).toBe(evidence.record.canonical);
      expect(r.out).toContain(`${evidence.record.hash}  record.json`);
      expect(r.out).toContain(`${evidence.key.fingerprint}  -`);
      expect(r.out).toContain('Signature Verified Successfully');
    }
    // the protocol prints exactly these commands
    const pdf = await h.app.inject({ method: 'GET', url: `/api/v1/runs/${runIds[1]}/protocol.pdf`, headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    writeFileSync(join(dir, 'p.pdf'), pdf.rawPayload);
    const text = execFileSync('pdftotext', ['-layout', join(dir, 'p.pdf'), '-']).toString().replace(/\s+/g, '');
    for (const line of [...cmd.export.split('\n'), ...save, ...sig]) expect(text, line).toContain(line.replace(/\s+/g, ''));
    expect(text).toContain('.record');
    expect(text).toContain('.records[]');
  });

  it('the audit report\'s commands take the chain head, .records[-1], whose hash the report names', async () => {
    const cmd = verifyCommands({});
    const r = bash(`${cmd.save}\n${cmd.hash}\n${cmd.sig}\n${cmd.verify}`);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`${bundle.records.at(-1)!.hash}  record.json`);
    expect(r.out).toContain('Signature Verified Successfully');
    const res = await h.request('GET', '/api/v1/reports/audit?from=2026-11-01&to=2026-11-30&format=json');
    // the report was made after the export: its head is later, and the bundle's last record is one the report's chain holds
    expect(res.body.ledger.headSeq).toBeGreaterThanOrEqual(bundle.records.at(-1)!.seq);
  });
});
