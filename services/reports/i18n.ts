import type { Lang, VerdictName } from './report.types.js';

/**
 * Report wording (German by default, English on request) and formatting.
 * Every time is shown in Europe/Berlin with its zone (MEZ/MESZ, CET/CEST), so
 * the repeated hour on the autumn change stays unambiguous.
 */
export const REPORT_TIME_ZONE = 'Europe/Berlin';

const de = {
  generatedAt: 'erstellt am', page: 'Seite {x} von {y}', record: 'Datensatz', records: 'Datensätze', recordCount: 'Anzahl Datensätze', yes: 'ja', no: 'nein', none: 'keine',
  notMeasured: 'nicht gemessen', met: 'eingehalten', notMet: 'nicht eingehalten', tenant: 'Mandant', target: 'Ziel',
  measured: 'gemessen', noVerdict: 'kein Ergebnis (Lauf nicht abgeschlossen)', name: 'Name', date: 'Datum',
  signature: 'Unterschrift', role: 'Funktion', status: 'Status', title: 'Titel',
  // run protocol
  runTitle: 'Wiederherstellungsprotokoll', runSubject: 'Nachweis eines Wiederherstellungstests',
  secIdentity: 'Angaben zum Test', runId: 'Lauf-ID', plan: 'Plan', planVersion: 'Planversion', trigger: 'Auslöser',
  triggeredBy: 'ausgelöst von', queuedAt: 'eingereiht', startedAt: 'gestartet', finishedAt: 'beendet',
  secSystem: 'System und Prozess', system: 'System', process: 'Prozess', protectionNeed: 'Schutzbedarf',
  controls: 'Anforderungen', secTargets: 'Ziele', rto: 'RTO (maximale Wiederherstellungszeit)',
  rpo: 'RPO (maximales Alter der Sicherung)', secBackup: 'Datensicherung', path: 'Pfad', format: 'Format',
  size: 'Größe', createdAt: 'erstellt', dumpVersion: 'Dump-Version', snapshot: 'Snapshot (restic)', archive: 'Archiv (borg)', backupAge: 'Alter beim Test',
  secSandbox: 'Umgebung und Isolation', image: 'Image', imageId: 'Image-ID', network: 'Netzwerk',
  capDrop: 'Capabilities entfernt', capAdd: 'Capabilities hinzugefügt', limits: 'Grenzen',
  memory: 'Arbeitsspeicher', cpus: 'CPUs', pids: 'Prozesse', transfer: 'Übergabe der Sicherung',
  containerId: 'Container-ID', teardown: 'Abbau', teardownText: 'Container entfernt am {at}; Entfernung geprüft: {ok}',
  noSandbox: 'Es wurde keine Sandbox gestartet.', secPhases: 'Ablauf und Zeiten', phase: 'Phase', start: 'Beginn',
  duration: 'Dauer', rtoNote: 'Gemessene RTO = Beginn „Abruf der Sicherung“ bis Ende „Prüfung der Daten“.',
  secSteps: 'Ablauf der Schritte (manueller Test)', stepCol: 'Schritt', stepResult: 'Ergebnis', stepAt: 'Zeitpunkt', stepBy: 'Person', stepNote: 'Notiz', stepEvidence: 'Nachweise',
  stepOpen: 'offen', stepOk: 'erledigt', stepDeviation: 'Abweichung', stepNotDone: 'nicht erledigt',
  manualRtoNote: 'Gemessene RTO = Beginn des Tests bis zum Schritt, an dem der Dienst wieder da ist (von Menschen ausgeführt, Zeiten von der Uhr des Servers).',
  completedBy: 'Abgeschlossen von', closingNote: 'Abschlussnotiz',
  secExercise: 'Übung', exerciseFormat: 'Form', scenario: 'Szenario', participants: 'Teilnehmende', secObservations: 'Ablauf der Übung (Beobachtungen)',
  obsKind: 'Art', obsText: 'Beobachtung', obsMeasure: 'Maßnahme', obsNote: 'Beobachtung', obsFinding: 'Feststellung', obsRestored: 'Dienst wieder verfügbar',
  exerciseRtoNote: 'Gemessene RTO = Beginn der Übung bis „Dienst wieder verfügbar“; jede Feststellung ist eine Folgemaßnahme (unten).',
  secAttachments: 'Anhänge im Nachweis', attachmentName: 'Datei', noAttachments: 'Keine Anhänge.',
  secChecks: 'Prüfungen', check: 'Prüfung', kind: 'Art', expected: 'erwartet', actual: 'tatsächlich',
  secBuiltin: 'Eingebaute Prüfungen (ohne Angaben im Plan)', builtinBaseline: 'Verglichen mit Lauf {run} ({source}).', builtinNoBaseline: 'Erster Lauf mit Profil: als Basis gespeichert.',
  message: 'Meldung', noChecks: 'Keine Prüfungen ausgeführt.', secFindings: 'Feststellungen', code: 'Code',
  severity: 'Schweregrad', noFindings: 'Keine Feststellungen.', secResult: 'Ergebnis', verdict: 'Ergebnis',
  secReview: 'Freigabe (Vier-Augen-Prinzip)', decision: 'Entscheidung', comment: 'Kommentar', reviewer: 'Prüfer/in',
  at: 'Zeitpunkt', recordHash: 'Datensatz-Hash',
  sameReviewer: 'Achtung: Prüfer/in hat den Test selbst ausgelöst – Vier-Augen-Prinzip nicht erfüllt.',
  noReview: 'Noch keine Freigabe erfasst. Freigabe durch eine zweite Person (nicht die auslösende):',
  secMeasures: 'Folgemaßnahmen', measure: 'Maßnahme', owner: 'verantwortlich', due: 'fällig bis',
  closedBy: 'geschlossen durch Lauf', noMeasures: 'Keine Folgemaßnahmen.', secEvidence: 'Nachweis (Ledger)',
  secActivity: 'Protokoll der Tätigkeiten', activityAction: 'Tätigkeit', actor: 'durch', activitySubject: 'Gegenstand',
  noActivity: 'Keine protokollierten Tätigkeiten im Zeitraum.', activityNote: 'Aus dem signierten Ledger (Datensätze der Art „audit“): An- und Abmeldungen, Planänderungen, manuelle Läufe, Exporte, Token und Pausen.',
  seq: 'Datensatz-Nr.', hash: 'Hash (SHA-256)', prevHash: 'vorheriger Hash', sigB64: 'Signatur (Ed25519, Base64)',
  keyId: 'Schlüssel-ID', fingerprint: 'Fingerabdruck (SHA-256)', retainUntil: 'aufzubewahren bis',
  noRecord: 'Für diesen Lauf liegt noch kein Ledger-Datensatz vor.', checkpoint: 'Neuester Checkpoint',
  noCheckpoint: 'Kein Checkpoint vorhanden.', keys: 'Schlüssel', howTo: 'So prüfen Sie diesen Nachweis',
  // audit report
  auditTitle: 'Prüfbericht Wiederherstellungstests', auditSubject: 'Nachweis regelmäßiger Wiederherstellungstests',
  period: 'Berichtszeitraum', periodNote: 'ganze Tage, 0 bis 24 Uhr deutscher Zeit (MEZ/MESZ)', secSummary: 'Management-Zusammenfassung', inTime: 'Pläne fristgerecht getestet',
  passRate: 'Erfolgsquote (bestanden von durchgeführten Tests)', rtoCompliance: 'RTO eingehalten',
  rpoCompliance: 'RPO eingehalten', overdue: 'Pläne mit überfälligem Test', openMeasures: 'Offene Maßnahmen',
  runsInPeriod: 'Läufe im Zeitraum', ledgerOk: 'Nachweiskette geprüft', ledgerHead: 'Kopf der Kette',
  xOfY: '{x} von {y}', xOfYMeasured: '{x} von {y} gemessenen', firstBroken: 'erster Fehler bei Datensatz {seq}: {reason}',
  runCounts: '{runs} gesamt: {passed} bestanden, {failed} nicht bestanden, {errors} Fehler, {cancelled} abgebrochen',
  secControls: 'Zuordnung zu Anforderungen', control: 'Anforderung', evidence: 'Nachweis in ernstfall',
  testsInPeriod: 'Tests im Zeitraum (Pläne, die sie nennen)', byKind: 'nach Art', noPlanNamesIt: 'kein Plan nennt sie',
  kindRestore: 'Sandbox', kindExternal: 'extern gemeldet', kindManual: 'manuell', kindExercise: 'Übung', kindTally: '{kind}: {plans} Pläne, {runs} Tests ({passed} bestanden, {failed} nicht bestanden, {errors} Fehler)',
  secRestart: 'Wiederanlauf-Reihenfolge', tier: 'Stufe', owner2: 'verantwortlich', handbook: 'Notfallhandbuch', plansOf: 'Pläne', lastPassedAny: 'zuletzt bestanden (jede Art)',
  secRestartTests: 'Wiederanlauftests', restartTestsIntro: 'Die Systeme eines Prozesses Stufe für Stufe wiederhergestellt, jedes mit seiner Anwendung; die nächste Stufe erst, wenn die vorige bestanden hat. Zeit bis zum Wiederanlauf (Summe der Stufen) gegen das RTO des Prozesses.',
  restartTime: 'Zeit / RTO', tiersOf: 'Stufen', notRestarted: 'nicht automatisch',
  tier1Lacking: 'Systeme der Stufe 1 ohne bestandenen Test im letzten Jahr: {names}', tier1AllTested: 'Jedes System der Stufe 1 hat einen bestandenen Test im letzten Jahr.', noPlan: 'kein Plan',
  secSystems: 'Systeme und Pläne', lastRto: 'RTO Ziel / zuletzt', lastRpo: 'RPO Ziel / Alter', lastTest: 'letzter Test',
  nextDue: 'nächster fällig', counts: 'Läufe',
  countsNote: 'RTO und RPO: Ziel, darunter der zuletzt gemessene Wert. Letzter Test: Ergebnis und Zeitpunkt. Läufe: gesamt, darunter bestanden/nicht bestanden/Fehler.',
  secTrend: 'Wiederherstellungsdauer im Zeitverlauf', trendNote: 'Gemessene RTO je Test; gestrichelt: RTO-Ziel.',
  rtoTarget: 'RTO-Ziel', noPoints: 'keine Messwerte im Zeitraum', axisTime: 'Datum', axisDuration: 'Dauer',
  secDeviations: 'Abweichungen', noDeviations: 'Keine Abweichungen.', run: 'Lauf', secSignOff: 'Kenntnisnahme und Freigabe',
  signOffText: 'Der Bericht wurde geprüft; Abweichungen und offene Maßnahmen sind bekannt.',
  roleIt: 'IT-Leitung', roleIsb: 'Informationssicherheitsbeauftragte/r', secAnnex: 'Anhang: Nachweisprüfung',
  annexIntro: 'Alle Angaben dieses Berichts stammen aus der signierten Nachweiskette (Ledger).',
};
export type Labels = { [K in keyof typeof de]: string };

