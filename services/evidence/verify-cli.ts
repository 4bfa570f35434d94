/**
 * `npm run evidence:verify -- bundle.json [--trust key.pem ...] [--trust-bundle-keys] [--checkpoint file ...] [--json]`
 *
 * `--checkpoint` adds signed checkpoints kept outside the server (the daily
 * checkpoint mails' attachments): the bundle must then reach and match them,
 * even if the server's own checkpoint folder was rewritten. A checkpoint of
 * another ledger (another database's chain with the same tenant id) is listed
 * as foreign and not compared (docs/decisions/015-ledger-id.md).
 *
 * Verifies an evidence bundle completely offline: no database, no server, no
 * network. Exit 0: the chain is valid; 1: it is broken (the first broken
 * record is named) or attachments do not match; 2: usage error.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BUNDLE_FORMAT, fingerprintOf, keyIdOf, parseEnvelope, type Bundle, type LedgerRecord } from './ledger-format.js';
import { verifyChain, type Reason, type VerifyResult } from './verify.js';

const USAGE = 'usage: npm run evidence:verify -- bundle.json [--trust key.pem ...] [--trust-bundle-keys] [--checkpoint file ...] [--json]';

const NO_TRUST = `Kein vertrauenswürdiger Schlüssel angegeben. / No trusted key given.
  --trust key.pem      den öffentlichen Schlüssel, den Sie unabhängig vom Bündel erhalten haben
                       (\`npm run keys -- show\` auf dem Server, Fingerabdruck in den signierten Berichten);
                       the public key you obtained independently of the bundle
                       (\`npm run keys -- show\` on the server, the fingerprint printed in every report).
  --trust-bundle-keys  den Schlüsseln im Bündel selbst vertrauen. Das beweist nur die Unversehrtheit
                       (Integrität), nicht die Herkunft: wer ein Bündel fälscht, signiert es mit einem
                       eigenen Schlüssel und legt diesen bei. Vergleichen Sie dann die ausgegebenen
                       Fingerabdrücke mit denen in Ihren Berichten.
                       trust the keys inside the bundle. That proves only integrity, not origin: whoever
                       forges a bundle signs it with a key of their own and includes it. Then compare the
                       printed fingerprints with the ones in your reports.`;

const REASON_DE: Record<Reason, string> = {
  'hash-mismatch': 'Inhalt verändert: der Hash stimmt nicht',
  'envelope-mismatch': 'Felder des Eintrags weichen von der signierten Hülle ab',
  'seq-gap': 'Eintrag fehlt oder Reihenfolge falsch',
  'prev-hash-mismatch': 'Verkettung unterbrochen: prevHash passt nicht zum vorigen Eintrag',
  'unknown-key': 'mit einem nicht vertrauenswürdigen Schlüssel signiert',
  'bad-signature': 'Signatur ungültig',
  'missing-after-checkpoint': 'Einträge nach einem signierten Prüfpunkt fehlen (Ende der Kette gelöscht)',
  'checkpoint-mismatch': 'Prüfpunkt widerspricht der Kette oder ist ungültig signiert',
};

class UsageError extends Error {}

interface KeyInfo {
  keyId: string;
  fingerprint: string;
  trusted: boolean;
  source: string;
  records: number;
}

const out = (line = '') => process.stdout.write(`${line}\n`);
const groups = (hex: string) => hex.match(/.{1,4}/g)?.join(' ') ?? hex;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function readBundle(file: string): Bundle {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`Bündel nicht lesbar / cannot read bundle ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let b: unknown;
  try {
    b = JSON.parse(text);
  } catch {
    throw new UsageError(`${file} ist kein JSON / is not JSON`);
  }
  if (!isObject(b) || b.format !== BUNDLE_FORMAT || b.version !== 1 || typeof b.tenantId !== 'string' || (b.ledgerId !== undefined && typeof b.ledgerId !== 'string')
    || typeof b.anchorPrevHash !== 'string' || !Array.isArray(b.records) || !b.records.every(isObject)) {
    throw new UsageError(`${file} ist kein Nachweisbündel / is not an evidence bundle (format "${BUNDLE_FORMAT}", version 1, tenantId, anchorPrevHash, records[])`);
  }
  for (const f of ['publicKeys', 'checkpoints', 'attachments'] as const) {
    if (b[f] === undefined) b[f] = [];
    if (!Array.isArray(b[f]) || !(b[f] as unknown[]).every(isObject)) throw new UsageError(`${file}: ${f} ist keine Liste von Objekten / is not a list of objects`);
  }
  return b as unknown as Bundle;
}

/** Checkpoints from a file: one JSON object {canonical, signature, keyId} per line (a checkpoint mail's attachment, or a server checkpoint file). */
function readCheckpoints(file: string, tenantId: string): Bundle['checkpoints'] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--checkpoint ${file}: nicht lesbar / cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const out: Bundle['checkpoints'] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    let cp: unknown;
    try {
      cp = JSON.parse(line);
    } catch {
      throw new UsageError(`--checkpoint ${file}:${i + 1}: kein JSON / not JSON`);
    }
    if (!isObject(cp) || typeof cp.canonical !== 'string' || typeof cp.signature !== 'string' || typeof cp.keyId !== 'string') {
      throw new UsageError(`--checkpoint ${file}:${i + 1}: kein Prüfpunkt / not a checkpoint {canonical, signature, keyId}`);
    }
    // another tenant's checkpoint says nothing about this chain: refuse rather than ignore
    const body = (() => { try { return JSON.parse(cp.canonical) as { tenantId?: unknown }; } catch { return {}; } })();
    if (body.tenantId !== tenantId) throw new UsageError(`--checkpoint ${file}:${i + 1}: Prüfpunkt eines anderen Mandanten / checkpoint of another tenant`);
    out.push(cp as unknown as Bundle['checkpoints'][number]);
  }
  return out;
}

