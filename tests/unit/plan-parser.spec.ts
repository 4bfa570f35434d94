import { createHash } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import { formatPlanIssues, parsePlanText, planContentHash, redactPlan } from '../../services/plans/plan.parser.js';
import type { PlanIssue, RestorePlan } from '../../services/plans/plan.types.js';

const SHA = 'ab'.repeat(32);

// Line numbers in the tests below refer to this text; keep it in sync.
const FULL = `id: ewo-db
title: Einwohnermeldewesen – Datenbank
system: { name: OK.EWO, process: Meldewesen, protectionNeed: hoch }
targets: { rto: 4h, rpo: 26h }
cadence: { schedule: "0 2 * * *", timezone: Europe/Berlin, requiredEvery: P1D, grace: PT6H }
source: { type: file, path: /srv/backups/ewo, match: "*.dump", select: newest, settle: 5m, sha256: ${SHA}, size: 1048576 }
restore: { driver: postgres, database: ewo, jobs: 4 }
sandbox: { network: none, memory: 2g, cpus: 1, timeout: 2h }
checks:
  - { name: Einwohner vorhanden, sql: "select count(*) from einwohner", expect: ">= 50000" }
  - { tableRows: { table: einwohner, min: 50000, maxDropVsLastGood: 5% } }
  - { tableExists: { table: public.adressen } }
  - { canary: { sql: "select token from ef_canary", equals: 0123 } }
  - name: Hash-Canary
    canary: { sql: "select token from ef_canary2", equalsSha256: ${SHA.toUpperCase()} }
controls: [BSI-CON.3.A15, BSI-NOT.4.16.1, ISO27001-A.8.13]
notify:
  failure: [mail:it@musterstadt.de]
  escalate: [{ after: P2D, to: [mail:isb@musterstadt.de] }]
`;

const MINIMAL = `id: mini
title: Minimal
targets: { rto: 1h, rpo: 1d }
source: { path: /srv/backups/mini.dump }
restore: { driver: postgres, database: mini }
`;

function planOf(text: string, contentType?: 'yaml' | 'json'): RestorePlan {
  const r = parsePlanText(text, { contentType });
  if ('issues' in r) throw new Error(formatPlanIssues(r.issues).join('\n'));
  return r.plan;
}

function issuesOf(text: string): PlanIssue[] {
  const r = parsePlanText(text, { file: 'restore-plans/t.yaml' });
  if (!('issues' in r)) throw new Error('expected issues, the plan was accepted');
  return r.issues;
}

