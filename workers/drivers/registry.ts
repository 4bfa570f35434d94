import type { Inspection, RestoreDriver } from './driver.js';
import { postgresDriver } from './postgres/index.js';
import { filesDriver } from './files/index.js';
import { mariadbDriver } from './mariadb/index.js';

/**
 * Every kind of backup ernstfall can restore, by `restore.driver`. Adding a
 * kind is one folder under workers/drivers/ and one line here.
 */
export const DRIVERS: Record<string, RestoreDriver<Inspection>> = {
  postgres: postgresDriver as unknown as RestoreDriver<Inspection>,
  files: filesDriver as unknown as RestoreDriver<Inspection>,
  mariadb: mariadbDriver as unknown as RestoreDriver<Inspection>,
};

export function driverFor(name: string): RestoreDriver<Inspection> | undefined {
  return Object.hasOwn(DRIVERS, name) ? DRIVERS[name] : undefined;
}