function loadTrust(files: string[], bundle: Bundle, trustBundle: boolean, warnings: string[]): { trusted: Map<string, KeyObject>; keys: Map<string, KeyInfo> } {
  const trusted = new Map<string, KeyObject>();
  const keys = new Map<string, KeyInfo>();
  const add = (k: KeyObject, source: string, trust: boolean) => {
    const keyId = keyIdOf(k);
    if (trust) trusted.set(keyId, k);
    const known = keys.get(keyId);
    if (known) {
      known.trusted ||= trust;
      if (trust && !known.source.startsWith('--trust')) known.source = source;
    } else keys.set(keyId, { keyId, fingerprint: fingerprintOf(k), trusted: trust, source, records: 0 });
  };
  for (const f of files) {
    let k: KeyObject;
    try {
      k = createPublicKey(readFileSync(f));
    } catch (err) {
      throw new UsageError(`--trust ${f}: kein lesbarer öffentlicher Schlüssel / not a readable public key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (k.asymmetricKeyType !== 'ed25519') throw new UsageError(`--trust ${f}: kein Ed25519-Schlüssel / not an Ed25519 key (${k.asymmetricKeyType})`);
    add(k, `--trust ${f}`, true);
  }
  for (const pk of bundle.publicKeys) {
    let k: KeyObject;
    try {
      k = createPublicKey(String(pk.pem));
    } catch {
      warnings.push(`Schlüssel ${String(pk.keyId)} im Bündel ist unlesbar / key ${String(pk.keyId)} in the bundle is unreadable`);
      continue;
    }
    if (keyIdOf(k) !== pk.keyId) {
      warnings.push(`Schlüssel im Bündel heißt ${String(pk.keyId)}, ist aber ${keyIdOf(k)} / a key in the bundle is named ${String(pk.keyId)} but is ${keyIdOf(k)}`);
    }
    add(k, 'Bündel / bundle', trustBundle && k.asymmetricKeyType === 'ed25519');
  }
  return { trusted, keys };
}

/** attachments[] must name records of the bundle and be listed in the signed payload of that record. */
function checkAttachments(bundle: Bundle): string[] {
  const byHash = new Map<string, LedgerRecord>(bundle.records.map((r) => [r.hash, r]));
  const problems: string[] = [];
  for (const a of bundle.attachments) {
    const rec = byHash.get(a.recordHash);
    if (!rec) {
      problems.push(`Anhang / attachment "${String(a.name)}": recordHash ${String(a.recordHash)} ist kein Eintrag des Bündels / is no record in the bundle`);
      continue;
    }
    let listed: unknown;
    try {
      listed = parseEnvelope(rec).payload.attachments;
    } catch {
      listed = undefined;
    }
    const signed = Array.isArray(listed) ? listed.filter(isObject) : [];
    const match = signed.some((s) => s.name === a.name && s.sha256 === a.sha256 && (s.sizeBytes === undefined || Number(s.sizeBytes) === Number(a.sizeBytes)));
    if (!match) problems.push(`Anhang / attachment "${String(a.name)}" (sha256 ${String(a.sha256)}) steht nicht im signierten Eintrag seq ${rec.seq} / is not listed in the signed record seq ${rec.seq}`);
  }
  return problems;
}

function report(file: string, bundle: Bundle, result: VerifyResult, keys: KeyInfo[], attachmentProblems: string[], warnings: string[], bundleTrusted: boolean): void {
  const first = bundle.records[0];
  const last = bundle.records.at(-1);
  out(`Ernstfall-Nachweisbündel / evidence bundle: ${file}`);
  out(`  Mandant / tenant: ${bundle.tenantId}, exportiert / exported: ${String(bundle.exportedAt)}`);
  out(`  Ledger: ${result.ledgerId ?? bundle.ledgerId ?? '– (vor / before 0016)'}${result.ledgerId ? ' (aus den signierten Einträgen / from the signed records)' : bundle.ledgerId ? ' (laut Bündel, kein Eintrag nennt es / as the bundle says, no record names it)' : ''}`);
  if (first && last) out(`  Einträge / records: seq ${first.seq}–${last.seq}, Anker-prevHash / anchor prevHash ${bundle.anchorPrevHash}`);
  if (first && first.seq > 1) {
    out(`  Segment ab seq ${first.seq}: den Anker mit dem Hash von seq ${first.seq - 1} aus einem früheren Bündel oder Bericht vergleichen`);
    out(`  segment from seq ${first.seq}: compare the anchor with the hash of seq ${first.seq - 1} from an earlier bundle or report`);
  }
  out('Schlüssel / keys (Fingerabdruck = sha256 über SPKI-DER / fingerprint = sha256 of the SPKI DER):');
  for (const k of keys) {
    const state = k.trusted ? `vertraut / trusted (${k.source})` : `NICHT vertraut / NOT trusted (${k.source})`;
    out(`  ${k.keyId}  ${/^[0-9a-f]{64}$/.test(k.fingerprint) ? `sha256:${groups(k.fingerprint)}` : k.fingerprint}`);
    out(`      ${state}, signiert / signs ${k.records} Einträge / records`);
  }
  if (bundleTrusted) out('  Hinweis / note: den Schlüsseln des Bündels vertraut – beweist Integrität, nicht Herkunft; Fingerabdrücke mit Ihren Berichten vergleichen / bundle keys trusted: proves integrity, not origin; compare the fingerprints with your reports');
  const cps = result.checkpoints;
  out(`Prüfpunkte / checkpoints: ${bundle.checkpoints.length} im Bündel / in the bundle, ${cps.checked} mit der Kette verglichen / compared with the chain, neuester / newest seq ${cps.newestSeq ?? '–'}`);
  if (bundle.checkpoints.length === 0) out('  ohne Prüfpunkte ist das Löschen der neuesten Einträge nicht erkennbar / without checkpoints, deleting the newest records cannot be detected');
  for (const f of result.foreign) {
    out(`  fremd / foreign-checkpoint: ${f.count} Prüfpunkt(e) bis seq ${f.newestSeq} gehören zu Ledger ${f.ledgerId}, nicht zu dieser Kette – nicht verglichen, ohne Einfluss auf das Ergebnis`);
    out(`      ${f.message}`);
  }
  out(`Anhänge / attachments: ${bundle.attachments.length} (Inhalte nicht im Bündel / contents not in the bundle), ${attachmentProblems.length ? `${attachmentProblems.length} fehlerhaft / inconsistent` : 'alle zu Einträgen des Bündels / all refer to records in the bundle'}`);
  for (const p of attachmentProblems) out(`  ${p}`);
  for (const w of warnings) out(`Warnung / warning: ${w}`);
  out();
  const b = result.firstBroken;
  if (b) {
    out(`Nachweiskette GEBROCHEN / Evidence chain BROKEN: erster fehlerhafter Eintrag / first broken record seq ${b.seq} (${b.reason})`);
    out(`  ${REASON_DE[b.reason]} / ${b.message}`);
  } else {
    out(`Nachweiskette gültig / Evidence chain valid: ${result.records} Einträge / records, Kopf / head seq ${result.headSeq ?? '–'} hash ${result.headHash ?? '–'}`);
    if (attachmentProblems.length) out('Bündel inkonsistent / bundle inconsistent: Anhangsliste passt nicht / attachment list does not match');
  }
}

function main(argv: string[]): number {
  let args;
  try {
    args = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        trust: { type: 'string', multiple: true }, 'trust-bundle-keys': { type: 'boolean' }, checkpoint: { type: 'string', multiple: true },
        json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (args.values.help) {
    out(USAGE);
    return 0;
  }
  const file = args.positionals[0];
  if (!file || args.positionals.length > 1) throw new UsageError(file ? 'genau ein Bündel / exactly one bundle' : 'Bündeldatei fehlt / bundle file missing');
  const trustFiles = args.values.trust ?? [];
  const trustBundle = args.values['trust-bundle-keys'] === true;
  const bundle = readBundle(file);
  if (trustFiles.length === 0 && !trustBundle) throw new UsageError(NO_TRUST);
  for (const f of args.values.checkpoint ?? []) bundle.checkpoints.push(...readCheckpoints(f, bundle.tenantId));

  const warnings: string[] = [];
  const { trusted, keys } = loadTrust(trustFiles, bundle, trustBundle, warnings);
  for (const r of bundle.records) {
    const id = String(r.keyId);
    const k = keys.get(id) ?? { keyId: id, fingerprint: 'unbekannt / unknown (nicht im Bündel / not in the bundle)', trusted: false, source: '–', records: 0 };
    k.records++;
    keys.set(id, k);
  }
  const result = verifyChain(bundle.records, {
    trustedKeys: trusted, anchorPrevHash: bundle.anchorPrevHash, // the segment starts at the first record's seq
    checkpoints: bundle.checkpoints, tenantId: bundle.tenantId, ledgerId: bundle.ledgerId,
  });
  const attachmentProblems = checkAttachments(bundle);
  const ok = result.ok && attachmentProblems.length === 0;
  if (args.values.json) {
    out(JSON.stringify({
      ok, bundle: file, tenantId: bundle.tenantId, ledgerId: result.ledgerId ?? bundle.ledgerId ?? null, exportedAt: bundle.exportedAt, anchorPrevHash: bundle.anchorPrevHash,
      result, keys: [...keys.values()], attachments: { count: bundle.attachments.length, problems: attachmentProblems }, warnings,
    }, null, 2));
  } else {
    report(file, bundle, result, [...keys.values()], attachmentProblems, warnings, trustBundle);
  }
  return ok ? 0 : 1;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  // exit 1 means "broken chain": anything unexpected is reported as a failure to verify instead
  console.error(err instanceof UsageError ? err.message : `Prüfung nicht möglich / cannot verify: ${(err as Error).stack ?? String(err)}`);
  console.error(USAGE);
  process.exitCode = 2;
}
