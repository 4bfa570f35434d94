/**
 * What other tools say about their restore tests, read into one shape. Every
 * parser is strict in one direction: only words that clearly mean success
 * become `passed`; anything it cannot read is `error` with the reason, never
 * a pass. The raw text is data: it is parsed, measured and stored (hashed, as
 * an attachment), never executed or built into SQL.
 */

export type ExternalStatus = 'passed' | 'failed' | 'error';

export interface ParsedResult {
  status: ExternalStatus;
  /** One line for people (the tool's own words where it has them). */
  message: string;
  startedAt?: Date;
  finishedAt?: Date;
  /** The tool's id of this result (a job session, a restore job): a second report with it is the same run. */
  externalId?: string;
  /** Veeam: the job the event is about; the plan's `external.veeamJob` must match it. */
  jobName?: string;
  /** Names and numbers the tool gave, kept with the run (no data). */
  details: Record<string, string | number | boolean | null>;
}

export class UnreadableResult extends Error {}

const clip = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * RFC 5424 structured data: `[id k="v" k2="v2"][id2 …]`, values with `\"`, `\\` and `\]` escaped.
 * Also Veeam's documented variant: an element without an SD-ID and unquoted numbers
 * (`[categoryId=0 instanceId=390 JobName="…"]`). Returns every parameter of every element (a
 * later one with the same name wins); what cannot be read ends the reading, never guesses.
 */
export function structuredData(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = text.indexOf('[');
  while (i !== -1 && i < text.length) {
    let j = i + 1;
    // an SD-ID is a token without "="; Veeam's element starts with a parameter right away
    const token = /^[^\s\]=]+(?=[\s\]])/.exec(text.slice(j));
    if (token) j += token[0].length;
    for (;;) {
      while (j < text.length && text[j] === ' ') j++;
      if (j >= text.length || text[j] === ']') break;
      const eq = text.indexOf('=', j);
      if (eq === -1) return out;
      const name = text.slice(j, eq).trim();
      if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) return out;
      let k = eq + 1;
      let value = '';
      if (text[k] === '"') {
        for (k++; k < text.length && text[k] !== '"'; k++) {
          if (text[k] === '\\' && k + 1 < text.length && '"\\]'.includes(text[k + 1]!)) k++;
          value += text[k];
        }
        if (k >= text.length) return out; // unterminated value: what came before still counts
        k++;
      } else {
        while (k < text.length && text[k] !== ' ' && text[k] !== ']') value += text[k++];
      }
      out.set(name, value);
      j = k;
    }
    i = text.indexOf('[', j + 1);
  }
  return out;
}

/** The message's own time: RFC 5424 `<PRI>1 TIMESTAMP …`, or Veeam's documented `TIMESTAMP <PRI> HOST …`. */
function syslogTime(text: string): Date | undefined {
  const m = /^\s*(?:<\d{1,3}>\d?\s+)?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))/.exec(text);
  if (!m) return undefined;
  const d = new Date(m[1]!);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/**
 * Veeam Backup & Replication's syslog event, RFC 5424 with the event in the
 * structured data. Only `instanceId` 390 (SureBackup job finished) is a
 * result: `JobResult` 0 Success → passed, 1 Warning → failed (a SureBackup
 * warning means a VM or its test did not fully come up), 2 Failed → failed;
 * anything else is an error.
 */
export function parseVeeamSyslog(raw: string): ParsedResult {
  const text = raw.trim();
  if (!text) throw new UnreadableResult('the message is empty');
  const sd = structuredData(text);
  const instanceId = sd.get('instanceId');
  if (!instanceId) throw new UnreadableResult('no Veeam event in the message (no structured data with instanceId)');
  if (instanceId !== '390') throw new UnreadableResult(`Veeam event ${instanceId} is not a SureBackup result (390: SureBackup job finished)`);
  const jobName = sd.get('JobName');
  const result = sd.get('JobResult');
  const sessionId = sd.get('JobSessionID');
  const description = sd.get('Description') ?? '';
  const details: ParsedResult['details'] = { instanceId: 390, jobName: jobName ?? null, jobResult: result ?? null, jobSessionId: sessionId ?? null };
  const at = syslogTime(text);
  const base = { ...(at && { finishedAt: at }), ...(sessionId && { externalId: `veeam:${sessionId}` }), ...(jobName && { jobName }), details };
  if (!jobName) return { ...base, status: 'error', message: 'the SureBackup event names no job (JobName)' };
  switch (result) {
    case '0': return { ...base, status: 'passed', message: clip(description || `SureBackup job '${jobName}' finished with Success`) };
    case '1': return { ...base, status: 'failed', message: clip(description || `SureBackup job '${jobName}' finished with Warning`) };
    case '2': return { ...base, status: 'failed', message: clip(description || `SureBackup job '${jobName}' failed`) };
    default: return { ...base, status: 'error', message: `SureBackup job '${clip(jobName, 100)}': JobResult ${result === undefined ? 'missing' : `"${clip(result, 20)}"`} is not 0, 1 or 2` };
  }
}

