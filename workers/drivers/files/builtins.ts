import { finding, type Finding } from '../../../services/findings.js';
import type { BuiltinChecks } from '../../../services/plans/plan.types.js';
import { DEFAULT_MAX_DROP_PERCENT, switchedOff, type BuiltinResult } from '../../checks/builtin.js';
import type { BuiltinOutcome } from '../driver.js';
import type { IndicatorResult, Tally } from './indicators.js';
import type { FilesProfile } from './inventory.js';

/** Default share of files with an extension the baseline did not have, from which a rename is a mass rename. */
export const DEFAULT_RENAME_SHARE = 20;
export const DEFAULT_ENCRYPTED_MIN = 3;
/** A tree (or folder) this small may change a lot without it meaning much. */
const MIN_FILES_FOR_DROP = 20;
const MIN_FILES_FOR_RENAME = 10;

/** Sizes and shares as a German reader writes them (the result texts are German, like the plan checks'). */
const bytes = (n: number) => {
  const [unit, f] = n >= 2 ** 30 ? ['GiB', 2 ** 30] : n >= 2 ** 20 ? ['MiB', 2 ** 20] : n >= 2 ** 10 ? ['KiB', 2 ** 10] : ['Bytes', 1];
  return `${(n / (f as number)).toLocaleString('de-DE', { maximumFractionDigits: f === 1 ? 0 : 1 })} ${unit}`;
};
const pct = (x: number) => x.toLocaleString('de-DE', { maximumFractionDigits: 1 });

const ex = (t: Tally) => (t.examples.length ? `: ${t.examples.join(', ')}${t.count > t.examples.length ? ', …' : ''}` : '');

/**
 * What every file restore is asked with nothing in the plan: data freshness
 * (the newest file against the RPO), volume drift against the baseline (the
 * tree and each top-level folder), ransomware indicators (notes, extensions,
 * files that look encrypted or are not what their name says) and mass
 * renames against the baseline's extensions. Names and numbers only.
 */
