import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { dropHostDatabase, dumpHost, hostPsql, makeHostDatabase, makeTempDir } from '../fixtures/host-dumps.js';

// an extension that exists on the host that made the dump, but in no sandbox image
const EXT_DIR = '/usr/share/postgresql/15/extension';
const EXT_FILES = [join(EXT_DIR, 'ef_fixture_ext.control'), join(EXT_DIR, 'ef_fixture_ext--1.0.sql')];
const TRGM = 'ef_rt_trgm';
const CUSTOM_EXT = 'ef_rt_customext';
let h: Harness;
let dir: string;

beforeAll(async () => {
  dir = await makeTempDir('ef-ext-');
  await makeHostDatabase(TRGM, { rows: 1000, trgm: true });
  await dumpHost(TRGM, 'custom', join(dir, 'trgm.dump'));
  await dumpHost(TRGM, 'plain', join(dir, 'trgm.sql'));
  await writeFile(EXT_FILES[0]!, "default_version = '1.0'\nrelocatable = true\ncomment = 'ernstfall test fixture'\n");
  await writeFile(EXT_FILES[1]!, "CREATE FUNCTION ef_fixture_fn() RETURNS int LANGUAGE sql AS 'select 42';\n");
  await makeHostDatabase(CUSTOM_EXT, { rows: 1000 });
  await hostPsql('create extension ef_fixture_ext', CUSTOM_EXT);
  await dumpHost(CUSTOM_EXT, 'custom', join(dir, 'customext.dump'));
  await dumpHost(CUSTOM_EXT, 'plain', join(dir, 'customext.sql'));
  // a policy names a role: --no-owner/--no-privileges do not cover that
  await hostPsql(`DO $$ BEGIN CREATE ROLE ef_fixture_policy_role NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
  await hostPsql('alter table einwohner enable row level security; create policy nur_lesen on einwohner for select to ef_fixture_policy_role using (true)', TRGM);
  await dumpHost(TRGM, 'custom', join(dir, 'policy.dump'));
  h = await startHarness({ backupRoot: dir });
});
afterAll(async () => {
  await h?.close();
  await dropHostDatabase(TRGM);
  await dropHostDatabase(CUSTOM_EXT);
  for (const f of EXT_FILES) await rm(f, { force: true });
  await rm(dir, { recursive: true, force: true });
});

const count = { name: 'Einwohner', sql: 'select count(*) from einwohner', expect: '== 1000' };

describe('extensions the dump references', () => {
  it.each(['trgm.dump', 'trgm.sql'])('an extension the sandbox has (pg_trgm) restores cleanly: %s', async (file) => {
    const id = `trgm-${file.replace('.', '-')}`;
    await h.putPlan(pgPlan(id, file, { checks: [count, { name: 'Index', sql: "select count(*) from pg_indexes where indexname = 'einwohner_name_trgm'", expect: '== 1' }] }));
    const run = await h.waitForRun(await h.trigger(id));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.findings.map((f: { code: string }) => f.code)).not.toContain('EXTENSION_MISSING');
  });

  it('an archive needing an extension the sandbox lacks: EXTENSION_MISSING names it, the rest is still restored', async () => {
    await h.putPlan(pgPlan('ext-missing-custom', 'customext.dump', { checks: [count] }));
    const run = await h.waitForRun(await h.trigger('ext-missing-custom'));
    expect(run.verdict).toBe('error');
    const f = run.findings.find((x: { code: string }) => x.code === 'EXTENSION_MISSING');
    expect(f.message).toContain('ef_fixture_ext');
    // no flood of follow-up errors burying it
    expect(run.findings.map((x: { code: string }) => x.code)).not.toContain('RESTORE_ERROR');
    expect(run.checks[0].status).toBe('passed');
  });

  it('a plain dump needing an extension the sandbox lacks: EXTENSION_MISSING before restoring', async () => {
    await h.putPlan(pgPlan('ext-missing-plain', 'customext.sql', { checks: [count] }));
    const run = await h.waitForRun(await h.trigger('ext-missing-plain'));
    expect(run.verdict).toBe('error');
    expect(run.findings.map((x: { code: string }) => x.code)).toEqual(expect.arrayContaining(['EXTENSION_MISSING']));
    expect(run.findings.find((x: { code: string }) => x.code === 'EXTENSION_MISSING').message).toContain('ef_fixture_ext');
    expect(await h.sandboxesLeft()).toBe(0);
  });
});

describe('roles the dump references', () => {
  it('an archive whose policy names a role the sandbox lacks still restores: the role is created first', async () => {
    await h.putPlan(pgPlan('policy-role', 'policy.dump', { checks: [count, { name: 'Policy', sql: "select count(*) from pg_policies where policyname = 'nur_lesen'", expect: '== 1' }] }));
    const run = await h.waitForRun(await h.trigger('policy-role'));
    expect(run.verdict, JSON.stringify(run.findings)).toBe('passed');
    expect(run.findings.map((f: { code: string }) => f.code)).toContain('ROLES_CREATED');
  });
});

describe('free disk', () => {
  it('too little free disk in the sandbox is an error before the restore', async () => {
    const tight = await startHarness({ backupRoot: dir, env: { ERNSTFALL_DISK_FACTOR: '100000000' } });
    try {
      await tight.putPlan(pgPlan('disk', 'trgm.dump'));
      const run = await tight.waitForRun(await tight.trigger('disk'));
      expect(run.verdict).toBe('error');
      // (an info finding such as BACKUP_TIME_AMBIGUOUS may accompany it: it decides nothing)
      expect(run.findings.filter((x: { severity: string }) => x.severity !== 'info').map((x: { code: string }) => x.code)).toEqual(['DISK_SPACE_LOW']);
      expect(run.phases.find((p: { name: string }) => p.name === 'restore').status).toBe('skipped');
      expect(await tight.sandboxesLeft()).toBe(0);
    } finally {
      await tight.close();
    }
  });
});
