/**
 * Turn what pg_restore / psql said (C-locale messages, LC_MESSAGES=C) into findings.
 * An exit code alone proves little: psql exits 0 on a cut-off script, and without
 * ON_ERROR_STOP also on SQL errors. Tool output can quote row data (personal data),
 * so only the error lines themselves are kept, never DETAIL/CONTEXT/"Command was:"
 * or COPY data, and values quoted by data-type errors are redacted.
 */
import { finding, type Finding, type FindingCode } from '../../../services/findings.js';

export interface ToolOutcome { tool: 'pg_restore' | 'psql'; exitCode: number | null; stderr: string }

const MAX_LINES = 3;
const MAX_CHARS = 200;

type Rule = { code: FindingCode; re: RegExp };

// Checked in order; the first match decides a line's code. Messages as observed from PostgreSQL 15.
const RULES: Rule[] = [
  { code: 'VERSION_UNSUPPORTED', re: /unsupported version \(\d+\.\d+\) in file header/ },
  { code: 'ARCHIVE_UNREADABLE', re: /did not find magic string in file header|does not appear to be a valid archive|input file is too short|input file appears to be a text format dump|unrecognized archive format|expected format \(\d+\) differs from format found in file|this format cannot be read/ },
  {
    code: 'ARCHIVE_TRUNCATED',
    re: new RegExp([
      'could not read from input file: end of file', // custom format cut off (serial and -j)
      'unexpected end of file',
      'could not find block ID \\d+ in archive', // -j worker seeking to data beyond the cut
      'could not uncompress data', // zlib: invalid stored block lengths, incorrect data check, …
      'invalid stored block', 'could not close data file', // -Fd: a .dat.gz member cut off ("…: Success")
      'could not open input file "[^"]*/\\d+\\.dat(\\.gz|\\.lz4|\\.zst)?"', // -Fd: a data member is missing
      'could not find header for file "[^"]*" in tar archive', 'could not find file "[^"]*" in archive',
      'corrupt tar header found', 'now at file position', 'compressed data is corrupt',
      'premature end', 'Decoding error', 'crc error', 'invalid compressed data', // gzip / zstd piped into psql
    ].join('|')),
  },
  { code: 'EXTENSION_MISSING', re: /extension "[^"]+" is not available|could not open extension control file/ },
];

// Lines that repeat or summarise another error and so add nothing on their own.
const ECHO_RE = /a worker process died unexpectedly|errors ignored on restore/;
// An error line: pg_restore's "pg_restore: error: …", psql's "psql:<file>:<line>: ERROR:  …", a bare ERROR/FATAL,
// or a decompressor piped into psql ("gzip: stdin: unexpected end of file", zstd's "/*stdin*\ : Read error (39) : premature end").
const ERROR_LINE_RE = /^(?:pg_restore: error: |psql: error: |psql:.*?:\d+: (?:ERROR|FATAL|error): |(?:ERROR|FATAL|PANIC): |gzip: |zstd: |\/\*stdin\*\\ : )/;
// For an otherwise unexplained exit: tool and shell lines only (never DETAIL/CONTEXT/"Command was:" continuations).
const TOOL_LINE_RE = /^(?:pg_restore|psql|gzip|zstd|tar|bash|sh)[:\s]|^(?:Killed|Terminated|Segmentation fault)/;
// Errors whose message ends in a quoted input value (row data).
const QUOTES_VALUE_RE = /(invalid input syntax for (?:type )?[^:]*: |invalid input value for enum [^:]*: |out of range: |malformed [a-z ]+ literal: |invalid value for [^:]*: |value too long for type[^:]*: )".*$/;

