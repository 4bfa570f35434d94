/**
 * `npm run plans:check [dir]`: validates plan files without a database or
 * server, for a CI pipeline of plans as code. Exit 1 when any file is invalid.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { repoRoot } from '../config.js';
import { formatPlanIssues, parsePlanText } from './plan.parser.js';

async function files(dir: string, depth = 0): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.isDirectory() && depth === 0) out.push(...(await files(join(dir, e.name), 1)));
    else if (e.isFile() && /\.ya?ml$/.test(e.name)) out.push(join(dir, e.name));
  }
  return out;
}

const dir = process.argv[2] ?? process.env.ERNSTFALL_PLANS_DIR ?? join(repoRoot, 'restore-plans');
let bad = 0;
const ids = new Map<string, string>();
for (const file of await files(dir)) {
  const rel = relative(process.cwd(), file);
  const res = parsePlanText(await readFile(file, 'utf8'), { file: rel });
  if ('issues' in res) {
    bad++;
    for (const line of formatPlanIssues(res.issues, rel)) console.error(line);
    continue;
  }
  const tenantKey = `${relative(dir, file).includes('/') ? relative(dir, file).split('/')[0] : 'default'}/${res.plan.id}`;
  if (ids.has(tenantKey)) {
    bad++;
    console.error(`${rel}: id "${res.plan.id}" is already used by ${ids.get(tenantKey)}`);
    continue;
  }
  ids.set(tenantKey, rel);
  console.error(`ok  ${rel} (${res.plan.id})`);
}
process.exit(bad ? 1 : 0);