const en: Labels = {
  generatedAt: 'generated on', page: 'Page {x} of {y}', record: 'record', records: 'records', recordCount: 'Number of records', yes: 'yes', no: 'no', none: 'none',
  notMeasured: 'not measured', met: 'met', notMet: 'not met', tenant: 'Tenant', target: 'target',
  measured: 'measured', noVerdict: 'no verdict (run not finished)', name: 'Name', date: 'Date',
  signature: 'Signature', role: 'Role', status: 'Status', title: 'Title',
  runTitle: 'Restore test protocol', runSubject: 'Evidence of a restore test',
  secIdentity: 'Test identification', runId: 'Run ID', plan: 'Plan', planVersion: 'Plan version', trigger: 'Trigger',
  triggeredBy: 'triggered by', queuedAt: 'queued', startedAt: 'started', finishedAt: 'finished',
  secSystem: 'System and process', system: 'System', process: 'Process', protectionNeed: 'Protection need',
  controls: 'Controls', secTargets: 'Targets', rto: 'RTO (maximum restore time)',
  rpo: 'RPO (maximum backup age)', secBackup: 'Backup', path: 'Path', format: 'Format',
  size: 'Size', createdAt: 'created', dumpVersion: 'Dump version', snapshot: 'Snapshot (restic)', archive: 'Archive (borg)', backupAge: 'Age at test',
  secSandbox: 'Environment and isolation', image: 'Image', imageId: 'Image ID', network: 'Network',
  capDrop: 'Capabilities dropped', capAdd: 'Capabilities added', limits: 'Limits',
  memory: 'Memory', cpus: 'CPUs', pids: 'Processes', transfer: 'Backup transfer',
  containerId: 'Container ID', teardown: 'Teardown', teardownText: 'container removed at {at}; removal verified: {ok}',
  noSandbox: 'No sandbox was started.', secPhases: 'Steps and timings', phase: 'Phase', start: 'Start',
  duration: 'Duration', rtoNote: 'Measured RTO = start of "fetch backup" to end of "verify data".',
  secSteps: 'Steps as carried out (manual test)', stepCol: 'Step', stepResult: 'Result', stepAt: 'Time', stepBy: 'Person', stepNote: 'Note', stepEvidence: 'Evidence',
  stepOpen: 'open', stepOk: 'done', stepDeviation: 'deviation', stepNotDone: 'not done',
  manualRtoNote: 'Measured RTO = start of the test to the step that brought the service back (carried out by people, times from the server\'s clock).',
  completedBy: 'Completed by', closingNote: 'Closing note',
  secExercise: 'Exercise', exerciseFormat: 'Format', scenario: 'Scenario', participants: 'Participants', secObservations: 'Course of the exercise (observations)',
  obsKind: 'Kind', obsText: 'Observation', obsMeasure: 'Measure', obsNote: 'observation', obsFinding: 'finding', obsRestored: 'service available again',
  exerciseRtoNote: 'Measured RTO = start of the exercise to "service available again"; every finding is a follow-up measure (below).',
  secAttachments: 'Attachments in the record', attachmentName: 'File', noAttachments: 'No attachments.',
  secChecks: 'Checks', check: 'Check', kind: 'Kind', expected: 'expected', actual: 'actual',
  secBuiltin: 'Built-in checks (nothing in the plan needed)', builtinBaseline: 'Compared with run {run} ({source}).', builtinNoBaseline: 'First run with a profile: recorded as the baseline.',
  message: 'Message', noChecks: 'No checks were run.', secFindings: 'Findings', code: 'Code',
  severity: 'Severity', noFindings: 'No findings.', secResult: 'Result', verdict: 'Verdict',
  secReview: 'Review and sign-off (four eyes)', decision: 'Decision', comment: 'Comment', reviewer: 'Reviewer',
  at: 'At', recordHash: 'Record hash',
  sameReviewer: 'Warning: the reviewer triggered the test – the four-eyes principle is not met.',
  noReview: 'No review recorded yet. Sign-off by a second person (not the one who triggered the test):',
  secMeasures: 'Follow-up measures', measure: 'Measure', owner: 'owner', due: 'due',
  closedBy: 'closed by run', noMeasures: 'No follow-up measures.', secEvidence: 'Evidence (ledger)',
  secActivity: 'Activity log', activityAction: 'Action', actor: 'By', activitySubject: 'Subject',
  noActivity: 'No recorded activity in the period.', activityNote: 'From the signed ledger (records of kind “audit”): logins and logouts, plan changes, manual runs, exports, tokens and pauses.',
  seq: 'Record no.', hash: 'Hash (SHA-256)', prevHash: 'Previous hash', sigB64: 'Signature (Ed25519, base64)',
  keyId: 'Key ID', fingerprint: 'Fingerprint (SHA-256)', retainUntil: 'retain until',
  noRecord: 'There is no ledger record for this run yet.', checkpoint: 'Newest checkpoint',
  noCheckpoint: 'No checkpoint yet.', keys: 'Keys', howTo: 'How to verify this evidence',
  auditTitle: 'Audit report: restore tests', auditSubject: 'Evidence of regular restore tests',
  period: 'Period', periodNote: 'whole days, midnight to midnight German time (CET/CEST)', secSummary: 'Management summary', inTime: 'Plans tested in time',
  passRate: 'Pass rate (passed of performed tests)', rtoCompliance: 'RTO met',
  rpoCompliance: 'RPO met', overdue: 'Plans with an overdue test', openMeasures: 'Open measures',
  runsInPeriod: 'Runs in the period', ledgerOk: 'Evidence chain verified', ledgerHead: 'Chain head',
  xOfY: '{x} of {y}', xOfYMeasured: '{x} of {y} measured', firstBroken: 'first failure at record {seq}: {reason}',
  runCounts: '{runs} in total: {passed} passed, {failed} failed, {errors} errors, {cancelled} cancelled',
  secControls: 'Control mapping', control: 'Control', evidence: 'Evidence in ernstfall',
  testsInPeriod: 'Tests in the period (plans naming it)', byKind: 'by kind', noPlanNamesIt: 'no plan names it',
  kindRestore: 'sandbox', kindExternal: 'reported by a tool', kindManual: 'manual', kindExercise: 'exercise', kindTally: '{kind}: {plans} plans, {runs} tests ({passed} passed, {failed} failed, {errors} error)',
  secRestart: 'Restart order', tier: 'Tier', owner2: 'owner', handbook: 'Emergency manual', plansOf: 'Plans', lastPassedAny: 'last passed (any kind)',
  secRestartTests: 'Restart tests', restartTestsIntro: 'The systems of a process restored tier by tier, each with its application; the next tier only after the one before passed. Time until working again (sum of the tiers) against the process\'s RTO.',
  restartTime: 'time / RTO', tiersOf: 'Tiers', notRestarted: 'not automated',
  tier1Lacking: 'Tier-1 systems without a passed test in the last year: {names}', tier1AllTested: 'Every tier-1 system has a passed test in the last year.', noPlan: 'no plan',
  secSystems: 'Systems and plans', lastRto: 'RTO target / last', lastRpo: 'RPO target / age', lastTest: 'last test',
  nextDue: 'next due', counts: 'Runs',
  countsNote: 'RTO and RPO: target, below it the last measured value. Last test: verdict and time. Runs: total, below it passed/failed/error.',
  secTrend: 'Restore duration over time', trendNote: 'Measured RTO per test; dashed: RTO target.',
  rtoTarget: 'RTO target', noPoints: 'no measurements in the period', axisTime: 'Date', axisDuration: 'Duration',
  secDeviations: 'Deviations', noDeviations: 'No deviations.', run: 'Run', secSignOff: 'Acknowledgement and sign-off',
  signOffText: 'The report was reviewed; deviations and open measures are known.',
  roleIt: 'Head of IT', roleIsb: 'Information security officer', secAnnex: 'Annex: verifying the evidence',
  annexIntro: 'Everything in this report comes from the signed evidence chain (ledger).',
};