describe('parsePlanText: valid plans', () => {
  it('parses the full sketch into the typed plan', () => {
    const plan = planOf(FULL);
    expect(plan.id).toBe('ewo-db');
    expect(plan.system).toEqual({ name: 'OK.EWO', process: 'Meldewesen', protectionNeed: 'hoch' });
    expect(plan.targets).toEqual({ rtoSeconds: 14_400, rpoSeconds: 93_600 });
    expect(plan.cadence).toEqual({ schedule: '0 2 * * *', timezone: 'Europe/Berlin', requiredEvery: 'P1D', grace: 'PT6H' });
    expect(plan.source).toEqual({
      type: 'file',
      path: '/srv/backups/ewo',
      match: '*.dump',
      select: 'newest',
      settleSeconds: 300,
      sha256: SHA,
      sizeBytes: 1_048_576,
    });
    expect(plan.restore).toEqual({ driver: 'postgres', database: 'ewo', jobs: 4 });
    expect(plan.sandbox).toEqual({ network: 'none', memoryBytes: 2 * 1024 ** 3, cpus: 1, pids: 512, timeoutSeconds: 7200 });
    expect(plan.checks).toEqual([
      {
        kind: 'sql',
        name: 'Einwohner vorhanden',
        sql: 'select count(*) from einwohner',
        expect: { op: '>=', value: 50_000, text: '>= 50000' },
      },
      { kind: 'tableRows', name: 'Zeilen in einwohner >= 50000', table: 'einwohner', min: 50_000, maxDropPercent: 5 },
      { kind: 'tableExists', name: 'Tabelle public.adressen vorhanden', table: 'public.adressen' },
      // Written unquoted: YAML would make it the number 123; the text as written is kept.
      // the plain canary value is kept only as its SHA-256
      { kind: 'canary', name: 'Canary', sql: 'select token from ef_canary', equalsSha256: createHash('sha256').update('0123').digest('hex') },
      { kind: 'canary', name: 'Hash-Canary', sql: 'select token from ef_canary2', equalsSha256: SHA },
    ]);
    expect(plan.controls).toEqual(['BSI-CON.3.A15', 'BSI-NOT.4.16.1', 'ISO27001-A.8.13']);
    expect(plan.notify).toEqual({
      failure: ['mail:it@musterstadt.de'],
      overdue: [],
      digest: [],
      escalate: [{ after: 'P2D', to: ['mail:isb@musterstadt.de'] }],
    });
  });

  it('fills in defaults for optional blocks', () => {
    const plan = planOf(MINIMAL);
    expect(plan.cadence).toEqual({ timezone: 'Europe/Berlin' });
    expect(plan.source).toEqual({ type: 'file', path: '/srv/backups/mini.dump', select: 'newest' });
    expect(plan.sandbox).toEqual({ network: 'none', memoryBytes: 1024 ** 3, cpus: 1, pids: 512, timeoutSeconds: 7200 });
    expect(plan.checks).toEqual([]);
    expect(plan.controls).toEqual([]);
    expect(plan.system).toBeUndefined();
    expect(plan.notify).toBeUndefined();
  });

  it('accepts JSON, including tab indentation', () => {
    const json = JSON.stringify(
      {
        id: 'json-plan',
        title: 'Per API',
        targets: { rto: 'PT4H', rpo: '26h' },
        source: { type: 'file', path: '/srv/b/x.dump' },
        restore: { driver: 'postgres', database: 'x' },
        sandbox: { memory: 1536 * 1024 ** 2 },
        checks: [{ name: 'n', sql: 'select 1', expect: 1 }],
      },
      null,
      '\t',
    );
    const plan = planOf(json, 'json');
    expect(plan.targets).toEqual({ rtoSeconds: 14_400, rpoSeconds: 93_600 });
    expect(plan.sandbox!.memoryBytes).toBe(1536 * 1024 ** 2);
    expect(plan.checks[0]).toEqual({ kind: 'sql', name: 'n', sql: 'select 1', expect: { op: '==', value: 1, text: '1' } });
  });

  it('reads memory sizes the way Docker does', () => {
    const withMemory = (m: string): number => planOf(`${MINIMAL}sandbox: { memory: ${m} }\n`).sandbox!.memoryBytes;
    expect(withMemory('512m')).toBe(512 * 1024 ** 2);
    expect(withMemory('1536M')).toBe(1536 * 1024 ** 2);
    expect(withMemory('2GiB')).toBe(2 * 1024 ** 3);
  });

  it('returns normalized with sorted keys', () => {
    const r = parsePlanText(MINIMAL, {});
    if ('issues' in r) throw new Error('unexpected issues');
    expect(Object.keys(r.normalized)).toEqual(['cadence', 'checks', 'controls', 'id', 'restore', 'sandbox', 'source', 'targets', 'title']);
    expect(r.normalized).toEqual(r.plan);
  });
});

