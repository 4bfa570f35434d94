import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../services/config.js';

/**
 * The layering rules of eslint.config.js fire where they should (docs/ARCHITECTURE.md,
 * "Layers"): a later config block that quietly switched them off would fail here.
 */
const eslint = new ESLint({ cwd: repoRoot });

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.map((m) => `${m.line}: ${m.ruleId}`);
}

const query = `import type { Kysely } from 'kysely';
import type { DB } from '../../../db/schema.js';
export const q = (db: Kysely<DB>) => db.selectFrom('plans').selectAll().execute();
`;

describe('layering rules', () => {
  it('a page or route builds no query and imports no repository', async () => {
    expect(await problems('services/web/pages/example.page.ts', query)).toEqual(['3: no-restricted-syntax']);
    expect(await problems('services/api/routes/example.routes.ts', `import { PlanRepository } from '../../../db/repositories/plan.repository.js';
export const r = PlanRepository;
`)).toEqual(['1: @typescript-eslint/no-restricted-imports']);
    expect(await problems('services/web/pages/example.page.ts', `export const f = (web: { plans: { repo: { get(): void } } }) => web.plans.repo.get();
`)).toEqual(['1: no-restricted-syntax']);
  });

  it('a service holds no SQL, makes no repository and imports nothing from the HTTP layer', async () => {
    expect(await problems('services/runs/example.ts', `import { sql } from 'kysely';
import { buildApp } from '../api/app.js';
import { RunRepository } from '../../db/repositories/run.repository.js';
export const x = [sql\`select 1\`, buildApp, new RunRepository(null as never)];
`)).toEqual(['1: @typescript-eslint/no-restricted-imports', '2: @typescript-eslint/no-restricted-imports', '4: no-restricted-syntax', '4: no-restricted-syntax']);
  });

  it('a repository may hold SQL and import domain types, but nothing that runs above it', async () => {
    expect(await problems('db/repositories/example.repository.ts', `import { sql } from 'kysely';
import type { PlanStatus } from '../../services/runs/plan-status.js';
import { loadConfig } from '../../services/config.js';
export const x: [unknown, PlanStatus | null, unknown] = [sql\`select 1\`, null, loadConfig];
`)).toEqual(['3: @typescript-eslint/no-restricted-imports']);
  });
});
