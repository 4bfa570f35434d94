import type { DbProfile } from '../../checks/builtin.js';
import type { Sandbox } from '../../sandbox/sandbox.js';
import { sandboxRows } from './postgres.driver.js';
import { clean } from './classify.js';

/** Tables smaller than this on disk (and without an index) are counted exactly, and their date/time columns read exactly when it comes to that. */
export const EXACT_BYTES_BELOW = 64 * 1024 * 1024;

/**
 * A valid, complete b-tree index whose first column is this one: max() of the
 * column is then one step down the index, exact and as fast for a billion
 * rows as for ten.
 */
const LEADING_INDEX = (rel: string, attnum: string) => `exists (select 1 from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_am am on am.oid = ic.relam
    where i.indrelid = ${rel} and i.indkey[0] = ${attnum} and i.indisvalid and i.indpred is null and am.amname = 'btree')`;

const USER_SCHEMA = `n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'`;

/** How much of the date/time columns a query reads: 1 those an index leads with; 2 also those of small tables; 3 also the others, from the statistics. */
type FreshLevel = 1 | 2 | 3;

/**
 * Read-only queries that describe the restored database in names and
 * numbers. Names come from the catalog and are quoted by the server
 * (format %I); the few statements they run per table (count, max) are built
 * by the server from those quoted names and run through query_to_xml, so no
 * name from the backup ever becomes SQL text in ernstfall.
 */
const ctes = (level: FreshLevel) => `
with t as (
  select c.oid, n.nspname as s, c.relname as r, greatest(c.reltuples, 0)::bigint as est, c.reltuples < 0 as unknown,
    c.relhasindex as indexed, pg_relation_size(c.oid) < ${EXACT_BYTES_BELOW} as small
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p') and ${USER_SCHEMA}
    and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
),
ts as (
  select t.oid, t.s, t.r, t.small, ${LEADING_INDEX('t.oid', 'a.attnum')} as led, a.attname
  from t join pg_attribute a on a.attrelid = t.oid
  where a.attnum > 0 and not a.attisdropped and a.atttypid in ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
),
fresh as (
  select ts.oid, ts.s, ts.r, ts.attname, ts.led or ts.small as exact,
    case when ts.led or (ts.small and ${level >= 2})
      then (xpath('/row/m/text()', query_to_xml(format('select to_char(max(%I)::timestamptz at time zone ''UTC'', ''YYYY-MM-DD"T"HH24:MI:SS"Z"'') as m from %I.%I', ts.attname, ts.s, ts.r), false, true, '')))[1]::text
      ${level >= 3 ? `when not ts.small then (select to_char(max(v) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') from pg_stats st, lateral (
              select unnest(st.histogram_bounds::text::timestamptz[]) as v
              union all select unnest(st.most_common_vals::text::timestamptz[])) x
            where st.schemaname = ts.s and st.tablename = ts.r and st.attname = ts.attname)` : ''}
    end as newest
  from ts
)`;

const FRESH_FIELDS = `
  'freshness', (select coalesce(json_agg(json_build_object('table', format('%I.%I', s, r), 'column', attname, 'newest', newest, 'exact', exact) order by s, r, attname), '[]') from fresh),
  'analyze', (select coalesce(json_agg(distinct format('ANALYZE %I.%I (%s);', s, r,
      (select string_agg(quote_ident(f2.attname), ', ') from fresh f2 where f2.oid = fresh.oid and not f2.exact))), '[]')
    from fresh where not exact)`;

/**
 * The whole profile, with the date/time columns an index leads with. Row
 * counts: small tables without an index are counted; a table with an index
 * has the count its index build took during the restore (exact, nothing has
 * written since); a big table without one gets an ANALYZE estimate.
 */
const PROFILE_SQL = `${ctes(1)},
cnt as (
  select t.*, case when small and not indexed
    then (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I.%I', s, r), false, true, '')))[1]::text::bigint
    else est end as rows
  from t
),
seq as (
  select format('%I.%I', sn.nspname, sc.relname) as name, format('%I.%I.%I', tn.nspname, tc.relname, a.attname) as col,
    case when ps.last_value is null then ps.start_value else ps.last_value + ps.increment_by end as next,
    (xpath('/row/m/text()', query_to_xml(format('select max(%I) as m from %I.%I', a.attname, tn.nspname, tc.relname), false, true, '')))[1]::text::numeric as max
  from pg_depend d
  join pg_class sc on sc.oid = d.objid and sc.relkind = 'S'
  join pg_namespace sn on sn.oid = sc.relnamespace
  join pg_class tc on tc.oid = d.refobjid
  join pg_namespace tn on tn.oid = tc.relnamespace
  join pg_attribute a on a.attrelid = tc.oid and a.attnum = d.refobjsubid
  join pg_sequences ps on ps.schemaname = sn.nspname and ps.sequencename = sc.relname
  where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')
    and a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) and ps.increment_by > 0
)
select json_build_object(
  'tables', (select coalesce(json_agg(json_build_object('name', format('%I.%I', s, r), 'rows', rows, 'exact', small and not indexed,
      'columns', (select coalesce(json_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)) order by a.attnum), '[]')
                  from pg_attribute a where a.attrelid = cnt.oid and a.attnum > 0 and not a.attisdropped)) order by s, r), '[]') from cnt),
  'indexes', (select coalesce(json_agg(format('%I.%I', n.nspname, ci.relname) order by 1), '[]')
              from pg_index i join pg_class ci on ci.oid = i.indexrelid join pg_namespace n on n.oid = ci.relnamespace where ${USER_SCHEMA}),
  'constraints', (select coalesce(json_agg(format('%I.%I %s %I', n.nspname, cl.relname, co.contype, co.conname) order by 1), '[]')
                  from pg_constraint co join pg_class cl on cl.oid = co.conrelid join pg_namespace n on n.oid = cl.relnamespace where ${USER_SCHEMA}),
  'views', (select coalesce(json_agg(format('%I.%I', n.nspname, c.relname) order by 1), '[]')
            from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('v', 'm') and ${USER_SCHEMA}),
  'functions', (select coalesce(json_agg(format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) order by 1), '[]')
                from pg_proc p join pg_namespace n on n.oid = p.pronamespace where ${USER_SCHEMA}
                  and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')),
  'sequences', (select coalesce(json_agg(json_build_object('name', name, 'column', col, 'next', next, 'max', max) order by name), '[]') from seq),
  'noEstimate', (select coalesce(json_agg(format('ANALYZE %I.%I;', s, r)), '[]') from t where not small and unknown),${FRESH_FIELDS}
)`;
/** The date/time columns alone, at a deeper level. */
const freshSql = (level: FreshLevel) => `${ctes(level)}
select json_build_object(${FRESH_FIELDS}
)`;
const PROFILE_QUERIES = { profile: PROFILE_SQL, small: freshSql(2), stats: freshSql(3) };

