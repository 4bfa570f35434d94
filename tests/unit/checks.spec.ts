import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { ACTUAL_MAX, lastGoodCounts, quoteTable, runChecks, sqlCheckRunner, type QueryFn } from '../../workers/checks/checks.js';
import { parseExpect } from '../../services/plans/expect.js';
import type { PlanCheck } from '../../services/plans/plan.types.js';

// the query function is the seam to the sandbox; here it answers from a table of SQL -> value
const answers = (m: Record<string, string | null | Error>): QueryFn => async (sql) => {
  const v = m[sql];
  if (v instanceof Error) return { ok: false, error: v.message };
  if (v === undefined) return { ok: false, error: `relation does not exist: ${sql}` };
  return { ok: true, value: v };
};

describe('runChecks', () => {
  it('evaluates sql, tableRows, tableExists and reports expected vs actual', async () => {
    const checks: PlanCheck[] = [
      { kind: 'sql', name: 'n', sql: 'select 1', expect: parseExpect('>= 10') },
      { kind: 'tableRows', name: 'rows', table: 'public.t', min: 5 },
      { kind: 'tableExists', name: 'exists', table: 'u' },
    ];
    const r = await runChecks(checks, sqlCheckRunner(answers({ 'select 1': '9', 'select count(*) from "public"."t"': '5', [`select to_regclass('"u"') is not null`]: 'f' })));
    expect(r.map((c) => [c.status, c.expected, c.actual])).toEqual([
      ['failed', '>= 10', '9'], ['passed', '>= 5', '5'], ['failed', 'vorhanden', 'fehlt'],
    ]);
  });

  it('a query error is a check error with the message, not a pass', async () => {
    const r = await runChecks([{ kind: 'sql', name: 'x', sql: 'select boom', expect: parseExpect('== 0') }], sqlCheckRunner(answers({ 'select boom': new Error('column "boom" does not exist') })));
    expect(r[0]).toMatchObject({ status: 'error', actual: null });
    expect(r[0]!.message).toContain('boom');
  });

  it('a canary never exposes the value, for equals and equalsSha256', async () => {
    const secret = 'geheim-123';
    const sha = createHash('sha256').update(secret).digest('hex');
    const checks: PlanCheck[] = [
      { kind: 'canary', name: 'a', sql: 'q', equals: secret },
      { kind: 'canary', name: 'b', sql: 'q', equalsSha256: sha },
      { kind: 'canary', name: 'c', sql: 'q', equals: 'other' },
    ];
    const r = await runChecks(checks, sqlCheckRunner(answers({ q: secret })));
    expect(r.map((c) => c.status)).toEqual(['passed', 'passed', 'failed']);
    expect(JSON.stringify(r)).not.toContain(secret);
  });

  it('a failing canary query never echoes its error (which could quote the value)', async () => {
    const r = await runChecks([{ kind: 'canary', name: 'c', sql: 'select token::int from t', equals: 'geheim' }],
      sqlCheckRunner(answers({ 'select token::int from t': new Error('invalid input syntax for type integer: "geheim-123"') })));
    expect(r[0]).toMatchObject({ status: 'error', message: 'Abfrage fehlgeschlagen' });
    expect(JSON.stringify(r)).not.toContain('geheim-123');
  });

  it('maxDropVsLastGood fails a drop beyond the limit and passes within it', async () => {
    const check: PlanCheck = { kind: 'tableRows', name: 'rows', table: 't', min: 1, maxDropPercent: 5 };
    const last = lastGoodCounts([{ kind: 'tableRows', name: 'rows', status: 'passed', actual: '1000' }]);
    const q = (n: string) => answers({ 'select count(*) from "t"': n });
    expect((await runChecks([check], sqlCheckRunner(q('950'), last)))[0]!.status).toBe('passed');
    const dropped = (await runChecks([check], sqlCheckRunner(q('949'), last)))[0]!;
    expect(dropped.status).toBe('failed');
    expect(dropped.message).toContain('5%');
    // without an earlier passed run only min counts
    expect((await runChecks([check], sqlCheckRunner(q('2'))))[0]!.status).toBe('passed');
  });

  it('skips the rest when aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await runChecks([{ kind: 'tableExists', name: 'e', table: 't' }], sqlCheckRunner(answers({})), ac.signal);
    expect(r[0]!.status).toBe('skipped');
  });

  it('quotes table names so they cannot inject SQL', () => {
    expect(quoteTable('public.ein"wohner')).toBe('"public"."ein""wohner"');
  });
});

describe('evidence keeps what a check compares, not row data', () => {
  it('cuts an actual value above ACTUAL_MAX characters and says so; short values stay whole', async () => {
    const row = `Müller;Hauptstraße 1;${'x'.repeat(5000)}`;
    const r = await runChecks([
      { kind: 'sql', name: 'long', sql: 'select row', expect: parseExpect('!= 0') },
      { kind: 'sql', name: 'short', sql: 'select n', expect: parseExpect('== 42') },
    ], sqlCheckRunner(answers({ 'select row': row, 'select n': '42' })));
    expect([...r[0]!.actual!].length).toBe(ACTUAL_MAX + 1); // the cut is marked with …
    expect(r[0]!.actual!.endsWith('…')).toBe(true);
    expect(r[0]!.actualTruncated).toBe(true);
    expect(r[0]!.message.length).toBeLessThan(ACTUAL_MAX + 40);
    expect(r[1]).toMatchObject({ actual: '42', status: 'passed' });
    expect(r[1]!.actualTruncated).toBeUndefined();
  });
});
