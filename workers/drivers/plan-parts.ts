/**
 * What each driver adds to a plan's `restore` block, besides `driver` and
 * `image`. Pure data, so the plan parser (in the API) can use it without
 * loading the drivers' Docker code; a unit test keeps it equal to the registry.
 */
export const DRIVER_RESTORE_KEYS = {
  postgres: ['database', 'jobs', 'version', 'pitr'],
  files: [],
  mariadb: ['database', 'version'],
} as const satisfies Record<string, readonly string[]>;

/** The check kinds each driver can answer: SQL for databases, the file checks for file backups. */
export const DRIVER_CHECK_KINDS = {
  postgres: ['sql', 'tableRows', 'tableExists', 'canary'],
  files: ['files', 'bytes', 'exists', 'manifest', 'sample', 'drift'],
  mariadb: ['sql', 'tableRows', 'tableExists', 'canary'],
} as const satisfies Record<keyof typeof DRIVER_RESTORE_KEYS, readonly string[]>;


export type DriverName = keyof typeof DRIVER_RESTORE_KEYS;
export const DRIVER_NAMES = Object.keys(DRIVER_RESTORE_KEYS) as DriverName[];