export function labels(lang: Lang | undefined): Labels {
  return lang === 'en' ? en : de;
}

/** Fills `{name}` placeholders. */
export function fill(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
}

type Names = Record<Lang, Record<string, string>>;
const VERDICTS: Names = {
  de: { passed: 'bestanden', failed: 'nicht bestanden', error: 'Fehler – nicht verifiziert', cancelled: 'abgebrochen' },
  en: { passed: 'passed', failed: 'failed', error: 'error – not verified', cancelled: 'cancelled' },
};
const PHASES: Names = {
  de: { queued: 'Warteschlange', fetch: 'Abruf der Sicherung', provision: 'Bereitstellung der Sandbox', restore: 'Wiederherstellung', verify: 'Prüfung der Daten', services: 'Start und Prüfung der Dienste', teardown: 'Abbau der Sandbox' },
  en: { queued: 'Queued', fetch: 'Fetch backup', provision: 'Provision sandbox', restore: 'Restore', verify: 'Verify data', services: 'Start and probe services', teardown: 'Tear down sandbox' },
};
const BUILTINS: Names = {
  de: { freshness: 'Aktualität der Daten', sequences: 'Sequenzen', schema: 'Schema gegenüber der Basis', volume: 'Datenmenge gegenüber der Basis', ransomware: 'Ransomware-Anzeichen', renames: 'Umbenennungen gegenüber der Basis' },
  en: { freshness: 'Freshness of the data', sequences: 'Sequences', schema: 'Schema against the baseline', volume: 'Volume against the baseline', ransomware: 'Ransomware indicators', renames: 'Renames against the baseline' },
};
const CHECK_STATUS: Names = {
  de: { passed: 'bestanden', failed: 'nicht bestanden', error: 'Fehler', skipped: 'nicht ausgeführt', running: 'läuft', ok: 'ok', warning: 'Warnung', info: 'Hinweis', interrupted: 'unterbrochen' },
  en: { passed: 'passed', failed: 'failed', error: 'error', skipped: 'skipped', running: 'running', ok: 'ok', warning: 'warning', info: 'info', interrupted: 'interrupted' },
};
const SEVERITIES: Names = {
  de: { error: 'Fehler (nicht verifiziert)', failure: 'Mangel', warning: 'Warnung', info: 'Hinweis' },
  en: { error: 'error (not verified)', failure: 'failure', warning: 'warning', info: 'info' },
};
const PLAN_STATUS: Names = {
  de: { failing: 'fehlgeschlagen', overdue: 'überfällig', 'never-tested': 'nie getestet', 'due-soon': 'bald fällig', ok: 'in Ordnung', paused: 'pausiert' },
  en: { failing: 'failing', overdue: 'overdue', 'never-tested': 'never tested', 'due-soon': 'due soon', ok: 'ok', paused: 'paused' },
};
const DECISIONS: Names = {
  de: { approved: 'freigegeben', 'approved-with-deviations': 'freigegeben mit Abweichungen', rejected: 'abgelehnt' },
  en: { approved: 'approved', 'approved-with-deviations': 'approved with deviations', rejected: 'rejected' },
};
const MEASURE_STATUS: Names = {
  de: { open: 'offen', 'in-progress': 'in Arbeit', done: 'erledigt' },
  en: { open: 'open', 'in-progress': 'in progress', done: 'done' },
};
const TRIGGERS: Names = {
  de: { schedule: 'Zeitplan', manual: 'manuell', api: 'API', retest: 'Nachtest', external: 'gemeldet von einem anderen Werkzeug', 'restart-test': 'Wiederanlauftest' },
  en: { schedule: 'schedule', manual: 'manual', api: 'API', retest: 're-test', external: 'reported by another tool', 'restart-test': 'restart test' },
};
const pick = (names: Names) => (key: string | null | undefined, lang: Lang): string =>
  key == null ? '—' : (names[lang === 'en' ? 'en' : 'de'][key] ?? key);

