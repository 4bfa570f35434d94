import type { Lang } from './report.types.js';

/**
 * The controls ernstfall produces evidence for: one list, shown in every
 * report (see docs/ARCHITECTURE.md "Evidence ledger"). `id` is how plans reference a control
 * (`controls: [BSI-CON.3.A15, ISO27001-A.8.13]`), `ref` how the standard
 * numbers it. Titles follow the official German texts (IT-Grundschutz-
 * Kompendium Edition 2023, Grundschutz++ Anwenderkatalog, DIN EN ISO/IEC
 * 27001:2024, DIN EN ISO 22301:2020).
 */
export interface Control {
  id: string;
  ref: string;
  framework: string;
  title: { de: string; en: string };
  /** What in ernstfall evidences it, in one line. */
  what: { de: string; en: string };
}

const GS = 'BSI IT-Grundschutz';
const GSPP = 'BSI Grundschutz++';
const ISO27001 = 'ISO/IEC 27001:2022';
const ISO22301 = 'ISO 22301:2019';

export const CONTROLS: readonly Control[] = [
  {
    id: 'BSI-CON.3.A15', ref: 'CON.3.A15', framework: GS,
    title: { de: 'Regelmäßiges Testen der Datensicherungen', en: 'Regular testing of data backups' },
    what: {
      de: 'Wiederherstellungstests je Plan mit Ergebnis, gemessener RTO und Prüfungen (erwartet/tatsächlich) in den Laufdatensätzen',
      en: 'Restore tests per plan with verdict, measured RTO and checks (expected/actual) in the run records',
    },
  },
  {
    id: 'BSI-CON.3.A4', ref: 'CON.3.A4', framework: GS,
    title: { de: 'Erstellung von Datensicherungsplänen', en: 'Creation of data backup plans' },
    what: {
      de: 'Wiederherstellungspläne als Code (Quelle, Verfahren, Reihenfolge, Prüfungen), versioniert; jede Planversion im Nachweis',
      en: 'Restore plans as code (source, procedure, order, checks), versioned; each plan version in the evidence',
    },
  },
  {
    id: 'BSI-CON.3.A6', ref: 'CON.3.A6', framework: GS,
    title: { de: 'Entwicklung eines Datensicherungskonzepts', en: 'Development of a data backup concept' },
    what: {
      de: 'RPO je System im Plan; Alter der Sicherung bei jedem Test gegen das RPO gemessen',
      en: 'RPO per system in the plan; backup age measured against the RPO in every test',
    },
  },
  {
    id: 'BSI-DER.4.A10', ref: 'DER.4.A10', framework: GS,
    title: { de: 'Tests und Notfallübungen', en: 'Tests and emergency exercises' },
    what: {
      de: 'Zeitplan je Plan (Pflichtintervall, Karenz), Erinnerungen und Eskalation bei überfälligen Tests',
      en: 'Schedule per plan (required interval, grace), reminders and escalation for overdue tests',
    },
  },
  {
    id: 'BSI-DER.4.A12', ref: 'DER.4.A12', framework: GS,
    title: { de: 'Dokumentation im Notfallmanagement-Prozess', en: 'Documentation in the emergency management process' },
    what: {
      de: 'Wiederherstellungsprotokoll je Lauf und Prüfbericht je Zeitraum aus der signierten Nachweiskette',
      en: 'Restore protocol per run and audit report per period from the signed evidence chain',
    },
  },
  {
    id: 'BSI-DER.4.A14', ref: 'DER.4.A14', framework: GS,
    title: { de: 'Regelmäßige Überprüfung und Verbesserung der Notfallmaßnahmen', en: 'Regular review and improvement of emergency measures' },
    what: {
      de: 'Abweichungen und Folgemaßnahmen als Datensätze; eine Maßnahme wird erst durch einen bestandenen Nachtest geschlossen',
      en: 'Deviations and follow-up measures as records; a measure is closed only by a passed re-test',
    },
  },
  {
    id: 'BSI-NOT.4.15', ref: 'NOT.4.15', framework: GSPP,
    title: { de: 'Vorgehen zur Wiederherstellung', en: 'Restore procedure' },
    what: {
      de: 'Das Vorgehen steht im Plan und wird bei jedem Test ausgeführt; die Schritte mit Zeiten stehen im Protokoll',
      en: 'The procedure is in the plan and executed in every test; the steps with timings are in the protocol',
    },
  },
  {
    id: 'BSI-NOT.4.16', ref: 'NOT.4.16', framework: GSPP,
    title: { de: 'Test der Datensicherung', en: 'Testing the backup' },
    what: {
      de: 'Größe und SHA-256 der Sicherung, Lesbarkeit und Vollständigkeit des Archivs bei jedem Test geprüft',
      en: 'Backup size and SHA-256, archive readability and completeness checked in every test',
    },
  },
  {
    id: 'BSI-NOT.4.16.1', ref: 'NOT.4.16.1', framework: GSPP,
    title: { de: 'Test der Wiederherstellung', en: 'Testing the restore' },
    what: {
      de: 'Vollständige Wiederherstellung in eine isolierte Sandbox, Datenprüfungen (Zeilenzahlen, Canary) gegen Erwartungswerte',
      en: 'Full restore into an isolated sandbox, data checks (row counts, canary) against expected values',
    },
  },
  {
    id: 'BSI-NOT.4.17', ref: 'NOT.4.17', framework: GSPP,
    title: { de: 'Anwendungstest', en: 'Application test' },
    what: {
      de: 'Fachliche Prüfabfragen gegen die wiederhergestellte Datenbank (Plan-Prüfungen) mit Ergebnis je Prüfung',
      en: 'Application-level queries against the restored database (plan checks) with a result per check',
    },
  },
  {
    id: 'BSI-PERS.2.3.4', ref: 'PERS.2.3.4', framework: GSPP,
    title: { de: 'Rollentrennung – Änderungen und Tests', en: 'Separation of roles – changes and tests' },
    what: {
      de: 'Vier-Augen-Freigabe: Prüfdatensätze mit Prüfer/in, der/die den Test nicht ausgelöst hat',
      en: 'Four-eyes review: review records by a reviewer who did not trigger the test',
    },
  },
  {
    id: 'ISO27001-A.8.13', ref: 'A.8.13', framework: ISO27001,
    title: { de: 'Sicherung von Information', en: 'Information backup' },
    what: {
      de: 'Regelmäßige, automatisierte Wiederherstellungstests der Sicherungen mit Ergebnis je System',
      en: 'Regular automated restore tests of the backups with a verdict per system',
    },
  },
  {
    id: 'ISO27001-A.5.30', ref: 'A.5.30', framework: ISO27001,
    title: { de: 'IKT-Bereitschaft für Business-Continuity', en: 'ICT readiness for business continuity' },
    what: {
      de: 'Gemessene Wiederherstellungszeit und Alter der Sicherung gegen RTO und RPO je System, mit Verlauf',
      en: 'Measured restore time and backup age against RTO and RPO per system, with trend',
    },
  },
  {
    id: 'ISO27001-A.5.33', ref: 'A.5.33', framework: ISO27001,
    title: { de: 'Schutz von Aufzeichnungen', en: 'Protection of records' },
    what: {
      de: 'Append-only-Nachweiskette mit Hash-Verkettung, Ed25519-Signaturen und externen Checkpoints',
      en: 'Append-only evidence chain with hash chaining, Ed25519 signatures and external checkpoints',
    },
  },
  {
    id: 'ISO22301-8.5', ref: '8.5', framework: ISO22301,
    title: { de: 'Übungsprogramm', en: 'Exercise programme' },
    what: {
      de: 'Geplante, wiederkehrende Wiederherstellungstests mit Auswertung, Abweichungen und Folgemaßnahmen',
      en: 'Planned, recurring restore tests with evaluation, deviations and follow-up measures',
    },
  },
];

/** Finds a control by plan id (`BSI-CON.3.A15`), display id (`BSI IT-Grundschutz CON.3.A15`) or number (`CON.3.A15`). */
export function findControl(idOrRef: string): Control | undefined {
  const key = idOrRef.trim();
  return CONTROLS.find((c) => c.id === key || `${c.framework} ${c.ref}` === key) ?? CONTROLS.find((c) => c.ref === key);
}

/** The rows for AuditReportData.controls in one language. */
export function controlRows(lang: Lang): { id: string; title: string; evidence: string }[] {
  return CONTROLS.map((c) => ({ id: `${c.framework} ${c.ref}`, title: c.title[lang], evidence: c.what[lang] }));
}
