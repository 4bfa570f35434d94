import { describe, expect, it } from 'vitest';
import { evaluateBuiltins, parseDbTime, type DbProfile } from '../../workers/checks/builtin.js';
import { parsePlanText } from '../../services/plans/plan.parser.js';

const dump = new Date('2026-12-06T02:00:00Z');
const profile = (over: Partial<DbProfile> = {}): DbProfile => ({
  tables: [
    { name: 'public.einwohner', rows: 3000, exact: true, columns: ['id integer', 'name text'] },
    { name: 'public.meldung', rows: 1500, exact: true, columns: ['id bigint', 'am timestamp with time zone'] },
  ],
  indexes: ['public.einwohner_pkey', 'public.meldung_pkey'],
  constraints: ['public.einwohner p einwohner_pkey'],
  views: [],
  functions: [],
  sequences: [{ name: 'public.meldung_id_seq', column: 'public.meldung.id', next: 1501, max: 1500 }],
  freshness: [{ table: 'public.meldung', column: 'am', newest: '2026-12-06T01:40:00Z', exact: true }],
  ...over,
});
const run = (p: DbProfile, baseline?: DbProfile, config = {}) => evaluateBuiltins({ profile: p, baseline, config, backupCreatedAt: dump, rpoSeconds: 26 * 3600 });
const codes = (r: ReturnType<typeof run>) => r.findings.map((f) => f.code);

