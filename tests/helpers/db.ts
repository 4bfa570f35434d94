import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Kysely } from 'kysely';
import { loadEnvFile } from '../../services/config.js';
import { createDb } from '../../db/database.js';
import type { DB } from '../../db/schema.js';

export interface TestDatabase {
  name: string;
  /** As the app role (the role the service runs as). */
  appUrl: string;
  /** As the owner role (migrations, superuser-free admin). */
  ownerUrl: string;
  db: Kysely<DB>;
  drop(): Promise<void>;
}

function withDb(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function createTestDatabase(): Promise<TestDatabase> {
  loadEnvFile(process.env, { owner: true });
  const ownerUrl = process.env.DATABASE_OWNER_URL!;
  const appUrl = process.env.DATABASE_URL!;
  const run = process.env.ERNSTFALL_TEST_RUN ?? String(process.ppid);
  const name = `ernstfall_test_${run}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ownerUrl });
  await admin.connect();
  await admin.query(`create database ${name} template ${process.env.ERNSTFALL_TEST_TEMPLATE ?? `ernstfall_test_${run}_tpl`}`);
  await admin.end();
  const db = createDb(withDb(appUrl, name), 5);
  return {
    name,
    appUrl: withDb(appUrl, name),
    ownerUrl: withDb(ownerUrl, name),
    db,
    async drop() {
      await db.destroy();
      const c = new pg.Client({ connectionString: ownerUrl });
      await c.connect();
      // backends of just-closed pools can take a moment to exit; the owner may not terminate the app role's sessions itself
      for (let attempt = 0; ; attempt++) {
        try {
          await c.query(`drop database if exists ${name} with (force)`);
          break;
        } catch (err) {
          if ((err as { code?: string }).code !== '42501' || attempt >= 30) {
            await c.end();
            throw err;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      await c.end();
    },
  };
}
