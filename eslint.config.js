import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// ---- one clock (services/clock.ts, docs/decisions/018-one-clock.md)
const WALL_CLOCK_MESSAGE = 'Business time comes from the injected Clock (services/clock.ts); durations from performance.now().';
const WALL_CLOCK = [
  { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: WALL_CLOCK_MESSAGE },
  { selector: "MemberExpression[object.name='Date'][property.name='now']", message: WALL_CLOCK_MESSAGE },
];

// ---- layers (docs/ARCHITECTURE.md, "Layers"; docs/decisions/019-layers.md)
// pages and routes call services; services call repositories; only repositories hold SQL; nothing imports upward

const LAYERS = 'see docs/ARCHITECTURE.md, "Layers"';
/** Building a query (Kysely's query builder, or a raw statement): only repositories do that. */
const QUERY = {
  selector: 'CallExpression[callee.property.name=/^(selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto|selectNoFrom|executeQuery)$/]',
  message: `SQL lives in db/repositories/: add a repository method and call it (${LAYERS})`,
};
const SQL_TAG = { selector: "TaggedTemplateExpression[tag.name='sql']", message: QUERY.message };
const NEW_REPOSITORY = {
  selector: 'NewExpression[callee.name=/Repository$/]',
  message: `repositories are made once, by createRepositories() in services/container.ts, and handed to the services (${LAYERS})`,
};
const MAKE_REPOSITORIES = { selector: "CallExpression[callee.name='createRepositories']", message: NEW_REPOSITORY.message };
const REACH_INTO_SERVICE = {
  selector: "MemberExpression[property.name='repo']",
  message: `pages and routes call a service's methods, not its repository (${LAYERS})`,
};

/** The composition roots: they make the repositories and services (and the worker, which may run without the API's container). */
const COMPOSITION = ['services/container.ts', 'services/main.ts', 'workers/main.ts'];
/**
 * Services that still take a database and make their own repositories, because
 * tests and command-line tools construct them with one. Move them to
 * repositories handed in by the container; this list only shrinks.
 */
const OWN_REPOSITORIES = [
  'services/auth/account.service.ts',
  'services/auth/oidc.service.ts',
  'services/evidence/key-check.ts',
  'services/evidence/ledger.service.ts',
  'services/external/syslog.ts',
  'services/metrics/metrics.ts',
  'services/notify/dispatcher.ts',
  'services/notify/reminders.ts',
  'services/runs/outcome-handover.ts',
  'services/scheduling/scheduler.ts',
];

const restrictedImports = (patterns) => ['error', { patterns }];
const NO_SQL_IMPORTS = [
  { group: ['kysely'], importNames: ['sql', 'CompiledQuery'], message: QUERY.message },
  { group: ['pg'], message: `a connection of its own is a repository's business (db/repositories/session-lock.ts, outcome-listener.ts) (${LAYERS})` },
];
const NOT_UPWARD = (what) => [
  { group: ['**/api/**', '**/web/**'], message: `${what} must not import the HTTP layer (services/api, services/web) (${LAYERS})` },
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.ernstfall/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['warn', 'error'] }],
    },
  },
  // one clock for business time (services/clock.ts): no wall-clock reads elsewhere in product code
  // (the layer blocks below repeat WALL_CLOCK: a later block's no-restricted-syntax replaces an earlier one's)
  {
    files: ['services/**/*.ts', 'workers/**/*.ts', 'db/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', ...WALL_CLOCK] },
  },
  // command-line tools talk to a person on the terminal
  { files: ['tests/**', 'deploy/**', 'db/migrate.ts', 'services/**/*-cli.ts', 'services/plans/check-plans.ts'], rules: { 'no-console': 'off' } },
  // API responses in tests are read loosely on purpose; the assertions pin the shape
  { files: ['tests/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },

  // the HTTP layer: routes and pages call services, never repositories or the database
  {
    files: ['services/api/**/*.ts', 'services/web/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', ...WALL_CLOCK, QUERY, SQL_TAG, NEW_REPOSITORY, MAKE_REPOSITORIES, REACH_INTO_SERVICE],
      '@typescript-eslint/no-restricted-imports': restrictedImports([
        { group: ['**/db/repositories/**'], message: `pages and routes call services; services call repositories (${LAYERS})` },
        { group: ['kysely'], allowTypeImports: true, message: `pages and routes build no queries (${LAYERS})` },
        { group: ['pg'], message: `pages and routes build no queries (${LAYERS})` },
        { group: ['**/container.js'], allowTypeImports: true, message: `routes and pages get their services from buildApp (${LAYERS})` },
      ]),
    },
  },
  // buildApp gets the plan overview for the connection it was handed from the container
  {
    files: ['services/api/app.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrictedImports([
        { group: ['**/db/repositories/**'], message: `pages and routes call services; services call repositories (${LAYERS})` },
        { group: ['kysely'], allowTypeImports: true, message: `pages and routes build no queries (${LAYERS})` },
        { group: ['pg'], message: `pages and routes build no queries (${LAYERS})` },
      ]),
    },
  },
  // services: no SQL (repositories hold it), repositories handed in, nothing from the HTTP layer
  {
    files: ['services/**/*.ts'],
    ignores: ['services/api/**', 'services/web/**', ...COMPOSITION, ...OWN_REPOSITORIES],
    rules: {
      'no-restricted-syntax': ['error', ...WALL_CLOCK, QUERY, SQL_TAG, NEW_REPOSITORY, MAKE_REPOSITORIES],
      '@typescript-eslint/no-restricted-imports': restrictedImports([...NO_SQL_IMPORTS, ...NOT_UPWARD('a service')]),
    },
  },
  {
    files: OWN_REPOSITORIES,
    rules: {
      'no-restricted-syntax': ['error', ...WALL_CLOCK, QUERY, SQL_TAG],
      '@typescript-eslint/no-restricted-imports': restrictedImports([...NO_SQL_IMPORTS, ...NOT_UPWARD('a service')]),
    },
  },
  // the composition roots wire everything (main starts the HTTP apps), but hold no SQL either
  {
    files: COMPOSITION,
    rules: {
      'no-restricted-syntax': ['error', ...WALL_CLOCK, QUERY, SQL_TAG],
      '@typescript-eslint/no-restricted-imports': restrictedImports(NO_SQL_IMPORTS),
    },
  },
  // workers: no SQL on ernstfall's database (drivers talk to the sandbox's own database), nothing from the HTTP layer
  {
    files: ['workers/**/*.ts'],
    ignores: COMPOSITION,
    rules: {
      'no-restricted-syntax': ['error', ...WALL_CLOCK, QUERY, SQL_TAG, NEW_REPOSITORY, MAKE_REPOSITORIES],
      '@typescript-eslint/no-restricted-imports': restrictedImports([
        { group: ['kysely'], importNames: ['sql', 'CompiledQuery'], message: QUERY.message },
        { group: ['**/services/api/**', '**/services/web/**'], message: `a worker must not import the HTTP layer (${LAYERS})` },
      ]),
    },
  },
  // repositories are the lowest layer: domain types from services, nothing that runs
  {
    files: ['db/repositories/**/*.ts', 'db/schema.ts', 'db/database.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrictedImports([
        { group: ['**/services/**', '**/workers/**'], allowTypeImports: true, message: `repositories import nothing from the layers above them but types (${LAYERS})` },
      ]),
    },
  },
);
