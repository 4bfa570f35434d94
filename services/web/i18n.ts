/**
 * Wording of the web interface: German by default, English by the `lang`
 * cookie (set by /lang?to=en). Domain words (verdicts, phases, statuses,
 * decisions) and formats come from the report labels, so the UI, the PDFs and
 * the notifications say the same thing. Times: Europe/Berlin with its zone.
 */
import type { FastifyRequest } from 'fastify';
import {
  checkStatusLabel, decisionLabel, fill, formatBytes, formatDate, formatDateTime, formatNumber, formatSeconds, labels as reportLabels,
  measureStatusLabel, phaseLabel, planStatusLabel, severityLabel, triggerLabel, verdictLabel,
} from '../reports/i18n.js';

export type Lang = 'de' | 'en';
export const LANG_COOKIE = 'lang';

export function langOf(req: FastifyRequest): Lang {
  const c = (req as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies?.[LANG_COOKIE];
  return c === 'en' ? 'en' : 'de';
}

const de = {
  skip: 'Zum Inhalt springen', product: 'ernstfall', tagline: 'Wiederherstellungstests mit Nachweis', tenant: 'Mandant', signedInAs: 'Angemeldet als',
  logout: 'Abmelden', switchTo: 'English', switchToLabel: 'Switch to English', mainNav: 'Hauptnavigation',
  navDashboard: 'Übersicht', navAlerts: 'Alarme', navReviews: 'Freigaben & Maßnahmen', navReports: 'Berichte', navAdmin: 'Verwaltung', navAccount: 'Mein Konto',
  navTenants: 'Mandanten', footerTimes: 'Alle Zeiten in Europe/Berlin (MEZ/MESZ).', dash: '–',
  roleAdmin: 'Administration', roleOperator: 'Betrieb', roleReviewer: 'Prüfung', roleAuditor: 'Revision', roleProvider: 'Dienstleister-Administration',
  // errors
  errNotFound: 'Nicht gefunden', errNotFoundText: 'Diese Seite gibt es nicht, oder sie gehört nicht zu Ihrem Mandanten.',
  errForbidden: 'Keine Berechtigung', errBadRequest: 'Ungültige Anfrage', errConflict: 'Nicht möglich', errWait: 'Bitte warten', errServer: 'Interner Fehler',
  errServerText: 'Etwas ist schiefgegangen. Der Fehler wurde protokolliert.', forbiddenRole: 'Ihre Rolle ({role}) erlaubt das nicht.', errCsrf: 'Das Formular ist abgelaufen. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.',
  backToDashboard: 'Zur Übersicht', notAvailable: 'Nicht verfügbar', accountsMissing: 'Die Benutzerverwaltung ist in dieser Installation noch nicht verfügbar.',
  formErrors: 'Bitte prüfen Sie die markierten Felder.', required: 'Bitte ausfüllen.', tooLong: 'Zu lang (höchstens {n} Zeichen).',
  invalidDate: 'Bitte ein gültiges Datum angeben.', invalidEmail: 'Bitte eine gültige E-Mail-Adresse angeben.', chooseOne: 'Bitte eine Möglichkeit wählen.',
  saved: 'Gespeichert.', optional: 'optional', submit: 'Absenden', actions: 'Aktionen', details: 'Details', yes: 'ja', no: 'nein', none: 'keine',
  // dashboard
  dashTitle: 'Übersicht', summary: 'Zusammenfassung', plansTotal: 'Pläne gesamt', plansCaption: 'Wiederherstellungspläne und ihr Status',
  colPlan: 'Plan', colStatus: 'Status', colNextDue: 'Nächster Test fällig', colLastVerdict: 'Letztes Ergebnis', colHeadroom: 'RTO-Reserve', colAlert: 'Alarm',
  headroomOver: 'überschritten um {x}', headroomHint: 'RTO-Ziel minus zuletzt gemessene Wiederherstellungszeit.',
  noPlans: 'Noch keine Pläne. Pläne entstehen als YAML-Dateien in restore-plans/ oder über die API (PUT /api/v1/plans/{id}).',
  schedulerDown: 'Der Zeitplaner läuft nicht: geplante Tests starten nicht und Erinnerungen werden nicht verschickt.',
  schedulerLast: 'Letzter Takt: {at}.', schedulerNever: 'Es hat noch nie ein Zeitplaner getaktet.',
  alertOpen: 'offen', alertAcknowledged: 'bestätigt', alertSnoozed: 'zurückgestellt', runningNow: 'Test läuft', queuedNow: 'Test wartet',
  statusHelp: 'Ampel: in Ordnung, bald fällig, überfällig, fehlgeschlagen, nie getestet.',
  // plan
  planTitle: 'Plan', planSummary: 'Zusammenfassung', planDefinition: 'Definition', definitionNote: 'Gespeicherte Fassung (normalisiert); Kanarienwerte sind geschwärzt.',
  system: 'System', process: 'Prozess', protectionNeed: 'Schutzbedarf', targets: 'Ziele', cadence: 'Rhythmus', schedule: 'Zeitplan (cron)', timezone: 'Zeitzone',
  requiredEvery: 'Test nötig alle', grace: 'Kulanz', source: 'Quelle', restore: 'Wiederherstellung', checks: 'Prüfungen', controls: 'Anforderungen',
  origin: 'Herkunft', originFile: 'Datei {file} (nur lesbar über die API)', originApi: 'über die API angelegt', version: 'Version', noSchedule: 'kein Zeitplan',
  nextScheduled: 'Nächster geplanter Test', pausedSince: 'pausiert seit {at} von {by}: {reason}', nextDue: 'Nächster Test fällig',
  history: 'Verlauf', historyCaption: 'Die letzten {n} Läufe, neueste zuerst', colStarted: 'Zeitpunkt', colTrigger: 'Auslöser', colResult: 'Ergebnis',
  colRto: 'Gemessene RTO', colBackupAge: 'Alter der Sicherung', noRuns: 'Noch keine Läufe.', runNow: 'Jetzt testen',
  runNowHint: 'Startet einen Wiederherstellungstest mit der aktuellen Fassung des Plans.', runNowForbidden: 'Tests starten dürfen Betrieb und Administration.',
  chartTitle: 'Wiederherstellungsdauer im Zeitverlauf', chartSummary: '{n} Messwerte; längste Dauer {max}, zuletzt {last}; RTO-Ziel {target}; {over} Mal überschritten.',
  chartNone: 'Noch keine gemessene Wiederherstellungsdauer.', chartLegendRto: 'gestrichelt: RTO-Ziel', checkCount: '{n} Prüfungen',
  activeRun: 'Dieser Plan wird gerade getestet.',
  // run
  runTitle: 'Test von {plan}', runOf: 'Lauf {id}', statusRegion: 'Stand', runStatus: { queued: 'in der Warteschlange', running: 'läuft', finished: 'beendet' } as Record<string, string>,
  liveHint: 'Diese Seite aktualisiert sich, solange der Test läuft.', refresh: 'Seite aktualisieren', phases: 'Ablauf', phaseState: { done: 'erledigt', failed: 'fehlgeschlagen', running: 'läuft', pending: 'ausstehend', skipped: 'übersprungen' } as Record<string, string>,
  colPhase: 'Phase', colState: 'Stand', colStart: 'Beginn', colDuration: 'Dauer', colCheck: 'Prüfung', colExpected: 'erwartet', colActual: 'tatsächlich', colMessage: 'Meldung',
  checksCaption: 'Prüfungen: erwartet und tatsächlich', noChecks: 'Keine Prüfungen ausgeführt.', findings: 'Feststellungen', findingsCaption: 'Feststellungen dieses Laufs',
  colCode: 'Code', colSeverity: 'Schweregrad', noFindings: 'Keine Feststellungen.', backup: 'Datensicherung', logExcerpt: 'Protokollauszug',
  logNote: 'Zusammenfassung der Ausgabe des Wiederherstellungswerkzeugs; Zeilen mit Daten werden nie gespeichert.', tool: 'Werkzeug', exitCode: 'Exit-Code',
  stderrLines: 'Fehlerausgabe (Zeilen)', tables: 'Tabellen', nonEmptyTables: 'davon mit Daten', attachments: 'Anhänge', pruned: 'nach Aufbewahrungsfrist gelöscht, Hash bleibt',
  evidence: 'Nachweis', recordHash: 'Datensatz-Hash', hashOk: 'Hash stimmt', hashBad: 'Hash stimmt NICHT', sigOk: 'Signatur gültig', sigBad: 'Signatur UNGÜLTIG',
  keyUntrusted: 'Schlüssel nicht vertrauenswürdig', noRecord: 'Der Nachweis wird geschrieben, sobald der Lauf beendet ist.', protocolPdf: 'Wiederherstellungsprotokoll (PDF)',
  rtoLine: 'RTO: {measured} gemessen, Ziel {target}', rpoLine: 'RPO: Sicherung {age} alt, Ziel {target}',
  reviews: 'Freigabe (Vier-Augen-Prinzip)', reviewsCaption: 'Freigaben dieses Laufs', noReviews: 'Noch keine Freigabe.', reviewForm: 'Freigeben',
  decision: 'Entscheidung', comment: 'Kommentar', commentHint: 'Pflicht bei Ablehnung und bei Abweichungen.', deviation: 'Abweichung (wird zur Folgemaßnahme)',
  devTitle: 'Abweichung', devOwner: 'verantwortlich', devDue: 'erledigen bis', devHint: 'Nur bei „freigegeben mit Abweichungen“ ausfüllen.',
  fourEyes: 'Sie haben diesen Test ausgelöst. Nach dem Vier-Augen-Prinzip muss eine andere Person ihn freigeben.',
  reviewNotFinished: 'Freigeben ist möglich, sobald der Lauf beendet ist.', reviewRole: 'Freigeben dürfen Prüfung und Administration.',
  devNeeded: 'Bei „freigegeben mit Abweichungen“ bitte die Abweichung beschreiben.', devNotAllowed: 'Eine Freigabe ohne Abweichungen hat keine; wählen Sie „freigegeben mit Abweichungen“.',
  commentNeeded: 'Bitte begründen.', cancelRun: 'Test abbrechen', triggeredBy: 'ausgelöst von',
  // alerts
  alertsTitle: 'Alarme', openAlerts: 'Offene Alarme', openAlertsCaption: 'Offene Alarme, neueste zuerst', resolvedAlerts: 'Zuletzt erledigte Alarme',
  noAlerts: 'Keine offenen Alarme.', alertKind: { overdue: 'Test überfällig', failing: 'Test fehlgeschlagen' } as Record<string, string>,
  colKind: 'Art', colSince: 'seit', colLevel: 'Eskalationsstufe', colState2: 'Bearbeitung', alertTitle: 'Alarm: {plan}',
  acknowledge: 'Bestätigen', acknowledgeHint: 'Stoppt die Eskalation. Die Entwarnung kommt trotzdem, sobald der Plan wieder in Ordnung ist.',
  snooze: 'Zurückstellen', snoozeHint: 'Keine Eskalation bis zum gewählten Zeitpunkt; fällige Stufen folgen danach.', reason: 'Begründung', snoozeFor: 'Dauer',
  durations: { P1D: '1 Tag', P3D: '3 Tage', P7D: '7 Tage', P14D: '14 Tage', P30D: '30 Tage' } as Record<string, string>,
  acknowledgedBy: 'bestätigt am {at} von {by}: {reason}', snoozedBy: 'zurückgestellt bis {until} von {by}: {reason}', resolvedAt: 'erledigt am {at}',
  notifications: 'Benachrichtigungen', notificationsCaption: 'Benachrichtigungen zu diesem Alarm', colEvent: 'Anlass', colRecipient: 'Empfänger', colSent: 'versandt',
  noNotifications: 'Keine Benachrichtigungen.', alertActRole: 'Bestätigen und zurückstellen dürfen Betrieb, Prüfung und Administration.', lastFailedRun: 'Fehlgeschlagener Lauf',
  // reviews & measures
  reviewsTitle: 'Freigaben & Maßnahmen', waiting: 'Warten auf Freigabe', waitingCaption: 'Beendete Läufe ohne Freigabe', noWaiting: 'Alle beendeten Läufe sind freigegeben.',
  recentReviews: 'Letzte Freigaben', recentCaption: 'Die letzten Freigaben', colReviewer: 'Prüfer/in', colAt: 'Zeitpunkt', colRun: 'Lauf',
  measures: 'Folgemaßnahmen', measuresCaption: 'Folgemaßnahmen: {status}', noMeasures: 'Keine.', colMeasure: 'Maßnahme', colOwner: 'verantwortlich', colDue: 'fällig bis',
  update: 'Ändern', close: 'Mit Nachtest schließen', closeRun: 'Bestandener Nachtest', noRetest: 'Noch kein bestandener Nachtest nach Anlage der Maßnahme.',
  closedBy: 'geschlossen durch', measureRole: 'Maßnahmen bearbeiten dürfen Betrieb, Prüfung und Administration.', measureStatus: 'Stand', overdueMark: 'überfällig',
  // reports
  reportsTitle: 'Berichte', auditReport: 'Prüfbericht', auditHint: 'Zusammenfassung, Anforderungen (BSI, ISO), Systeme, Abweichungen, Nachweisprüfung.',
  from: 'von', to: 'bis', format: 'Format', language: 'Sprache', download: 'Herunterladen', periodOrder: '„bis“ darf nicht vor „von“ liegen.',
  bundle: 'Nachweispaket', bundleHint: 'Kette, öffentliche Schlüssel und Checkpoints zur Prüfung ohne Server (npm run evidence:verify).', bundleLink: 'Nachweispaket (JSON) herunterladen',
  verify: 'Prüfung der Nachweiskette', verifyHint: 'Prüft Hashes, Reihenfolge, Signaturen und Checkpoints aller Datensätze.', verifyNow: 'Jetzt prüfen',
  verifyOk: 'Die Nachweiskette ist unversehrt.', verifyBroken: 'Die Nachweiskette ist beschädigt: Datensatz {seq} ({reason}): {message}', verifyRecords: '{n} Datensätze geprüft; Kopf {seq}.',
  verifyCheckpoints: '{n} Checkpoints verglichen.', verifiedAt: 'geprüft am {at}', reportRole: 'Berichte und Nachweispakete erhalten Revision und Administration.',
  // admin
  adminTitle: 'Verwaltung', users: 'Benutzer', usersCaption: 'Benutzer dieses Mandanten', colEmail: 'E-Mail', colName: 'Name', colRole: 'Rolle', col2fa: '2FA',
  colLastLogin: 'letzte Anmeldung', colUserState: 'Zustand', disabled: 'gesperrt', locked: 'vorübergehend gesperrt', active: 'aktiv', sso: 'SSO',
  invite: 'Einladen', inviteTitle: 'Benutzer einladen', inviteLink: 'Einladungslink (nur jetzt sichtbar, gültig bis {until}):', inviteCopy: 'Geben Sie den Link nur der eingeladenen Person.',
  changeUser: 'Ändern', disable: 'sperren', enable: 'entsperren', resetMfa: '2FA zurücksetzen', role: 'Rolle', email: 'E-Mail', name: 'Name',
  tokens: 'API-Tokens', tokensCaption: 'API-Tokens dieses Mandanten', colCreated: 'angelegt', colExpires: 'läuft ab', colLastUsed: 'zuletzt benutzt', revoked: 'widerrufen',
  createToken: 'Token anlegen', tokenName: 'Name (Person oder System)', expiresAt: 'läuft ab am', revoke: 'Widerrufen',
  tokenCreated: 'Neues Token (nur jetzt sichtbar – jetzt kopieren):', tokenNote: 'Der Name gilt als handelnde Person (Vier-Augen-Prinzip).', expired: 'abgelaufen',
  tenants: 'Mandanten', tenantsCaption: 'Mandanten und Zugriffsfreigaben', colSlug: 'Kürzel', colGrant: 'Zugriff', grantUntil: '{role} bis {until}', noGrant: 'kein Zugriff freigegeben',
  enterTenant: 'Mandant betreten', leaveTenant: 'Mandant verlassen', actingIn: 'Sie handeln im Mandanten {name} mit der Rolle {role}.', providerOnly: 'Nur für Dienstleister-Administration.',
  tenantDisabled: 'deaktiviert', current: 'aktuell', createTenant: 'Mandant anlegen', firstAdmin: 'Erste Administratorin / erster Administrator (erhält eine Einladung)', slugHint: 'Kleinbuchstaben, Ziffern und Bindestriche, z. B. musterstadt.', chooseTenant: 'Wählen Sie einen Mandanten, der Ihnen Zugriff gewährt hat.',
  // account
  accountTitle: 'Mein Konto', twoFactor: 'Zweiter Faktor (TOTP)', mfaOn: 'eingerichtet seit {at}', mfaOff: 'nicht eingerichtet', reEnrol: 'Neu einrichten',
  enrolNow: 'Jetzt einrichten', changePassword: 'Passwort ändern', currentPassword: 'Aktuelles Passwort', newPassword: 'Neues Passwort', repeatPassword: 'Neues Passwort wiederholen',
  passwordHint: 'Mindestens 12 Zeichen; lange Sätze sind gut.', passwordMismatch: 'Die Passwörter stimmen nicht überein.', passwordChanged: 'Das Passwort wurde geändert.',
  ownTokens: 'Meine API-Tokens', ownTokensCaption: 'Ihre persönlichen API-Tokens', logoutEverywhere: 'Überall abmelden', logoutEverywhereHint: 'Beendet alle Ihre Sitzungen auf allen Geräten, auch diese.',
  ownTokenRole: 'Ein persönliches Token hat Ihre Rolle ({role}).', wrongPassword: 'Das aktuelle Passwort ist falsch.',
  passwordProblems: { 'at least 12 characters': 'Mindestens 12 Zeichen.', 'at most 256 characters': 'Höchstens 256 Zeichen.', 'too few different characters': 'Zu wenige verschiedene Zeichen.', 'must not contain the e-mail name': 'Darf den Namen aus der E-Mail-Adresse nicht enthalten.' } as Record<string, string>,
  ownTokensNone: 'Persönliche Tokens gibt es nur innerhalb eines Mandanten.', done: { password: 'Das Passwort wurde geändert.', mfa: 'Der zweite Faktor ist eingerichtet.' } as Record<string, string>,
  // login
  loginTitle: 'Anmelden', password: 'Passwort', loginButton: 'Anmelden', loginInvalid: 'E-Mail-Adresse oder Passwort ist falsch.',
  loginLocked: 'Zu viele Fehlversuche: Das Konto ist vorübergehend gesperrt. Bitte versuchen Sie es in {wait} wieder.', ssoButton: 'Anmelden mit {label}', or: 'oder',
  codeTitle: 'Bestätigungscode', code: 'Code aus der Authenticator-App oder Wiederherstellungscode', codeButton: 'Bestätigen', codeInvalid: 'Der Code ist falsch.',
  codeReused: 'Dieser Code wurde schon benutzt. Bitte warten Sie auf den nächsten.', codeHint: 'Sechs Ziffern aus Ihrer App – oder einer Ihrer Wiederherstellungscodes.',
  enrolTitle: 'Zweiten Faktor einrichten', enrolIntro: 'Ihre Rolle verlangt einen zweiten Faktor. Scannen Sie den QR-Code mit einer Authenticator-App (z. B. FreeOTP, Aegis, Microsoft oder Google Authenticator).',
  qrLabel: 'QR-Code für die Authenticator-App', manualSecret: 'Oder geben Sie diesen Schlüssel von Hand ein:', enrolCode: 'Code aus der App', enrolButton: 'Einrichten',
  enrolFailed: 'Der Code passt nicht. Prüfen Sie die Uhrzeit Ihres Geräts und geben Sie den aktuellen Code ein.', enrolRestart: 'Neu beginnen (neuer QR-Code)',
  recoveryTitle: 'Wiederherstellungscodes', recoveryIntro: 'Bewahren Sie diese Codes sicher auf (ausdrucken oder im Passwortmanager). Jeder Code gilt einmal, falls Ihr Gerät verloren geht. Sie werden nur jetzt angezeigt.',
  continue: 'Weiter', recoveryUsed: 'Sie haben einen Wiederherstellungscode benutzt; noch {n} übrig.',
  inviteTitle2: 'Passwort festlegen', inviteIntro: 'Willkommen, {name} ({email}). Legen Sie Ihr Passwort fest.', inviteInvalid: 'Dieser Einladungslink ist ungültig oder abgelaufen.',
  inviteDone: 'Ihr Passwort ist gesetzt. Bitte melden Sie sich an.', setPassword: 'Passwort festlegen', loggedOut: 'Sie sind abgemeldet.',
  crossSite: 'Diese Anfrage kam von einer anderen Website und wurde abgewiesen.', tooMany: 'Zu viele Versuche von dieser Adresse. Bitte warten Sie eine Minute.',
};

export type Strings = typeof de;

const en: Strings = {
  skip: 'Skip to content', product: 'ernstfall', tagline: 'Restore tests with evidence', tenant: 'Tenant', signedInAs: 'Signed in as',
  logout: 'Log out', switchTo: 'Deutsch', switchToLabel: 'Auf Deutsch umschalten', mainNav: 'Main navigation',
  navDashboard: 'Dashboard', navAlerts: 'Alerts', navReviews: 'Reviews & measures', navReports: 'Reports', navAdmin: 'Admin', navAccount: 'My account',
  navTenants: 'Tenants', footerTimes: 'All times in Europe/Berlin (CET/CEST).', dash: '–',
  roleAdmin: 'admin', roleOperator: 'operator', roleReviewer: 'reviewer', roleAuditor: 'auditor', roleProvider: 'provider admin',
  errNotFound: 'Not found', errNotFoundText: 'This page does not exist, or it does not belong to your tenant.',
  errForbidden: 'Not allowed', errBadRequest: 'Invalid request', errConflict: 'Not possible', errWait: 'Please wait', errServer: 'Internal error',
  errServerText: 'Something went wrong. The error was logged.', forbiddenRole: 'Your role ({role}) does not allow this.', errCsrf: 'The form has expired. Please reload the page and try again.',
  backToDashboard: 'Back to the dashboard', notAvailable: 'Not available', accountsMissing: 'User management is not available in this installation yet.',
  formErrors: 'Please check the marked fields.', required: 'Please fill in.', tooLong: 'Too long (at most {n} characters).',
  invalidDate: 'Please enter a valid date.', invalidEmail: 'Please enter a valid e-mail address.', chooseOne: 'Please choose one.',
  saved: 'Saved.', optional: 'optional', submit: 'Submit', actions: 'Actions', details: 'Details', yes: 'yes', no: 'no', none: 'none',
  dashTitle: 'Dashboard', summary: 'Summary', plansTotal: 'Plans in total', plansCaption: 'Restore plans and their status',
  colPlan: 'Plan', colStatus: 'Status', colNextDue: 'Next test due', colLastVerdict: 'Last result', colHeadroom: 'RTO headroom', colAlert: 'Alert',
  headroomOver: 'exceeded by {x}', headroomHint: 'RTO target minus the last measured restore time.',
  noPlans: 'No plans yet. Plans are YAML files in restore-plans/ or are created over the API (PUT /api/v1/plans/{id}).',
  schedulerDown: 'The scheduler is not running: scheduled tests do not start and reminders are not sent.',
  schedulerLast: 'Last tick: {at}.', schedulerNever: 'No scheduler has ever ticked.',
  alertOpen: 'open', alertAcknowledged: 'acknowledged', alertSnoozed: 'snoozed', runningNow: 'test running', queuedNow: 'test queued',
  statusHelp: 'Traffic light: ok, due soon, overdue, failing, never tested.',
  planTitle: 'Plan', planSummary: 'Summary', planDefinition: 'Definition', definitionNote: 'Stored form (normalised); canary values are redacted.',
  system: 'System', process: 'Process', protectionNeed: 'Protection need', targets: 'Targets', cadence: 'Cadence', schedule: 'Schedule (cron)', timezone: 'Time zone',
  requiredEvery: 'Test required every', grace: 'Grace', source: 'Source', restore: 'Restore', checks: 'Checks', controls: 'Controls',
  origin: 'Origin', originFile: 'file {file} (read-only over the API)', originApi: 'created over the API', version: 'Version', noSchedule: 'no schedule',
  nextScheduled: 'Next scheduled test', pausedSince: 'paused since {at} by {by}: {reason}', nextDue: 'Next test due',
  history: 'History', historyCaption: 'The last {n} runs, newest first', colStarted: 'Time', colTrigger: 'Trigger', colResult: 'Result',
  colRto: 'Measured RTO', colBackupAge: 'Backup age', noRuns: 'No runs yet.', runNow: 'Run now',
  runNowHint: 'Starts a restore test of the current version of the plan.', runNowForbidden: 'Operators and admins may start tests.',
  chartTitle: 'Restore duration over time', chartSummary: '{n} measurements; longest {max}, last {last}; RTO target {target}; exceeded {over} times.',
  chartNone: 'No restore duration measured yet.', chartLegendRto: 'dashed: RTO target', checkCount: '{n} checks',
  activeRun: 'This plan is being tested right now.',
  runTitle: 'Test of {plan}', runOf: 'Run {id}', statusRegion: 'Progress', runStatus: { queued: 'queued', running: 'running', finished: 'finished' },
  liveHint: 'This page updates itself while the test runs.', refresh: 'Refresh the page', phases: 'Steps', phaseState: { done: 'done', failed: 'failed', running: 'running', pending: 'pending', skipped: 'skipped' },
  colPhase: 'Step', colState: 'State', colStart: 'Start', colDuration: 'Duration', colCheck: 'Check', colExpected: 'expected', colActual: 'actual', colMessage: 'Message',
  checksCaption: 'Checks: expected and actual', noChecks: 'No checks were run.', findings: 'Findings', findingsCaption: 'Findings of this run',
  colCode: 'Code', colSeverity: 'Severity', noFindings: 'No findings.', backup: 'Backup', logExcerpt: 'Log excerpt',
  logNote: "Summary of the restore tool's output; lines with data are never stored.", tool: 'Tool', exitCode: 'Exit code',
  stderrLines: 'Error output (lines)', tables: 'Tables', nonEmptyTables: 'with data', attachments: 'Attachments', pruned: 'pruned after retention, hash kept',
  evidence: 'Evidence', recordHash: 'Record hash', hashOk: 'hash matches', hashBad: 'hash does NOT match', sigOk: 'signature valid', sigBad: 'signature INVALID',
  keyUntrusted: 'key not trusted', noRecord: 'The evidence record is written when the run finishes.', protocolPdf: 'Restore test protocol (PDF)',
  rtoLine: 'RTO: {measured} measured, target {target}', rpoLine: 'RPO: backup {age} old, target {target}',
  reviews: 'Review (four eyes)', reviewsCaption: 'Reviews of this run', noReviews: 'No review yet.', reviewForm: 'Sign off',
  decision: 'Decision', comment: 'Comment', commentHint: 'Required when rejecting and with deviations.', deviation: 'Deviation (becomes a follow-up measure)',
  devTitle: 'Deviation', devOwner: 'Owner', devDue: 'Due by', devHint: 'Only with "approved with deviations".',
  fourEyes: 'You triggered this test. Under the four-eyes principle another person must sign it off.',
  reviewNotFinished: 'It can be signed off once the run has finished.', reviewRole: 'Reviewers and admins may sign off.',
  devNeeded: 'With "approved with deviations", describe the deviation.', devNotAllowed: 'An approval without deviations has none; choose "approved with deviations".',
  commentNeeded: 'Please say why.', cancelRun: 'Cancel test', triggeredBy: 'triggered by',
  alertsTitle: 'Alerts', openAlerts: 'Open alerts', openAlertsCaption: 'Open alerts, newest first', resolvedAlerts: 'Recently resolved alerts',
  noAlerts: 'No open alerts.', alertKind: { overdue: 'test overdue', failing: 'test failing' },
  colKind: 'Kind', colSince: 'since', colLevel: 'Escalation level', colState2: 'Handling', alertTitle: 'Alert: {plan}',
  acknowledge: 'Acknowledge', acknowledgeHint: 'Stops the escalation. The all-clear still goes out when the plan is fine again.',
  snooze: 'Snooze', snoozeHint: 'No escalation until then; steps that fall due go out afterwards.', reason: 'Reason', snoozeFor: 'Duration',
  durations: { P1D: '1 day', P3D: '3 days', P7D: '7 days', P14D: '14 days', P30D: '30 days' },
  acknowledgedBy: 'acknowledged on {at} by {by}: {reason}', snoozedBy: 'snoozed until {until} by {by}: {reason}', resolvedAt: 'resolved on {at}',
  notifications: 'Notifications', notificationsCaption: 'Notifications for this alert', colEvent: 'Event', colRecipient: 'Recipient', colSent: 'sent',
  noNotifications: 'No notifications.', alertActRole: 'Operators, reviewers and admins may acknowledge and snooze.', lastFailedRun: 'Failed run',
  reviewsTitle: 'Reviews & measures', waiting: 'Waiting for sign-off', waitingCaption: 'Finished runs without a review', noWaiting: 'Every finished run has been reviewed.',
  recentReviews: 'Recent reviews', recentCaption: 'The latest reviews', colReviewer: 'Reviewer', colAt: 'At', colRun: 'Run',
  measures: 'Follow-up measures', measuresCaption: 'Follow-up measures: {status}', noMeasures: 'None.', colMeasure: 'Measure', colOwner: 'Owner', colDue: 'Due by',
  update: 'Update', close: 'Close with re-test', closeRun: 'Passed re-test', noRetest: 'No passed re-test since the measure was created.',
  closedBy: 'closed by', measureRole: 'Operators, reviewers and admins may update measures.', measureStatus: 'Status', overdueMark: 'overdue',
  reportsTitle: 'Reports', auditReport: 'Audit report', auditHint: 'Summary, controls (BSI, ISO), systems, deviations, verification annex.',
  from: 'from', to: 'to', format: 'Format', language: 'Language', download: 'Download', periodOrder: '"to" must not be before "from".',
  bundle: 'Evidence bundle', bundleHint: 'Chain, public keys and checkpoints for verification without the server (npm run evidence:verify).', bundleLink: 'Download the evidence bundle (JSON)',
  verify: 'Evidence chain verification', verifyHint: 'Checks hashes, order, signatures and checkpoints of every record.', verifyNow: 'Verify now',
  verifyOk: 'The evidence chain is intact.', verifyBroken: 'The evidence chain is broken: record {seq} ({reason}): {message}', verifyRecords: '{n} records checked; head {seq}.',
  verifyCheckpoints: '{n} checkpoints compared.', verifiedAt: 'verified on {at}', reportRole: 'Auditors and admins get reports and evidence bundles.',
  adminTitle: 'Admin', users: 'Users', usersCaption: 'Users of this tenant', colEmail: 'E-mail', colName: 'Name', colRole: 'Role', col2fa: '2FA',
  colLastLogin: 'last sign-in', colUserState: 'State', disabled: 'disabled', locked: 'temporarily locked', active: 'active', sso: 'SSO',
  invite: 'Invite', inviteTitle: 'Invite a user', inviteLink: 'Invitation link (shown only now, valid until {until}):', inviteCopy: 'Give the link only to the invited person.',
  changeUser: 'Change', disable: 'disable', enable: 'enable', resetMfa: 'reset 2FA', role: 'Role', email: 'E-mail', name: 'Name',
  tokens: 'API tokens', tokensCaption: 'API tokens of this tenant', colCreated: 'created', colExpires: 'expires', colLastUsed: 'last used', revoked: 'revoked',
  createToken: 'Create token', tokenName: 'Name (person or system)', expiresAt: 'expires on', revoke: 'Revoke',
  tokenCreated: 'New token (shown only now – copy it now):', tokenNote: 'The name counts as the acting person (four eyes).', expired: 'expired',
  tenants: 'Tenants', tenantsCaption: 'Tenants and access grants', colSlug: 'Slug', colGrant: 'Access', grantUntil: '{role} until {until}', noGrant: 'no access granted',
  enterTenant: 'Enter tenant', leaveTenant: 'Leave tenant', actingIn: 'You act in the tenant {name} with the role {role}.', providerOnly: 'For provider admins only.',
  tenantDisabled: 'disabled', current: 'current', createTenant: 'Create tenant', firstAdmin: 'First admin (gets an invitation)', slugHint: 'Lower-case letters, digits and dashes, e.g. musterstadt.', chooseTenant: 'Choose a tenant that has granted you access.',
  accountTitle: 'My account', twoFactor: 'Second factor (TOTP)', mfaOn: 'set up since {at}', mfaOff: 'not set up', reEnrol: 'Set up again',
  enrolNow: 'Set up now', changePassword: 'Change password', currentPassword: 'Current password', newPassword: 'New password', repeatPassword: 'Repeat new password',
  passwordHint: 'At least 12 characters; long sentences are good.', passwordMismatch: 'The passwords do not match.', passwordChanged: 'The password was changed.',
  ownTokens: 'My API tokens', ownTokensCaption: 'Your personal API tokens', logoutEverywhere: 'Log out everywhere', logoutEverywhereHint: 'Ends all your sessions on every device, this one too.',
  ownTokenRole: 'A personal token has your role ({role}).', wrongPassword: 'The current password is wrong.',
  passwordProblems: { 'at least 12 characters': 'At least 12 characters.', 'at most 256 characters': 'At most 256 characters.', 'too few different characters': 'Too few different characters.', 'must not contain the e-mail name': 'Must not contain the name of the e-mail address.' },
  ownTokensNone: 'Personal tokens exist only inside a tenant.', done: { password: 'The password was changed.', mfa: 'The second factor is set up.' },
  loginTitle: 'Sign in', password: 'Password', loginButton: 'Sign in', loginInvalid: 'E-mail address or password is wrong.',
  loginLocked: 'Too many failed attempts: the account is locked for now. Please try again in {wait}.', ssoButton: 'Sign in with {label}', or: 'or',
  codeTitle: 'Verification code', code: 'Code from the authenticator app or a recovery code', codeButton: 'Verify', codeInvalid: 'The code is wrong.',
  codeReused: 'This code was used already. Please wait for the next one.', codeHint: 'Six digits from your app – or one of your recovery codes.',
  enrolTitle: 'Set up a second factor', enrolIntro: 'Your role requires a second factor. Scan the QR code with an authenticator app (e.g. FreeOTP, Aegis, Microsoft or Google Authenticator).',
  qrLabel: 'QR code for the authenticator app', manualSecret: 'Or type in this key by hand:', enrolCode: 'Code from the app', enrolButton: 'Set up',
  enrolFailed: "The code does not match. Check your device's clock and enter the current code.", enrolRestart: 'Start again (new QR code)',
  recoveryTitle: 'Recovery codes', recoveryIntro: 'Keep these codes safe (print them or store them in a password manager). Each works once if your device is lost. They are shown only now.',
  continue: 'Continue', recoveryUsed: 'You used a recovery code; {n} left.',
  inviteTitle2: 'Set your password', inviteIntro: 'Welcome, {name} ({email}). Set your password.', inviteInvalid: 'This invitation link is invalid or has expired.',
  inviteDone: 'Your password is set. Please sign in.', setPassword: 'Set password', loggedOut: 'You are signed out.',
  crossSite: 'This request came from another website and was refused.', tooMany: 'Too many attempts from this address. Please wait a minute.',
};

export function strings(lang: Lang): Strings {
  return lang === 'en' ? en : de;
}

export function roleLabel(role: string, s: Strings): string {
  const m: Record<string, string> = { admin: s.roleAdmin, operator: s.roleOperator, reviewer: s.roleReviewer, auditor: s.roleAuditor, 'provider-admin': s.roleProvider };
  return m[role] ?? role;
}

/** `28.11.2026, 02:00 MEZ` / `28 Nov 2026, 02:00 CET`. */
export const dateTime = (d: Date | string | null | undefined, lang: Lang) => formatDateTime(d instanceof Date ? d.toISOString() : d, lang);
export const date = (d: Date | string | null | undefined, lang: Lang) => formatDate(d instanceof Date ? d.toISOString() : d, lang);

export {
  checkStatusLabel, decisionLabel, fill, formatBytes, formatNumber, formatSeconds, measureStatusLabel, phaseLabel, planStatusLabel,
  reportLabels, severityLabel, triggerLabel, verdictLabel,
};
