import type { DbProfile } from '../../checks/builtin.js';
import type { Sandbox } from '../../sandbox/sandbox.js';

/** Tables smaller than this on disk are counted exactly; bigger ones use the planner's estimate (ANALYZE where it is missing). */
export const EXACT_BYTES_BELOW = 64 * 1024 * 1024;

/**
 * A valid, complete b-tree index whose first column is this one: max() of the
 * column is then one step down the index, exact and as fast for a billion
 * rows as for ten.
 */
const LEADING_INDEX = (rel: string, attnum: string) => `exists (select 1 from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_am am on am.oid = ic.relam
    where i.indrelid = ${rel} and i.indkey[0] = ${attnum} and i.indisvalid and i.indpred is null and am.amname = 'btree')`;

const USER_SCHEMA = `n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'`;

/**
 * One read-only query that describes the restored database in names and
 * numbers. Names come from the catalog and are quoted by the server
 * (format %I); the few statements it runs per table (count, max) are built
 * by the server from those quoted names and run through query_to_xml, so no
 * name from the backup ever becomes SQL text in ernstfall.
 */
const profileSql = (stats: boolean) => `
with t as (
  select c.oid, n.nspname as s, c.relname as r, greatest(c.reltuples, 0)::bigint as est, c.reltuples < 0 as unknown, pg_relation_size(c.oid) < ${EXACT_BYTES_BELOW} as small
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p') and ${USER_SCHEMA}
    and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
),
cnt as (
  select t.*, case when small
    then (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I.%I', s, r), false, true, '')))[1]::text::bigint
    else est end as rows
  from t
),
ts as (
  select t.oid, t.s, t.r, t.small or ${LEADING_INDEX('t.oid', 'a.attnum')} as exact, a.attname, a.atttypid
  from t join pg_attribute a on a.attrelid = t.oid
  where a.attnum > 0 and not a.attisdropped and a.atttypid in ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
),
fresh as (
  select ts.s, ts.r, ts.attname, ts.exact,
    case when ts.exact
      then (xpath('/row/m/text()', query_to_xml(format('select to_char(max(%I)::timestamptz at time zone ''UTC'', ''YYYY-MM-DD"T"HH24:MI:SS"Z"'') as m from %I.%I', ts.attname, ts.s, ts.r), false, true, '')))[1]::text
      when ${stats ? 'true' : 'false'} then (select to_char(max(v) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') from (
              select unnest(st.histogram_bounds::text::timestamptz[]) as v
              union all select unnest(st.most_common_vals::text::timestamptz[])) x)
    end as newest, ts.oid
  from ts left join pg_stats st on st.schemaname = ts.s and st.tablename = ts.r and st.attname = ts.attname
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
  'tables', (select coalesce(json_agg(json_build_object('name', format('%I.%I', s, r), 'rows', rows, 'exact', small,
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
  'freshness', (select coalesce(json_agg(json_build_object('table', format('%I.%I', s, r), 'column', attname, 'newest', newest, 'exact', exact) order by s, r, attname), '[]') from fresh),
  'analyze', (select coalesce(json_agg(distinct format('ANALYZE %I.%I (%s);', s, r,
      (select string_agg(quote_ident(f2.attname), ', ') from fresh f2 where f2.oid = fresh.oid and not f2.exact))), '[]')
    from fresh where not exact),
  'noEstimate', (select coalesce(json_agg(format('ANALYZE %I.%I;', s, r)), '[]') from t where not small and unknown)
)`;
const PROFILE_EXACT_SQL = profileSql(false);
const PROFILE_STATS_SQL = profileSql(true);

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

/**
 * The profile, reading as little as it can, in one query on the common path.
 * Small tables are counted and their date/time columns read exactly; so are
 * columns an index leads with; big tables' row counts are the estimates the
 * restore's index builds left. Only a big table without an estimate is
 * analysed, and only when the exact values do not already show data within
 * the RPO (or the plan names a column that is not exact) are the big tables'
 * other date/time columns read from the planner's statistics, after an
 * ANALYZE of just those columns. A healthy restore thus analyses nothing.
 */
export async function profilePostgres(sandbox: Sandbox, database: string, needs: ProfileNeeds): Promise<DbProfile> {
  let p = await profileQuery(sandbox, database, PROFILE_EXACT_SQL);
  const fresh = p.freshness.some((f) => f.exact && f.newest !== null && f.newest >= iso(needs.freshSince) && f.newest <= iso(needs.notAfter));
  const namedMissing = needs.named && p.freshness.some((f) => f.table === needs.named!.table && f.column === needs.named!.column && !f.exact);
  const stats = needs.freshness && p.analyze.length > 0 && (!fresh || !!namedMissing);
  if (stats || p.noEstimate.length) {
    await runStatements(sandbox, database, [...p.noEstimate, ...(stats ? p.analyze : [])], 'ANALYZE');
    p = await profileQuery(sandbox, database, stats ? PROFILE_STATS_SQL : PROFILE_EXACT_SQL);
  }
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

async function profileQuery(sandbox: Sandbox, database: string, sql: string): Promise<RawProfile> {
  const r = await sandbox.exec(
    ['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', sql],
    { env: ['PGOPTIONS=-c default_transaction_read_only=on -c statement_timeout=1800000'], maxOutput: 64 * 1024 * 1024 },
  );
  if (r.exitCode !== 0 || r.stdoutTruncated) {
    throw new Error(r.stdoutTruncated ? 'the database profile is larger than 64 MiB' : `profile query failed: ${r.stderr.split('\n').find((l) => l.includes('ERROR:'))?.slice(0, 200) ?? ''}`);
  }
  const p = JSON.parse(r.stdout) as RawProfile;
  for (const s of p.sequences) {
    s.next = s.next === null ? null : Number(s.next);
    s.max = s.max === null ? null : Number(s.max);
  }
  for (const t of p.tables) t.rows = Number(t.rows);
  return p;
}