describe('built-in checks', () => {
  it('a healthy database, first and second time: nothing fires; the first records the baseline', () => {
    const first = run(profile());
    expect(codes(first)).toEqual([]);
    expect(first.results.map((r) => `${r.name}:${r.status}`)).toEqual(['freshness:passed', 'sequences:passed', 'schema:info', 'volume:info']);
    const second = run(profile(), profile());
    expect(codes(second)).toEqual([]);
    expect(second.results.every((r) => r.status === 'passed')).toBe(true);
  });
  it('stale data behind a fresh dump: a warning when detected, a failure when the plan names the column', () => {
    const stale = profile({ freshness: [{ table: 'public.meldung', column: 'am', newest: '2025-11-01T00:00:00Z', exact: true }] });
    expect(run(stale).findings).toEqual([expect.objectContaining({ code: 'DATA_STALE_SUSPECTED', severity: 'warning' })]);
    expect(run(stale, undefined, { freshness: { table: 'public.meldung', column: 'am' } }).findings).toEqual([expect.objectContaining({ code: 'DATA_STALE', severity: 'failure' })]);
  });
  it('future dates are not write times; no date column at all says so, never a false alarm', () => {
    const future = profile({ freshness: [
      { table: 'public.meldung', column: 'am', newest: '2026-12-06T01:00:00Z', exact: true },
      { table: 'public.vertrag', column: 'gueltig_bis', newest: '9999-12-31T00:00:00Z', exact: true },
    ] });
    expect(run(future).results[0]).toMatchObject({ status: 'passed', actual: expect.stringContaining('public.meldung.am') });
    const none = run(profile({ freshness: [] }));
    expect(none.findings).toEqual([expect.objectContaining({ code: 'DATA_FRESHNESS_UNKNOWN', severity: 'info' })]);
  });
  it('a sequence at or below its column\'s maximum: SEQUENCE_BEHIND naming it and the gap', () => {
    const r = run(profile({ sequences: [{ name: 'public.meldung_id_seq', column: 'public.meldung.id', next: 6, max: 1500 }] }));
    expect(r.findings[0]).toMatchObject({ code: 'SEQUENCE_BEHIND', severity: 'failure' });
    expect(r.findings[0]!.message).toContain('public.meldung_id_seq next 6 <= max(public.meldung.id) 1500 (gap 1495)');
  });
  it('lost objects against the baseline fail, new ones are information', () => {
    const lost = profile({ indexes: ['public.einwohner_pkey'], tables: [profile().tables[0]!, { ...profile().tables[1]!, columns: ['id bigint'] }, { name: 'public.neu', rows: 0, exact: true, columns: [] }] });
    const r = run(lost, profile());
    expect(codes(r)).toEqual(['SCHEMA_DRIFT', 'SCHEMA_ADDED']);
    expect(r.findings[0]!.message).toContain('column public.meldung.am timestamp with time zone');
    expect(r.findings[0]!.message).toContain('index public.meldung_pkey');
    expect(r.findings[1]!.message).toContain('table public.neu');
  });
  it('a table that lost most of its rows: VOLUME_DROP; small tables and small drops are quiet', () => {
    const t = profile().tables;
    const r = run(profile({ tables: [t[0]!, { ...t[1]!, rows: 15 }] }), profile());
    expect(codes(r)).toEqual(['VOLUME_DROP']);
    expect(r.findings[0]!.message).toContain('public.meldung 1500 -> 15');
    expect(codes(run(profile({ tables: [t[0]!, { ...t[1]!, rows: 1000 }] }), profile()))).toEqual([]);
    expect(codes(run(profile({ tables: [t[0]!, { ...t[1]!, rows: 1000 }] }), profile(), { volume: { maxDropPercent: 10 } }))).toEqual(['VOLUME_DROP']);
  });
  it('a check switched off is recorded as skipped with its reason, and raises nothing', () => {
    const r = run(profile({ sequences: [{ name: 's', column: 'c', next: 1, max: 9 }] }), undefined, { sequences: { off: 'IDs vergibt die Anwendung selbst' } });
    expect(codes(r)).toEqual([]);
    expect(r.results.find((x) => x.name === 'sequences')).toMatchObject({ status: 'skipped', message: 'abgeschaltet: IDs vergibt die Anwendung selbst' });
  });
  it('the plan names the data\'s age by a query: its value is judged like a named column, an error or a non-date is never a pass', () => {
    const sql = { freshness: { sql: 'select max(geaendert_am) from akte' } };
    const q = (value: string | null) => evaluateBuiltins({ profile: profile(), config: sql, backupCreatedAt: dump, rpoSeconds: 26 * 3600, freshnessQuery: { ok: true, value } });
    expect(q('2026-12-06 02:30:00+01').results[0]).toMatchObject({ status: 'passed', actual: expect.stringContaining('builtin.freshness.sql = 2026-12-06T01:30:00.000Z') });
    // the profile's fresh column does not rescue a stale query: the plan said which value counts
    expect(q('2025-06-01 00:00:00+02').findings).toEqual([expect.objectContaining({ code: 'DATA_STALE', severity: 'failure' })]);
    expect(q(null).findings).toEqual([expect.objectContaining({ code: 'DATA_STALE', message: expect.stringContaining('it has no values') })]);
    expect(q('gestern').findings).toEqual([expect.objectContaining({ code: 'DATA_STALE', message: expect.stringContaining('"gestern" is not a date/time') })]);
    const failed = evaluateBuiltins({ profile: profile(), config: sql, backupCreatedAt: dump, rpoSeconds: 26 * 3600, freshnessQuery: { ok: false, error: 'relation "akte" does not exist' } });
    expect(failed.results[0]).toMatchObject({ status: 'failed', actual: 'Abfragefehler' });
    expect(failed.findings).toEqual([expect.objectContaining({ code: 'CHECK_ERROR', severity: 'failure', message: expect.stringContaining('relation "akte" does not exist') })]);
  });
  it('reads the date/time forms databases print', () => {
    expect(new Date(parseDbTime('2026-12-05 22:00:00+01')).toISOString()).toBe('2026-12-05T21:00:00.000Z');
    expect(new Date(parseDbTime('2026-12-05 22:00:00.123456+05:30')).toISOString()).toBe('2026-12-05T16:30:00.123Z');
    expect(new Date(parseDbTime('2026-12-05 21:00:00')).toISOString()).toBe('2026-12-05T21:00:00.000Z');
    expect(new Date(parseDbTime('2026-12-05T21:00:00Z')).toISOString()).toBe('2026-12-05T21:00:00.000Z');
    expect(new Date(parseDbTime('2026-12-05')).toISOString()).toBe('2026-12-05T00:00:00.000Z');
    for (const bad of ['gestern', '05.12.2026', '2026-12-05 25:00:00', '']) expect(parseDbTime(bad)).toBeNaN();
  });
  it('builtin.freshness in a plan: a query or a column, not both; a query must be one select', () => {
    const plan = (freshness: string) => parsePlanText(`id: pl\ntitle: P\ntargets: {rto: 1h, rpo: 1d}\nsource: {type: file, path: /b/x.dump}\nrestore: {driver: postgres, database: app}\nbuiltin:\n  freshness: ${freshness}\n`, { file: 'p.yaml' });
    expect(plan(`{sql: "select max(am) from meldung"}`)).toMatchObject({ plan: { builtin: { freshness: { sql: 'select max(am) from meldung' } } } });
    expect(plan(`{sql: "select max(am) from meldung", table: public.meldung, column: am}`)).toEqual({ issues: [
      expect.objectContaining({ path: 'builtin.freshness.sql', line: 7, message: expect.stringContaining('"sql" or "table"/"column", not both') }),
    ] });
    expect(plan(`{sql: "delete from meldung"}`)).toEqual({ issues: [expect.objectContaining({ path: 'builtin.freshness.sql', message: expect.stringContaining('one query (select … or with …)') })] });
  });
});
