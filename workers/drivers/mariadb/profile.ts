import type { DbProfile } from '../../checks/builtin.js';
import type { Sandbox } from '../../sandbox/sandbox.js';

/** Tables smaller than this (data length) are counted exactly and their date/time columns read exactly. */
const EXACT_BYTES_BELOW = 64 * 1024 * 1024;

const Q = (col: string) => `CONCAT('\`', REPLACE(${col}, '\`', '\`\`'), '\`')`;
/** A column an index leads with: MAX() of it is one step down the index. */
const LED = `EXISTS (SELECT 1 FROM information_schema.statistics s WHERE s.table_schema = c.table_schema AND s.table_name = c.table_name AND s.column_name = c.column_name AND s.seq_in_index = 1)`;

/**
 * Statements the server builds from its own catalog: names quoted by the
 * server (backticks doubled, QUOTE() for literals) and run through PREPARE,
 * so no name from the backup ever becomes SQL text in ernstfall. Each of the
 * three parts prints one JSON document on a line of its own.
 */
const PROFILE_SQL = `
SET SESSION group_concat_max_len = 67108864;
SET SESSION TRANSACTION READ ONLY;
SET time_zone = '+00:00';
SELECT JSON_OBJECT(
  'tables', (SELECT COALESCE(JSON_ARRAYAGG(JSON_OBJECT('name', CONCAT(t.table_schema, '.', t.table_name), 'rows', t.table_rows,
      'columns', (SELECT JSON_ARRAYAGG(CONCAT(c.column_name, ' ', c.column_type)) FROM information_schema.columns c WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name))), JSON_ARRAY())
    FROM information_schema.tables t WHERE t.table_schema = DATABASE() AND t.table_type = 'BASE TABLE'),
  'indexes', (SELECT COALESCE(JSON_ARRAYAGG(x), JSON_ARRAY()) FROM (SELECT DISTINCT CONCAT(table_schema, '.', table_name, '.', index_name) AS x FROM information_schema.statistics WHERE table_schema = DATABASE()) i),
  'constraints', (SELECT COALESCE(JSON_ARRAYAGG(CONCAT(table_schema, '.', table_name, ' ', constraint_type, ' ', constraint_name)), JSON_ARRAY()) FROM information_schema.table_constraints WHERE table_schema = DATABASE()),
  'views', (SELECT COALESCE(JSON_ARRAYAGG(CONCAT(table_schema, '.', table_name)), JSON_ARRAY()) FROM information_schema.views WHERE table_schema = DATABASE()),
  'functions', (SELECT COALESCE(JSON_ARRAYAGG(CONCAT(routine_schema, '.', routine_name, ' ', routine_type)), JSON_ARRAY()) FROM information_schema.routines WHERE routine_schema = DATABASE())
) AS profile;

SET @q = NULL;
SELECT GROUP_CONCAT(CONCAT('SELECT ', QUOTE(CONCAT(table_schema, '.', table_name)), ' AS t, COUNT(*) AS n FROM ', ${Q('table_schema')}, '.', ${Q('table_name')}) SEPARATOR ' UNION ALL ')
  INTO @q FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' AND data_length < ${EXACT_BYTES_BELOW};
SET @q = CONCAT('SELECT JSON_OBJECT(''counts'', COALESCE(JSON_OBJECTAGG(t, n), JSON_OBJECT())) FROM (', IFNULL(@q, 'SELECT NULL AS t, NULL AS n LIMIT 0'), ') x');
PREPARE s FROM @q;
EXECUTE s;
DEALLOCATE PREPARE s;

SET @q = NULL;
SELECT GROUP_CONCAT(CONCAT('SELECT ', QUOTE(CONCAT(c.table_schema, '.', c.table_name)), ' AS t, ', QUOTE(c.column_name), ' AS c, ', ${LED},
    ' AS led, DATE_FORMAT(MAX(', ${Q('c.column_name')}, '), ''%Y-%m-%dT%H:%i:%sZ'') AS m FROM ', ${Q('c.table_schema')}, '.', ${Q('c.table_name')}) SEPARATOR ' UNION ALL ')
  INTO @q FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
  WHERE c.table_schema = DATABASE() AND t.table_type = 'BASE TABLE' AND c.data_type IN ('datetime', 'timestamp', 'date')
    AND (t.data_length < ${EXACT_BYTES_BELOW} OR ${LED});
SET @q = CONCAT('SELECT JSON_OBJECT(''freshness'', COALESCE(JSON_ARRAYAGG(JSON_OBJECT(''table'', t, ''column'', c, ''newest'', m, ''exact'', TRUE)), JSON_ARRAY())) FROM (',
  IFNULL(@q, 'SELECT NULL AS t, NULL AS c, NULL AS led, NULL AS m LIMIT 0'), ') x');
PREPARE s FROM @q;
EXECUTE s;
DEALLOCATE PREPARE s;
`;

/**
 * The restored MariaDB database in names and numbers, for the built-in
 * checks every database restore gets: tables with columns and types,
 * indexes, constraints, views, routines; row counts (exact below 64 MiB,
 * InnoDB's estimate above); the newest value of each date/time column of
 * small tables and of columns an index leads with (MAX through the index).
 * Sequences: AUTO_INCREMENT is kept above its column's maximum by the server
 * itself, so none are listed.
 */
export async function profileMariadb(sandbox: Sandbox, database: string, client: string[]): Promise<DbProfile> {
  const r = await sandbox.exec(['mariadb', ...client, '--batch', '--skip-column-names', '--raw', '--execute', PROFILE_SQL, '--', database], { maxOutput: 64 * 1024 * 1024 });
  if (r.exitCode !== 0 || r.stdoutTruncated) {
    throw new Error(r.stdoutTruncated ? 'the database profile is larger than 64 MiB' : `profile query failed: ${r.stderr.split('\n').find((l) => l.startsWith('ERROR'))?.slice(0, 200) ?? ''}`);
  }
  const docs = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const base = docs.find((d) => 'tables' in d) as { tables: { name: string; rows: number | null; columns: string[] | null }[] } & Omit<DbProfile, 'tables' | 'sequences' | 'freshness'>;
  const counts = (docs.find((d) => 'counts' in d)?.counts ?? {}) as Record<string, number>;
  const freshness = (docs.find((d) => 'freshness' in d)?.freshness ?? []) as DbProfile['freshness'];
  if (!base) throw new Error('the profile query gave no description of the database');
  const sorted = (xs: string[]) => [...xs].sort();
  return {
    tables: base.tables.map((t) => ({
      name: t.name, exact: counts[t.name] !== undefined, rows: Number(counts[t.name] ?? t.rows ?? 0), columns: t.columns ?? [],
    })).sort((a, b) => a.name.localeCompare(b.name)),
    indexes: sorted(base.indexes), constraints: sorted(base.constraints), views: sorted(base.views), functions: sorted(base.functions),
    sequences: [],
    freshness: freshness.map((f) => ({ ...f, exact: Boolean(f.exact) })),
  };
}