/** What the profile needs besides the restored database: when the data counts as fresh, and a column the plan names. */
export interface ProfileNeeds {
  /** false: freshness is off or decided by the plan's query; no column's newest value is needed beyond what is exact anyway. */
  freshness: boolean;
  /** Values at or after this are within the RPO (the dump's time minus the RPO). */
  freshSince: Date;
  /** Values after this are not write times (the dump's time plus a day). */
  notAfter: Date;
  /** The plan's freshness column, read whatever the others say. */
  named?: { table: string; column: string };
}

/** The profile as the query gives it, with the ANALYZE statements it may still need (built by the server from its catalog). */
type RawProfile = DbProfile & { analyze: string[]; noEstimate: string[] };
type RawFreshness = Pick<RawProfile, 'freshness' | 'analyze'>;

/**
 * The profile, reading as little as it can: one query on the common path.
 * The newest values of date/time columns are read in three steps, each only
 * when the one before did not already find data within the RPO (or the
 * column the plan names): columns an index leads with (one step down the
 * index each); then the columns of small tables (a scan each); then the big
 * tables' other columns, from the planner's statistics after an ANALYZE of
 * just those columns. A big table without a row estimate (no index) is
 * analysed for its count. A healthy restore with one indexed, fresh
 * date column thus scans and analyses nothing.
 */
export async function profilePostgres(sandbox: Sandbox, database: string, needs: ProfileNeeds): Promise<DbProfile> {
  const p = await query<RawProfile>(sandbox, database, PROFILE_QUERIES.profile);
  if (p.noEstimate.length) {
    await runStatements(sandbox, database, p.noEstimate, 'ANALYZE');
    Object.assign(p, await query<RawProfile>(sandbox, database, PROFILE_QUERIES.profile));
  }
  const answered = (f: RawFreshness) => {
    if (needs.named) return f.freshness.some((x) => x.table === needs.named!.table && x.column === needs.named!.column && x.newest !== null);
    return f.freshness.some((x) => x.newest !== null && x.newest >= iso(needs.freshSince) && x.newest <= iso(needs.notAfter));
  };
  if (needs.freshness && !answered(p)) {
    let f = await query<RawFreshness>(sandbox, database, PROFILE_QUERIES.small);
    if (!answered(f) && f.analyze.length) {
      await runStatements(sandbox, database, f.analyze, 'ANALYZE');
      f = await query<RawFreshness>(sandbox, database, PROFILE_QUERIES.stats);
    }
    p.freshness = f.freshness;
  }
  for (const s of p.sequences) {
    s.next = s.next === null ? null : Number(s.next);
    s.max = s.max === null ? null : Number(s.max);
  }
  for (const t of p.tables) t.rows = Number(t.rows);
  const { analyze: _a, noEstimate: _n, ...profile } = p;
  return profile;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Statements the server built from its own catalog (names quoted by format %I), run from a file: never through a shell. */
async function runStatements(sandbox: Sandbox, database: string, statements: string[], what: string): Promise<void> {
  const file = `${sandbox.dataDir}/ef-analyze.sql`;
  await sandbox.putFile(file, Buffer.from(statements.join('\n'), 'utf8'));
  const r = await sandbox.exec(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', database, '-f', file]);
  if (r.exitCode !== 0) throw new Error(`${what} failed: ${r.stderr.split('\n')[0]?.slice(0, 200) ?? ''}`);
}

async function query<T>(sandbox: Sandbox, database: string, sql: string): Promise<T> {
  const r = await sandboxRows(sandbox, database, sql, 1_800_000);
  if (!r.ok) throw new Error(`profile query failed: ${clean(r.error).slice(0, 200)}`);
  const text = r.value[0]?.[0];
  if (text === undefined || text === null) throw new Error('profile query returned nothing');
  if (text.length > 64 * 1024 * 1024) throw new Error('the database profile is larger than 64 MiB');
  return JSON.parse(text) as T;
}