export const verdictLabel: (v: VerdictName | null | undefined, lang: Lang) => string = pick(VERDICTS);
export const phaseLabel = pick(PHASES);
export const checkStatusLabel = pick(CHECK_STATUS);
export const builtinLabel = pick(BUILTINS);
export const severityLabel = pick(SEVERITIES);
export const planStatusLabel = pick(PLAN_STATUS);
export const decisionLabel = pick(DECISIONS);
export const measureStatusLabel = pick(MEASURE_STATUS);
export const triggerLabel = pick(TRIGGERS);

const locale = (lang: Lang) => (lang === 'en' ? 'en-GB' : 'de-DE');
const fmtCache = new Map<string, Intl.DateTimeFormat>();
function dtf(key: string, loc: string, opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  let f = fmtCache.get(key);
  if (!f) fmtCache.set(key, (f = new Intl.DateTimeFormat(loc, { timeZone: REPORT_TIME_ZONE, ...opts })));
  return f;
}

/** MEZ/MESZ (de) or CET/CEST (en) from the real UTC offset in Berlin, independent of ICU's abbreviations. */
function zoneName(d: Date, lang: Lang): string {
  const off = dtf('off', 'en-US', { timeZoneName: 'shortOffset' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value;
  if (off === 'GMT+1') return lang === 'en' ? 'CET' : 'MEZ';
  if (off === 'GMT+2') return lang === 'en' ? 'CEST' : 'MESZ';
  return off ?? '';
}

function toDate(iso: string | null | undefined): Date | null {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** `28.11.2026, 02:05 MEZ` / `28 Nov 2026, 02:05 CET`; `—` for nothing. */
export function formatDateTime(iso: string | null | undefined, lang: Lang): string {
  const d = toDate(iso);
  if (!d) return iso ? iso : '—';
  const opts: Intl.DateTimeFormatOptions = lang === 'en'
    ? { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }
    : { day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  return `${dtf(`dt-${lang}`, locale(lang), opts).format(d)} ${zoneName(d, lang)}`;
}

/** A calendar date (`YYYY-MM-DD` stays that day) or the Berlin date of an instant. */
export function formatDate(iso: string | null | undefined, lang: Lang): string {
  if (!iso) return '—';
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(iso);
  const d = toDate(dateOnly ? `${iso}T12:00:00Z` : iso);
  if (!d) return iso;
  const opts: Intl.DateTimeFormatOptions = lang === 'en'
    ? { day: 'numeric', month: 'short', year: 'numeric' }
    : { day: '2-digit', month: '2-digit', year: 'numeric' };
  return dtf(`d-${lang}`, locale(lang), opts).format(d);
}

/** Short axis date, e.g. `28.11.` / `28 Nov`. */
export function formatShortDate(iso: string, lang: Lang): string {
  const d = toDate(iso);
  if (!d) return iso;
  const opts: Intl.DateTimeFormatOptions = lang === 'en' ? { day: 'numeric', month: 'short' } : { day: '2-digit', month: '2-digit' };
  const s = dtf(`sd-${lang}`, locale(lang), opts).format(d);
  return lang === 'en' ? s : `${s.replace(/\.$/, '')}.`;
}

export function formatNumber(n: number, lang: Lang, maxFractionDigits = 1): string {
  return new Intl.NumberFormat(locale(lang), { maximumFractionDigits: maxFractionDigits, useGrouping: true }).format(n);
}

/** `87,5 %` / `87.5 %` (plain space, so text extraction and CSV stay simple). */
export function formatPercent(ratio: number | null, lang: Lang): string {
  return ratio == null ? '—' : `${formatNumber(ratio * 100, lang)} %`;
}

/** IEC units: `512 B`, `1,5 MiB`, `2.3 GiB`. */
export function formatBytes(bytes: number | null | undefined, lang: Lang): string {
  if (bytes == null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${formatNumber(v, lang, i === 0 ? 0 : 1)} ${units[i]}`;
}

/**
 * Durations: `850 ms`, `4,2 s`, `42 s`, `12 min 05 s`, `1 h 02 min 03 s`, `4 h`, `26 h`, `3 d 04 h`.
 * Trailing zero parts are left out; days only from 48 h on.
 */
export function formatSeconds(seconds: number | null | undefined, lang: Lang): string {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  if (seconds < 0) return `-${formatSeconds(-seconds, lang)}`;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10 && !Number.isInteger(seconds)) return `${formatNumber(seconds, lang)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const total = Math.round(seconds);
  const days = total >= 48 * 3600 ? Math.floor(total / 86400) : 0;
  const parts: [number, string][] = [
    [days, 'd'], [Math.floor((total - days * 86400) / 3600), 'h'], [Math.floor((total % 3600) / 60), 'min'], [total % 60, 's'],
  ];
  const first = parts.findIndex(([v]) => v > 0);
  let last = parts.length - 1;
  while (last > first && parts[last]![0] === 0) last--;
  return parts.slice(first, last + 1).map(([v, u], i) => `${i === 0 ? v : String(v).padStart(2, '0')} ${u}`).join(' ');
}

const EXERCISE_FORMAT: Record<string, { de: string; en: string }> = {
  tabletop: { de: 'Planbesprechung', en: 'tabletop' },
  walkthrough: { de: 'Begehung', en: 'walk-through' },
  simulation: { de: 'Stabsübung', en: 'simulation' },
  full: { de: 'Vollübung', en: 'full exercise' },
};

/** An exercise's format in words (BSI 200-4: Planbesprechung, Begehung, Stabsübung, Vollübung). */
export function exerciseFormatLabel(format: string | undefined, lang: Lang): string {
  return format ? EXERCISE_FORMAT[format]?.[lang] ?? format : '?';
}