export function classifyRestoreOutput(o: ToolOutcome, ctx: { plainComplete?: boolean }): Finding[] {
  const byCode = new Map<FindingCode, string[]>();
  const add = (code: FindingCode, line: string) => {
    const list = byCode.get(code) ?? [];
    list.push(line);
    byCode.set(code, list);
  };
  let errorLines = 0;
  let echoes = 0;

  // parallel pg_restore workers write to one stderr: two messages can share a line; split them apart again
  const lines = o.stderr.split(/\r?\n/).flatMap((l) => l.split(/(?<=.)(?=pg_restore: (?:error|warning): )/));
  for (const raw of lines) {
    const line = raw.trimEnd();
    if (!ERROR_LINE_RE.test(line)) continue; // DETAIL:, CONTEXT:, HINT:, LINE n:, Command was:, SQL text, data
    const rule = RULES.find((r) => r.re.test(line));
    if (!rule && ECHO_RE.test(line)) { echoes++; continue; }
    errorLines++;
    add(rule?.code ?? 'RESTORE_ERROR', line);
  }

  const exit = o.exitCode === null ? 'was terminated by a signal' : `exited with code ${o.exitCode}`;
  const out: Finding[] = [];
  const emit = (code: FindingCode, lead: string) => {
    const lines = byCode.get(code) ?? [];
    out.push(finding(code, lines.length ? `${lead}: ${summarise(lines)}` : lead));
  };

  if (byCode.has('ARCHIVE_UNREADABLE')) emit('ARCHIVE_UNREADABLE', `${o.tool} could not read the archive`);
  if (byCode.has('VERSION_UNSUPPORTED')) emit('VERSION_UNSUPPORTED', `${o.tool} does not support this archive version`);
  const plainCut = o.tool === 'psql' && ctx.plainComplete === false;
  if (byCode.has('ARCHIVE_TRUNCATED') || plainCut) {
    const why = plainCut && !byCode.has('ARCHIVE_TRUNCATED')
      ? 'the plain dump lacks its closing "PostgreSQL database dump complete" line: it is cut off'
      : 'the archive ends early or its data is damaged';
    emit('ARCHIVE_TRUNCATED', why);
  }
  if (byCode.has('EXTENSION_MISSING')) {
    const names = [...new Set((byCode.get('EXTENSION_MISSING') ?? []).map(extensionName).filter(Boolean))];
    emit('EXTENSION_MISSING', `the restore needs extension(s) ${names.join(', ') || '(unknown)'} that the server does not have`);
  }
  // a damaged archive explains pg_restore's follow-up failures (often half-written lines of parallel workers)
  const damaged = o.tool === 'pg_restore' && (byCode.has('ARCHIVE_TRUNCATED') || byCode.has('ARCHIVE_UNREADABLE'));
  if (byCode.has('RESTORE_ERROR') && !damaged) emit('RESTORE_ERROR', `${o.tool} ${exit} with ${byCode.get('RESTORE_ERROR')!.length} error(s)`);
  if (o.exitCode === 0) {
    if (errorLines > 0) out.push(finding('EXIT_CODE_LIED', `${o.tool} exited with code 0 although it reported ${errorLines} error(s)`));
    else if (plainCut) out.push(finding('EXIT_CODE_LIED', 'psql exited with code 0 although the plain dump it ran is cut off'));
  } else if (out.length === 0) {
    // non-zero exit without a message we recognise (or only echo lines): still a failed restore
    const tail = o.stderr.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => ERROR_LINE_RE.test(l) || TOOL_LINE_RE.test(l)).slice(-MAX_LINES);
    out.push(finding('RESTORE_ERROR', `${o.tool} ${exit}${tail.length ? `: ${summarise(tail)}` : echoes ? '' : ' without an error message'}`));
  }
  return out;
}

function extensionName(line: string): string {
  return /extension "([^"]+)" is not available/.exec(line)?.[1] ?? /extension control file "(?:[^"]*\/)?([^"/]+)\.control"/.exec(line)?.[1] ?? '';
}

/** First lines, shortened and without row data, plus a count of the rest. */
function summarise(lines: string[]): string {
  const shown = lines.slice(0, MAX_LINES).map(clean);
  const rest = lines.length - shown.length;
  return shown.join(' | ') + (rest > 0 ? ` (+${rest} more)` : '');
}

/** One tool or SQL error line without row data: values quoted in data-type errors are cut out. */
export function clean(line: string): string {
  const s = line
    .replace(/^pg_restore: error: (could not execute query: )?/, '')
    .replace(/^psql:.*?:(\d+): /, 'line $1: ')
    .replace(QUOTES_VALUE_RE, '$1"…"')
    .replace(/\bvalue ".*" is out of range/, 'value "…" is out of range')
    .replace(/\s{2,}/g, ' ');
  return s.length > MAX_CHARS ? `${s.slice(0, MAX_CHARS - 1)}…` : s;
}