describe('parsePlanText: issues with path and line', () => {
  it('reports an unknown top-level key on its line with a suggestion', () => {
    expect(issuesOf(`${MINIMAL}contrls: [x]\n`)).toEqual([
      { path: 'contrls', line: 6, message: 'unknown key "contrls" (did you mean "controls"?)' },
    ]);
  });

  it('reports a nested unknown key with its exact path and line', () => {
    const text = `${MINIMAL}checks:
  - { name: a, sql: "select 1", expect: 1 }
  - name: b
    sql: select 2
    expct: ">= 1"
`;
    expect(issuesOf(text)).toEqual([
      { path: 'checks[1].expect', line: 8, message: 'missing required key "expect"' },
      { path: 'checks[1].expct', line: 10, message: 'unknown key "expct" (did you mean "expect"?)' },
    ]);
  });

  it('reports a bad duration with path and line', () => {
    const [issue, ...rest] = issuesOf(MINIMAL.replace('rto: 1h', 'rto: 4 hours'));
    expect(rest).toEqual([]);
    expect(issue).toEqual({
      path: 'targets.rto',
      line: 3,
      message: '"4 hours" is not a duration; use e.g. 90s, 30m, 4h, 2d or ISO 8601 like PT4H, P1D',
    });
  });

  it('reports a bad expectation with path and line', () => {
    const issues = issuesOf(`${MINIMAL}checks:\n  - name: x\n    sql: select 1\n    expect: ">= abc"\n`);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ path: 'checks[0].expect', line: 9 });
    expect(issues[0]!.message).toMatch(/^">= abc": "abc" is not a number, and text can only be compared with == or !=/);
  });

  it('turns a YAML syntax error into an issue with a line', () => {
    expect(issuesOf('id: a\ntitle: t\ntargets: { rto: 4h, rpo: 1d\nsource: x\n')).toEqual([
      { path: '', line: 4, message: 'YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }' },
    ]);
    expect(issuesOf('{\n "id": "a"\n "title": "t"\n}\n')).toEqual([
      { path: '', line: 3, message: 'YAML syntax error: Missing , between flow map items' },
    ]);
  });

  it('reports duplicate keys on the second occurrence', () => {
    expect(issuesOf(`${MINIMAL}title: Again\n`)).toEqual([{ path: 'title', line: 6, message: 'duplicate key "title" (first on line 2)' }]);
  });

  it('reports all issues, in line order', () => {
    const text = `id: Bad_Id
title: t
targets: { rto: 4h }
source: { path: ../x.dump, sha256: abc }
restore: { driver: mysql, database: x, jobs: 20 }
sandbox: { memory: 512, network: bridge }
cadence: { timezone: Mars/Olympus, schedule: "0 2 * *" }
`;
    expect(issuesOf(text).map((i) => `${i.line} ${i.path}`)).toEqual([
      '1 id',
      '3 targets.rpo',
      '4 source.path',
      '4 source.sha256',
      '5 restore.driver',
      '5 restore.jobs',
      '6 sandbox.network',
      '6 sandbox.memory',
      '7 cadence.schedule',
      '7 cadence.timezone',
    ]);
  });

  it('refuses unsupported source types without treating their keys as typos', () => {
    expect(issuesOf(MINIMAL.replace('{ path: /srv/backups/mini.dump }', '{ type: tape, drive: /dev/st0 }'))).toEqual([
      { path: 'source.type', line: 4, message: 'source type "tape" is not supported; supported: file, restic, borg, basebackup' },
    ]);
  });

  it('rejects a canary with both equals and equalsSha256', () => {
    const text = `${MINIMAL}checks:\n  - canary: { sql: select 1, equals: x, equalsSha256: ${SHA} }\n`;
    expect(issuesOf(text)).toEqual([
      { path: 'checks[0].canary.equals', line: 7, message: 'a canary needs exactly one of "equals" or "equalsSha256"' },
    ]);
  });

  it('names the allowed shapes for a check matching none', () => {
    const issues = issuesOf(`${MINIMAL}checks:\n  - { tabelRows: { table: x, min: 1 } }\n`);
    expect(issues).toEqual([
      {
        path: 'checks[0]',
        line: 7,
        message:
          'a check must be one of {name, sql, expect}, {tableRows: {table, min}}, {tableExists: {table}}, ' +
          '{canary: {sql, equals | equalsSha256}} (databases), {files: {min}}, {bytes: {min}}, {exists: {path}}, {manifest: {file | beside}}, ' +
          '{sample: {count}}, {drift: {maxDrop}} (files) ' +
          '(did you mean "tableRows"?)',
      },
    ]);
  });

  it('rejects bad table names and duplicate check names', () => {
    const text = `${MINIMAL}checks:
  - tableExists: { table: a.b.c }
  - { name: same, sql: select 1, expect: 1 }
  - { name: same, sql: select 2, expect: 2 }
`;
    expect(issuesOf(text)).toEqual([
      { path: 'checks[0].tableExists.table', line: 7, message: '"a.b.c" is not a table name; use table or schema.table (letters, digits, _)' },
      { path: 'checks[2]', line: 9, message: 'check name "same" is already used by checks[1]; names identify checks in evidence' },
    ]);
  });
});

