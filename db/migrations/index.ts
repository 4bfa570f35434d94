import type { Migration } from 'kysely';
import * as m0001 from './20261128_0001_initial.js';
import * as m0002 from './20261128_0002_evidence.js';
import * as m0003 from './20261128_0003_scheduler.js';
import * as m0004 from './20261128_0004_notifications.js';
import * as m0005 from './20261128_0005_users.js';
import * as m0006 from './20261128_0006_accounts.js';
import * as m0007 from './20261206_0007_plan_baselines.js';
import * as m0008 from './20261207_0008_external_results.js';
import * as m0009 from './20261207_0009_manual_evidence.js';
import * as m0010 from './20261207_0010_systems.js';
import * as m0011 from './20261208_0011_run_outcomes.js';
import * as m0014 from './20261208_0014_worker_pools.js';
import * as m0012 from './20261208_0012_status_indexes.js';
import * as m0015 from './20261208_0015_plan_states.js';
import * as m0016 from './20261208_0016_ledger_ids.js';
import * as m0017 from './20261209_0017_business_time.js';
import * as m0018 from './20261210_0018_restart_tests.js';

/** Static list so migrations run the same from TypeScript sources and compiled output. Never edit a landed migration. */
export const migrations: Record<string, Migration> = {
  '20261128_0001_initial': m0001,
  '20261128_0002_evidence': m0002,
  '20261128_0003_scheduler': m0003,
  '20261128_0004_notifications': m0004,
  '20261128_0005_users': m0005,
  '20261128_0006_accounts': m0006,
  '20261206_0007_plan_baselines': m0007,
  '20261207_0008_external_results': m0008,
  '20261207_0009_manual_evidence': m0009,
  '20261207_0010_systems': m0010,
  '20261208_0011_run_outcomes': m0011,
  '20261208_0012_status_indexes': m0012,
  '20261208_0014_worker_pools': m0014,
  '20261208_0015_plan_states': m0015,
  '20261208_0016_ledger_ids': m0016,
  '20261209_0017_business_time': m0017,
  '20261210_0018_restart_tests': m0018,
};
