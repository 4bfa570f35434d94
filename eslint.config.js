import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
  {
    files: ['services/**/*.ts', 'workers/**/*.ts', 'db/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Business time comes from the injected Clock (services/clock.ts); durations from performance.now().' },
        { selector: "MemberExpression[object.name='Date'][property.name='now']", message: 'Business time comes from the injected Clock (services/clock.ts); durations from performance.now().' },
      ],
    },
  },
  // command-line tools talk to a person on the terminal
  { files: ['tests/**', 'deploy/**', 'db/migrate.ts', 'services/**/*-cli.ts', 'services/plans/check-plans.ts'], rules: { 'no-console': 'off' } },
  // API responses in tests are read loosely on purpose; the assertions pin the shape
  { files: ['tests/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
);
