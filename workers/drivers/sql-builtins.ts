import { BUILTIN_NAMES, EMPTY_PROFILE, evaluateBuiltins, FUTURE_SLACK_MS, type DbProfile } from '../checks/builtin.js';
import type { BuiltinInput, BuiltinOutcome, DriverContext, Inspection } from './driver.js';
import type { QueryFn } from '../checks/checks.js';
import type { ProfileNeeds } from './postgres/profile.js';

/**
 * What every database restore is asked (PostgreSQL, MariaDB), with nothing in the plan: data
 * freshness, sequences, schema and volume drift against the baseline's
 * profile. With every check switched off (each with its reason) nothing is
 * read; the run records them as skipped.
 */
export async function databaseBuiltins(
  ctx: DriverContext<Inspection>, query: QueryFn, readProfile: (needs: ProfileNeeds) => Promise<DbProfile>, input: BuiltinInput,
): Promise<BuiltinOutcome> {
  const { plan } = ctx;
  const config = plan.builtin ?? {};
  const base = { config, backupCreatedAt: input.backupCreatedAt, rpoSeconds: plan.targets.rpoSeconds };
  if (BUILTIN_NAMES.every((n) => config[n]?.off !== undefined)) {
    return { results: evaluateBuiltins({ profile: EMPTY_PROFILE, ...base }).results, findings: [] };
  }
  const dumpTime = input.backupCreatedAt.getTime();
  const f = config.freshness;
  const profile = await readProfile({
    freshness: f?.off === undefined && f?.sql === undefined,
    freshSince: new Date(dumpTime - plan.targets.rpoSeconds * 1000),
    notAfter: new Date(dumpTime + FUTURE_SLACK_MS),
    ...(f?.table !== undefined && f.column !== undefined && { named: { table: f.table, column: f.column } }),
  });
  ctx.signal.throwIfAborted();
  const freshnessQuery = f?.sql !== undefined && f.off === undefined ? await query(f.sql) : undefined;
  const b = evaluateBuiltins({ profile, baseline: input.baseline as DbProfile | undefined, ...base, freshnessQuery });
  return { profile, ...b };
}
