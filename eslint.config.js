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
  // command-line tools talk to a person on the terminal
  { files: ['tests/**', 'deploy/**', 'db/migrate.ts', 'services/**/*-cli.ts', 'services/plans/check-plans.ts'], rules: { 'no-console': 'off' } },
  // API responses in tests are read loosely on purpose; the assertions pin the shape
  { files: ['tests/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
);