/**
 * `restic check` (0.14+) as a post-job script captures it: stdout and stderr
 * together, plus the exit code when known. Passed only with the tool's own
 * "no errors were found" and no error line; "Fatal:" or "error" lines fail.
 */
export function parseResticCheck(output: string, exitCode?: number | null): ParsedResult {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const subset = lines.find((l) => /^read (all data|\d+\/\d+ of the data|.* of data packs)/i.test(l));
  const errors = lines.filter((l) => /^Fatal:|^error|^\s*error:|pack .* (contained errors|not referenced|does not exist)|repository contains errors|wrong password|no such file/i.test(l));
  const details: ParsedResult['details'] = { tool: 'restic check', exitCode: exitCode ?? null, errorLines: errors.length, ...(subset && { readData: clip(subset, 100) }) };
  if (!lines.length) throw new UnreadableResult('the restic check output is empty');
  if (errors.length || (exitCode !== undefined && exitCode !== null && exitCode !== 0)) {
    return { status: 'failed', message: clip(errors[0] ?? `restic check exited ${exitCode}`), details };
  }
  if (lines.some((l) => /^no errors were found$/i.test(l))) return { status: 'passed', message: 'restic check: no errors were found', details };
  throw new UnreadableResult('restic check output without its verdict ("no errors were found" or an error)');
}

/**
 * `borg check` (1.2, with `--info` or `-v`, as a post-job script captures
 * it). borg prints little on success: the exit code decides when it is
 * given (0 ok, 1 warning → failed, 2 error → failed); without it, the
 * completion lines must be there and no error line.
 */
export function parseBorgCheck(output: string, exitCode?: number | null): ParsedResult {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /error|corrupt|missing|mismatch|passphrase supplied .* is incorrect|is not a valid repository|Repository .* does not exist/i.test(l) && !/no problems found|\b0 (integrity )?errors/i.test(l));
  const done = lines.filter((l) => /^(Repository|Archive consistency) check (complete|finished)|no problems found|check finished successfully|^finished segment check/i.test(l));
  const details: ParsedResult['details'] = { tool: 'borg check', exitCode: exitCode ?? null, errorLines: errors.length };
  if (exitCode !== undefined && exitCode !== null) {
    if (exitCode === 0 && !errors.length) return { status: 'passed', message: 'borg check: exit 0, no problems found', details };
    if (exitCode === 0) return { status: 'failed', message: clip(`borg check exit 0, but: ${errors[0]}`), details };
    return { status: exitCode === 1 || exitCode === 2 ? 'failed' : 'error', message: clip(errors[0] ?? `borg check exited ${exitCode}`), details };
  }
  if (!lines.length) throw new UnreadableResult('the borg check output is empty and no exit code was sent; send exitCode');
  if (errors.length) return { status: 'failed', message: clip(errors[0]!), details };
  if (done.length) return { status: 'passed', message: clip(`borg check: ${done.at(-1)}`), details };
  throw new UnreadableResult('borg check output without its verdict; run it with --info, or send exitCode');
}

/**
 * The AWS Backup shape of a restore job's validation (restore testing):
 * `{RestoreJobId, ValidationStatus: SUCCESSFUL|FAILED|TIMED_OUT|VALIDATING, ValidationStatusMessage}`,
 * optionally with `CreationDate` and `CompletionDate`.
 */
export function parseAwsRestoreValidation(body: unknown): ParsedResult {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UnreadableResult('an AWS restore validation is a JSON object');
  const o = body as Record<string, unknown>;
  const id = typeof o.RestoreJobId === 'string' ? o.RestoreJobId : undefined;
  const status = typeof o.ValidationStatus === 'string' ? o.ValidationStatus : undefined;
  const message = typeof o.ValidationStatusMessage === 'string' ? o.ValidationStatusMessage : '';
  const date = (v: unknown) => {
    if (typeof v === 'number') return new Date(v * 1000);
    if (typeof v === 'string') { const d = new Date(v); return Number.isNaN(d.getTime()) ? undefined : d; }
    return undefined;
  };
  const startedAt = date(o.CreationDate);
  const finishedAt = date(o.CompletionDate);
  const details: ParsedResult['details'] = { restoreJobId: id ?? null, validationStatus: status ?? null };
  const base = { ...(id && { externalId: `aws:${id}` }), ...(startedAt && { startedAt }), ...(finishedAt && { finishedAt }), details };
  if (!status) throw new UnreadableResult('no ValidationStatus');
  switch (status) {
    case 'SUCCESSFUL': return { ...base, status: 'passed', message: clip(message || 'validation successful') };
    case 'FAILED': return { ...base, status: 'failed', message: clip(message || 'validation failed') };
    case 'TIMED_OUT': return { ...base, status: 'failed', message: clip(message || 'validation timed out') };
    default: return { ...base, status: 'error', message: `ValidationStatus ${clip(status, 40)} is not a final result (SUCCESSFUL, FAILED, TIMED_OUT)` };
  }
}