export function evaluateFilesBuiltins(input: {
  profile: FilesProfile; baseline?: FilesProfile; indicators: IndicatorResult; config: BuiltinChecks;
  backupCreatedAt: Date; rpoSeconds: number;
}): BuiltinOutcome {
  const { profile: p, baseline, indicators: ind, config } = input;
  const results: BuiltinResult[] = [];
  const findings: Finding[] = [];
  const off = switchedOff(results);

  if (!off('freshness', config.freshness?.off)) {
    const dumpTime = input.backupCreatedAt.getTime();
    if (!p.newestMtime) {
      results.push({ name: 'freshness', status: 'info', actual: 'keine Datei', message: 'keine Datei: das Alter der Daten ist nicht bestimmbar' });
    } else {
      const age = Math.max(0, Math.round((dumpTime - Date.parse(p.newestMtime)) / 1000));
      const actual = `neueste Datei ${p.newestMtime} (${Math.round(age / 3600)} h vor der Sicherung)`;
      if (age > input.rpoSeconds) {
        results.push({ name: 'freshness', status: 'warning', actual, message: `die neueste Datei ist älter als das RPO von ${Math.round(input.rpoSeconds / 3600)} h` });
        findings.push(finding('DATA_STALE_SUSPECTED', `the newest file of the restored tree (${p.newestMtime}) is older than the RPO (${Math.round(input.rpoSeconds / 3600)} h), though the backup is newer: was the share still being written?`));
      } else {
        results.push({ name: 'freshness', status: 'passed', actual, message: 'die Daten sind so aktuell, wie das RPO verlangt' });
      }
    }
  }

  if (!off('volume', config.volume?.off)) {
    const maxDrop = config.volume?.maxDropPercent ?? DEFAULT_MAX_DROP_PERCENT;
    if (!baseline) {
      results.push({ name: 'volume', status: 'info', actual: `${p.files} Dateien, ${bytes(p.bytes)}`, message: 'erstes Profil dieses Plans: als Basis gespeichert' });
    } else {
      const lost = (before: number, after: number) => before >= MIN_FILES_FOR_DROP && after < before * (1 - maxDrop / 100);
      const drops: string[] = [];
      if (lost(baseline.files, p.files)) drops.push(`the tree: ${baseline.files} -> ${p.files} files`);
      else if (baseline.files >= MIN_FILES_FOR_DROP && p.bytes < baseline.bytes * (1 - maxDrop / 100)) drops.push(`the tree: ${bytes(baseline.bytes)} -> ${bytes(p.bytes)}`);
      const now = new Map(p.top.map((t) => [t.name, t]));
      for (const t of baseline.top) {
        const n = now.get(t.name);
        if (lost(t.files, n?.files ?? 0)) drops.push(`${t.name}/: ${t.files} -> ${n?.files ?? 0} files`);
      }
      if (drops.length) {
        results.push({ name: 'volume', status: 'failed', actual: `${drops.length} Rückgang/Rückgänge`, message: drops.slice(0, 5).join('; ') });
        findings.push(finding('VOLUME_DROP', `more than ${maxDrop} % lost since the last passed run: ${drops.slice(0, 5).join('; ')}`));
      } else {
        results.push({ name: 'volume', status: 'passed', actual: `${p.files} Dateien, ${bytes(p.bytes)}`, message: `nichts hat mehr als ${maxDrop} % verloren` });
      }
    }
  }

  const rw = config.ransomware;
  if (!off('ransomware', rw?.off)) {
    const encryptedMin = rw?.encryptedMin ?? DEFAULT_ENCRYPTED_MIN;
    const hits: string[] = [];
    if (ind.notes.count) {
      hits.push(`${ind.notes.count} Erpresserschreiben`);
      findings.push(finding('RANSOM_NOTE_FOUND', `${ind.notes.count} file(s) named like ransom notes${ex(ind.notes)}`));
    }
    if (ind.extensions.count) {
      hits.push(`${ind.extensions.count} mit Ransomware-Endung`);
      findings.push(finding('RANSOM_EXTENSION_FOUND', `${ind.extensions.count} file(s) carry an extension ransomware appends${ex(ind.extensions)}`));
    }
    if (ind.encrypted.count >= encryptedMin) {
      hits.push(`${ind.encrypted.count} verschlüsselt wirkend`);
      findings.push(finding('ENCRYPTED_FILES_SUSPECTED', `${ind.encrypted.count} of ${ind.judged} file(s) of a known format look encrypted (near-random content or an encryption header where the format has its own signature)${ex(ind.encrypted)}`));
    }
    const oddOnes = ind.mismatch.count + (ind.encrypted.count < encryptedMin ? ind.encrypted.count : 0);
    if (oddOnes) {
      findings.push(finding('FILE_TYPE_MISMATCH', `${oddOnes} file(s) are not what their name says${ex(ind.mismatch.count ? ind.mismatch : ind.encrypted)}`));
    }
    const actual = `${ind.judged} von ${p.files} Dateien geprüft`;
    if (hits.length) results.push({ name: 'ransomware', status: 'failed', actual, message: hits.join(', ') });
    else if (oddOnes) results.push({ name: 'ransomware', status: 'warning', actual, message: `${oddOnes} Datei(en) passen nicht zu ihrer Endung` });
    else results.push({ name: 'ransomware', status: 'passed', actual, message: 'keine Erpresserschreiben, keine Ransomware-Endungen, nichts wirkt verschlüsselt' });
  }

  const rn = config.renames;
  if (!off('renames', rn?.off)) {
    const maxShare = rn?.maxSharePercent ?? DEFAULT_RENAME_SHARE;
    if (!baseline) {
      results.push({ name: 'renames', status: 'info', actual: `${p.extensions.length} Endungen`, message: 'erstes Profil dieses Plans: Endungen als Basis gespeichert' });
    } else {
      const known = new Set(baseline.extensions.map((e) => e.ext));
      const fresh = p.extensions.filter((e) => !known.has(e.ext));
      const newFiles = fresh.reduce((a, e) => a + e.files, 0);
      const share = p.files ? (100 * newFiles) / p.files : 0;
      const actual = `${newFiles} von ${p.files} Dateien mit neuer Endung (${pct(share)} %)`;
      if (newFiles >= MIN_FILES_FOR_RENAME && share >= maxShare) {
        const what = fresh.slice(0, 5).map((e) => `.${e.ext || '(none)'} ${e.files}`).join(', ');
        results.push({ name: 'renames', status: 'failed', actual, message: what });
        findings.push(finding('MASS_RENAME', `${newFiles} of ${p.files} files (${share.toFixed(1)} %) carry an extension the last passed run did not have: ${what}`));
      } else {
        results.push({ name: 'renames', status: 'passed', actual, message: `weniger als ${maxShare} % der Dateien mit neuer Endung` });
      }
    }
  }
  return { profile: p, results, findings };
}
