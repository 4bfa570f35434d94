import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';

/**
 * Issue #12, systems and priorities: a tenant's systems as objects (process,
 * protection need, restart tier, owner, emergency-manual reference), named by
 * plans; the restart order on the dashboard and in the audit report, with the
 * tier-1 systems that lack a passed test of any kind in the last year.
 */
let h: Harness;
const now = new Date('2027-03-01T09:00:00Z');
let operator = '';
let auditor = '';

const as = (token: string, method: 'GET' | 'PUT', url: string, body?: unknown) => h.request(method, url, body, { authorization: `Bearer ${token}` });

beforeAll(async () => {
  h = await startHarness({ worker: false, clock: () => now });
  operator = (await h.request('POST', '/api/v1/tokens', { name: 'Otto Operator', role: 'operator' })).body.token;
  auditor = (await h.request('POST', '/api/v1/tokens', { name: 'Carla Auditorin', role: 'auditor' })).body.token;
});
afterAll(async () => {
  await h?.close();
});

describe('systems and the restart order', () => {
  it('are created and changed by operators, validated, and never deleted (retired)', async () => {
    const ewo = await as(operator, 'PUT', '/api/v1/systems/ewo', {
      name: 'Einwohnermeldewesen (OK.EWO)', process: 'Meldewesen', protectionNeed: 'hoch', tier: 1, owner: 'Bürgeramt, Frau Berger', handbookRef: 'Notfallhandbuch Kap. 4.2',
    });
    expect(ewo.status, JSON.stringify(ewo.body)).toBe(201);
    expect(ewo.body).toMatchObject({ id: 'ewo', tier: 1, protectionNeed: 'hoch', handbookRef: 'Notfallhandbuch Kap. 4.2', retiredAt: null });
    expect((await as(operator, 'PUT', '/api/v1/systems/ewo', { name: 'Einwohnermeldewesen (OK.EWO)', process: 'Meldewesen', protectionNeed: 'hoch', tier: 1, owner: 'Bürgeramt', handbookRef: 'Notfallhandbuch Kap. 4.2' })).status).toBe(200);
    expect((await as(operator, 'PUT', '/api/v1/systems/fileserver', { name: 'Fileserver Rathaus', tier: 1, owner: 'IT-Betrieb' })).status).toBe(201);
    expect((await as(operator, 'PUT', '/api/v1/systems/gewerbe', { name: 'Gewerbe-Fachverfahren', tier: 2, protectionNeed: 'normal' })).status).toBe(201);
    expect((await as(operator, 'PUT', '/api/v1/systems/alt', { name: 'Altes Archiv', tier: 3 })).status).toBe(201);
    // bad input: 400 naming the field; an auditor may read, not write
    const bad = await as(operator, 'PUT', '/api/v1/systems/x1', { name: 'x', tier: 0 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('tier');
    expect((await as(operator, 'PUT', '/api/v1/systems/Bad_Id', { name: 'x', tier: 1 })).status).toBe(400);
    expect((await as(auditor, 'PUT', '/api/v1/systems/ewo', { name: 'x', tier: 1 })).status).toBe(403);
    expect((await as(auditor, 'GET', '/api/v1/systems')).status).toBe(200);
    // retired: kept, not listed, no longer nameable by plans
    expect((await as(operator, 'PUT', '/api/v1/systems/alt', { name: 'Altes Archiv', tier: 3, retired: true })).body.retiredAt).not.toBeNull();
    expect((await h.request('GET', '/api/v1/systems')).body.items.map((x: { id: string }) => x.id)).toEqual(['ewo', 'fileserver', 'gewerbe']);
    expect((await h.request('GET', '/api/v1/systems?retired=true')).body.items.map((x: { id: string }) => x.id)).toContain('alt');
    expect((await h.request('GET', '/api/v1/systems/nope')).status).toBe(404);
    const trail = (await h.request('GET', '/api/v1/audit?action=system.changed')).body.items;
    expect(trail.length).toBe(6);
  });

  it('plans name a system by id: its name, process and protection need go into the plan version; an unknown or retired one is refused', async () => {
    const put = await h.request('PUT', '/api/v1/plans/ewo-db', pgPlan('ewo-db', 'ewo.dump', { title: 'Melderegister-Datenbank', system: 'ewo' }));
    expect(put.status, JSON.stringify(put.body)).toBe(201);
    expect(put.body.definition.system).toEqual({ id: 'ewo', name: 'Einwohnermeldewesen (OK.EWO)', process: 'Meldewesen', protectionNeed: 'hoch' });
    const unknown = await h.request('PUT', '/api/v1/plans/x-db', pgPlan('x-db', 'x.dump', { system: 'gibt-es-nicht' }));
    expect(unknown.status).toBe(400);
    expect(unknown.body.details[0]).toMatchObject({ path: 'system' });
    expect(unknown.body.details[0].message).toContain('PUT /api/v1/systems/gibt-es-nicht');
    expect((await h.request('PUT', '/api/v1/plans/x-db', pgPlan('x-db', 'x.dump', { system: 'alt' }))).body.details[0].message).toContain('retired');
    expect((await h.request('PUT', '/api/v1/plans/x-db', pgPlan('x-db', 'x.dump', { system: 'Not An Id' }))).status).toBe(400);
    // other kinds name systems too
    expect((await h.request('PUT', '/api/v1/plans/ewo-vm', { id: 'ewo-vm', title: 'EWO-VM (Veeam)', kind: 'external', system: 'ewo', targets: { rto: '4h', rpo: '26h' }, external: { tool: 'Veeam SureBackup' } })).status).toBe(201);
    expect((await h.request('PUT', '/api/v1/plans/gewerbe-wa', { id: 'gewerbe-wa', title: 'Gewerbe – Wiederanlauf', kind: 'manual', system: 'gewerbe', targets: { rto: '8h', rpo: '26h' }, steps: [{ title: 'VM zurückspielen' }] })).status).toBe(201);
  });

  it('the restart order: by tier, with plans and the newest passed test of any kind; tier-1 systems without one in a year are named', async () => {
    let items = (await h.request('GET', '/api/v1/systems')).body.items;
    expect(items.map((x: { id: string; tier: number; lacksRecentPass: boolean }) => [x.id, x.tier, x.lacksRecentPass])).toEqual([
      ['ewo', 1, true], ['fileserver', 1, true], ['gewerbe', 2, false],
    ]);
    expect(items[0].plans.map((p: { id: string; kind: string }) => [p.id, p.kind])).toEqual([['ewo-db', 'restore'], ['ewo-vm', 'external']]);
    // a pass more than a year ago does not count; a reported (external) pass this winter does
    await seedRun(h, { planId: 'ewo-db', verdict: 'passed', finishedAt: new Date('2026-02-01T03:00:00Z') });
    expect((await h.request('GET', '/api/v1/systems/ewo')).body.lacksRecentPass).toBe(true);
    const reported = await h.request('POST', '/api/v1/plans/ewo-vm/results', { status: 'passed', startedAt: '2027-02-20T22:00:00Z', finishedAt: '2027-02-20T23:00:00Z', externalId: 'sb-4711' });
    expect(reported.status, JSON.stringify(reported.body)).toBe(201);
    const ewo = (await h.request('GET', '/api/v1/systems/ewo')).body;
    expect(ewo).toMatchObject({ lacksRecentPass: false, lastPassed: { planId: 'ewo-vm', origin: 'external', runId: reported.body.id } });
    items = (await h.request('GET', '/api/v1/systems')).body.items;
    expect(items.filter((x: { lacksRecentPass: boolean }) => x.lacksRecentPass).map((x: { id: string }) => x.id)).toEqual(['fileserver']);

    // the dashboard shows the order and names the tier-1 system without a test
    const page = await h.request('GET', '/');
    for (const t of ['Wiederanlauf-Reihenfolge (Systeme)', '1 System(e) der Stufe 1 ohne bestandenen Test im letzten Jahr:', 'Fileserver Rathaus', 'Notfallhandbuch Kap. 4.2', 'kein Plan', '(extern gemeldet)']) {
      expect(page.body, t).toContain(t);
    }
    // the audit report: the restart order, in JSON and in the PDF
    const report = await h.request('GET', '/api/v1/reports/audit?from=2027-01-01&to=2027-02-28&format=json');
    expect(report.body.restartOrder.map((x: { id: string; lacksRecentPass: boolean }) => [x.id, x.lacksRecentPass])).toEqual([['ewo', false], ['fileserver', true], ['gewerbe', false]]);
    const pdf = await h.app.inject({ method: 'GET', url: '/api/v1/reports/audit?from=2027-01-01&to=2027-02-28', headers: { authorization: `Bearer ${h.config.auth.bootstrapToken!}` } });
    const dir = mkdtempSync(join(tmpdir(), 'ef-systems-'));
    writeFileSync(join(dir, 'a.pdf'), pdf.rawPayload);
    const flat = execFileSync('pdftotext', ['-layout', join(dir, 'a.pdf'), '-']).toString().replace(/\s+/g, '');
    rmSync(dir, { recursive: true, force: true });
    // (columns wrap, and pdftotext interleaves their lines)
    for (const t of ['Wiederanlauf-Reihenfolge', 'Systeme der Stufe 1 ohne bestandenen Test im letzten Jahr: Fileserver Rathaus', 'Kap. 4.2', 'Bürgeramt', 'IT-Betrieb', 'kein Plan']) {
      expect(flat, t).toContain(t.replace(/\s+/g, ''));
    }
  });

  it('the systems page lists the order and lets an operator add and change a system with the same checks', async () => {
    const form = (url: string, fields: Record<string, string>, token = operator) => h.app.inject({
      method: 'POST', url, payload: new URLSearchParams(fields).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${token}` },
    });
    const bad = await form('/systems', { id: 'Mail Server', name: '', tier: '0', protectionNeed: 'hoch' });
    expect(bad.statusCode).toBe(400);
    for (const f of ['sys-id-err', 'sys-name-err', 'sys-tier-err']) expect(bad.body, f).toContain(f);
    expect((await form('/systems', { id: 'ewo', name: 'Doppelt', tier: '1', protectionNeed: '' })).body).toContain('Diese Kennung gibt es schon.');
    const created = await form('/systems', { id: 'mail', name: 'E-Mail (Exchange)', tier: '2', protectionNeed: 'hoch', owner: 'IT-Betrieb', handbookRef: 'Kap. 5', process: '' });
    expect(created.statusCode).toBe(303);
    expect((await h.request('GET', '/api/v1/systems/mail')).body).toMatchObject({ name: 'E-Mail (Exchange)', tier: 2, protectionNeed: 'hoch', owner: 'IT-Betrieb', handbookRef: 'Kap. 5', process: null });
    expect((await form('/systems/mail', { name: 'E-Mail (Exchange)', tier: '1', protectionNeed: 'hoch', owner: 'IT-Betrieb', handbookRef: 'Kap. 5' })).statusCode).toBe(303);
    expect((await h.request('GET', '/api/v1/systems/mail')).body.tier).toBe(1);
    expect((await form('/systems/nope', { name: 'x', tier: '1', protectionNeed: '' })).statusCode).toBe(404);
    expect((await form('/systems', { id: 'x2', name: 'x', tier: '1', protectionNeed: '' }, auditor)).statusCode).toBe(403);
    const page = await h.request('GET', '/systems');
    for (const t of ['Wiederanlauf-Reihenfolge (Systeme)', 'E-Mail (Exchange)', 'href="/systems/mail"', 'Altes Archiv', 'außer Betrieb', 'Neues System']) expect(page.body, t).toContain(t);
    const edit = await h.request('GET', '/systems/mail');
    expect(edit.body).toContain('value="E-Mail (Exchange)"');
  });
});