describe('formatPlanIssues', () => {
  it('reads notify: recipients, a single recipient without brackets, escalation steps, language', () => {
    const plan = planOf(`${MINIMAL}notify:
  failure: mail:it@musterstadt.de
  overdue: [mail:it@musterstadt.de, webhook:teams-it, mail:it@musterstadt.de]
  dueSoon: [mail:admin@musterstadt.de]
  digest: [mail:leitung@musterstadt.de]
  language: en
  escalate:
    - { after: P2D, to: [mail:isb@musterstadt.de] }
    - { after: 7d, to: [mail:it-leitung@musterstadt.de, webhook:teams-leitung] }
`);
    expect(plan.notify).toEqual({
      failure: ['mail:it@musterstadt.de'],
      overdue: ['mail:it@musterstadt.de', 'webhook:teams-it'],
      dueSoon: ['mail:admin@musterstadt.de'],
      digest: ['mail:leitung@musterstadt.de'],
      language: 'en',
      escalate: [{ after: 'P2D', to: ['mail:isb@musterstadt.de'] }, { after: '7d', to: ['mail:it-leitung@musterstadt.de', 'webhook:teams-leitung'] }],
    });
  });

  it('names every bad notify entry with its path and line', () => {
    const r = parsePlanText(`${MINIMAL}notify:
  failure: [it@musterstadt.de, "mail:not an address"]
  overdue: [webhook:has space]
  escalat: []
  escalate:
    - { after: P7D, to: [mail:isb@musterstadt.de] }
    - { after: P2D, to: [mail:it-leitung@musterstadt.de] }
    - { after: P9D }
    - { after: soon, to: [] }
  language: fr
`);
    expect('issues' in r).toBe(true);
    const issues = (r as { issues: PlanIssue[] }).issues.map((i) => `${i.line} ${i.path}: ${i.message}`);
    expect(issues).toEqual(expect.arrayContaining([
      expect.stringMatching(/^7 notify\.failure\[0\]: "it@musterstadt\.de" must be mail:<address> or webhook:<name>/),
      expect.stringMatching(/^7 notify\.failure\[1\]: "not an address" is not an e-mail address/),
      expect.stringMatching(/^8 notify\.overdue\[0\]: webhook name "has space"/),
      expect.stringMatching(/^9 notify\.escalat: unknown key/),
      expect.stringMatching(/^12 notify\.escalate\[1\]\.after: "after" must be later than the step before \(notify\.escalate\[0\]\)/),
      expect.stringMatching(/^13 notify\.escalate\[2\]\.to: missing required key "to"/),
      expect.stringMatching(/^14 notify\.escalate\[3\]\.after: /),
      expect.stringMatching(/^14 notify\.escalate\[3\]\.to: "to" needs at least one recipient/),
      expect.stringMatching(/^15 notify\.language: language "fr" is not supported/),
    ]));
  });

  it('prints file:line path: message', () => {
    const issues = issuesOf(`${MINIMAL}contrls: [x]\n`);
    expect(formatPlanIssues(issues, 'restore-plans/ewo.yaml')).toEqual([
      'restore-plans/ewo.yaml:6 contrls: unknown key "contrls" (did you mean "controls"?)',
    ]);
    expect(formatPlanIssues([{ path: '', line: 3, message: 'm' }])).toEqual(['line 3: m']);
  });
});

describe('redactPlan and planContentHash', () => {
  it('never keeps a plain canary value (only its SHA-256), and redactPlan still hides any equals', () => {
    const plan = planOf(FULL);
    expect(JSON.stringify(plan)).not.toContain('"0123"');
    expect(plan.checks[3]).toMatchObject({ kind: 'canary', equalsSha256: createHash('sha256').update('0123').digest('hex') });
    const legacy = { ...plan, checks: [{ kind: 'canary' as const, name: 'c', sql: 's', equals: 'geheim' }] };
    const redacted = redactPlan(legacy);
    expect(redacted.checks[0]).toMatchObject({ kind: 'canary', equals: '[redacted]' });
    expect(legacy.checks[0]).toMatchObject({ equals: 'geheim' });
  });

  it('is stable under key reordering and spelled-out defaults', () => {
    const reordered = `restore: { database: mini, driver: postgres }
source: { select: newest, path: /srv/backups/mini.dump, type: file }
targets: { rpo: 1d, rto: 1h }
title: Minimal
id: mini
sandbox: { network: none, memory: 1g, timeout: 2h }
`;
    const hash = planContentHash(planOf(MINIMAL));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(planContentHash(planOf(reordered))).toBe(hash);
    expect(planContentHash(planOf(MINIMAL.replace('rto: 1h', 'rto: 2h')))).not.toBe(hash);
    expect(planContentHash(planOf(MINIMAL.replace('rto: 1h', 'rto: 60m')))).toBe(hash);
  });
});
