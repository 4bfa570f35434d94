import type { AuditReportData, RunProtocolData } from './report.types.js';
import { REPORT_TIME_ZONE } from './i18n.js';

/**
 * CSV exports for spreadsheets. Format decision: `;` as separator, a UTF-8
 * BOM and CRLF line ends. That is what Excel with German regional settings
 * opens correctly by double-click (with `,` it puts everything in one column,
 * without the BOM umlauts break); LibreOffice and scripts read it as well.
 * Quoting follows RFC 4180 (fields with `;`, `"`, CR or LF are quoted, quotes
 * doubled; a text starting with = + - @ gets a leading ' so spreadsheets do
 * not run it as a formula). Times come twice: ISO 8601 UTC (for machines) and
 * Europe/Berlin local time `YYYY-MM-DD HH:MM:SS +01:00` (for people). Numbers
 * are plain (`.` decimal, no grouping), column names English and stable.
 */
export const CSV_SEPARATOR = ';';
const BOM = '\uFEFF';
const EOL = '\r\n';

type Value = string | number | boolean | null | undefined;

export function csvField(v: Value): string {
  if (v == null) return '';
  const s = typeof v === 'boolean' ? (v ? 'true' : 'false') : String(v);
  // a leading = + - @ would be run as a formula by spreadsheet programs
  const safe = /^[=+\-@\t\r]/.test(s) && typeof v !== 'number' ? `'${s}` : s;
  return /[;"\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(header: string[], rows: Value[][]): string {
  return BOM + [header, ...rows].map((r) => r.map(csvField).join(CSV_SEPARATOR)).join(EOL) + EOL;
}

const berlin = new Intl.DateTimeFormat('sv-SE', {
  timeZone: REPORT_TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

const offset = new Intl.DateTimeFormat('en-US', { timeZone: REPORT_TIME_ZONE, timeZoneName: 'shortOffset' });

/**
 * `2026-11-28 02:05:00 +01:00` (Europe/Berlin) from an ISO instant; empty for
 * nothing. The offset keeps the repeated hour of the autumn change unambiguous.
 */
export function berlinTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const m = /GMT([+-])(\d+)(?::(\d+))?/.exec(offset.formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '');
  const off = m ? `${m[1]}${m[2]!.padStart(2, '0')}:${(m[3] ?? '00').padStart(2, '0')}` : '+00:00';
  return `${berlin.format(d)} ${off}`;
}

const utc = (iso: string | null | undefined): string => {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString();
};

export type RunCsvRow = RunProtocolData['run'] & { planId: string };

/** One line per run. */
export function runsToCsv(rows: RunCsvRow[]): string {
  const header = [
    'run_id', 'plan_id', 'verdict', 'trigger', 'triggered_by', 'queued_at_utc', 'started_at_utc', 'started_at_berlin',
    'finished_at_utc', 'finished_at_berlin', 'rto_target_s', 'rto_measured_s', 'rto_met', 'rpo_target_s',
    'backup_age_s', 'rpo_met', 'checks_total', 'checks_passed', 'findings', 'backup_path', 'backup_size_bytes',
    'backup_sha256', 'backup_created_at_utc',
  ];
  return toCsv(header, rows.map((r) => [
    r.id, r.planId, r.verdict ?? '', r.trigger, r.triggeredBy, utc(r.queuedAt), utc(r.startedAt), berlinTime(r.startedAt),
    utc(r.finishedAt), berlinTime(r.finishedAt), r.rto?.targetSeconds, r.rto?.measuredSeconds, r.rto?.met, r.rpo?.targetSeconds,
    r.rpo?.backupAgeSeconds, r.rpo?.met, r.checks.length, r.checks.filter((c) => c.status === 'passed').length,
    r.findings.map((f) => f.code).join(' '), r.backup?.path, r.backup?.sizeBytes, r.backup?.sha256, utc(r.backup?.createdAt),
  ]));
}

/** The systems table of the audit report, one line per plan. */
export function auditToCsv(data: AuditReportData): string {
  const header = [
    'plan_id', 'title', 'system', 'status', 'rto_target_s', 'rto_last_s', 'rpo_target_s', 'backup_age_last_s',
    'last_test_at_utc', 'last_test_at_berlin', 'last_verdict', 'next_due_at_utc', 'next_due_at_berlin',
    'runs', 'passed', 'failed', 'errors', 'period_from_utc', 'period_to_utc', 'kind',
  ];
  return toCsv(header, data.systems.map((s) => [
    s.planId, s.title, s.system, s.status, s.rtoTargetSeconds, s.rtoLastSeconds, s.rpoTargetSeconds, s.backupAgeLastSeconds,
    utc(s.lastTestAt), berlinTime(s.lastTestAt), s.lastVerdict ?? '', utc(s.nextDueAt), berlinTime(s.nextDueAt),
    s.runs, s.passed, s.failed, s.errors, utc(data.period.from), utc(data.period.to), s.kind,
  ]));
}
