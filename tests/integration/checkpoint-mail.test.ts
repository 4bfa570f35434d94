import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, pgPlan, type Harness } from '../helpers/harness.js';
import { seedRun } from '../helpers/seed.js';
import { hostPsql } from '../fixtures/host-dumps.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { repoRoot } from '../../services/config.js';
import { createChannels } from '../../services/notify/channels/index.js';
import { NotificationDispatcher } from '../../services/notify/dispatcher.js';
import { ReminderEngine } from '../../services/notify/reminders.js';

/**
 * The evidence chain's anchor outside the server (#3 left it for #4): once a
 * day each tenant's signed chain head goes to ERNSTFALL_CHECKPOINT_RECIPIENTS.
 * Whoever keeps those mails can prove later that the newest records were not
 * removed — even by someone who also rewrote the server's own checkpoint
 * folder — with `npm run evidence:verify -- --checkpoint <attachment>`.
 */

let h: Harness;
let smtp: SMTPServer;
let dir: string;
const mails: Buffer[] = [];
const T = DEFAULT_TENANT_ID;

async function exportBundle(name: string): Promise<string> {
  const res = await h.request('GET', '/api/v1/evidence/bundle');
  expect(res.status).toBe(200);
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(res.body));
  return file;
}

function verify(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'services/evidence/verify-cli.ts', ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ef-cpmail-'));
  smtp = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
    onData(stream, _s, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => { mails.push(Buffer.concat(chunks)); cb(); });
    },
  });
  await new Promise<void>((res) => smtp.listen(0, '127.0.0.1', () => res()));
  h = await startHarness({
    worker: false,
    env: {
      ERNSTFALL_SMTP_URL: `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`,
      ERNSTFALL_SMTP_STARTTLS: 'off',
      ERNSTFALL_CHECKPOINT_RECIPIENTS: 'mail:isb@musterstadt.de',
    },
  });
  await h.putPlan(pgPlan('ewo', 'ewo.dump'));
  for (const day of [24, 25, 26]) await seedRun(h, { planId: 'ewo', verdict: 'passed', finishedAt: new Date(`2026-11-${day}T01:00:00Z`) });
}, 60_000);

afterAll(async () => {
  await h?.close();
  await new Promise<void>((res) => smtp?.close(() => res()));
  await rm(dir, { recursive: true, force: true });
});

describe('daily evidence checkpoint by mail', () => {
  let attachment = '';

  it('sends each tenant\'s signed chain head once a day after the digest time, with the checkpoint attached', async () => {
    const engine = new ReminderEngine(h.tdb.db, {
      lang: 'de', timezone: 'Europe/Berlin', digestTime: '07:00',
      checkpoints: { recipients: h.config.notify.checkpointRecipients, sign: (t) => h.c.ledger.signedHead(t) },
    }, h.c.log);
    expect((await engine.evaluate(new Date('2026-11-27T05:59:00Z'))).checkpoints).toBe(0); // 06:59 in Berlin
    expect((await engine.evaluate(new Date('2026-11-27T06:01:00Z'))).checkpoints).toBe(1);
    expect((await engine.evaluate(new Date('2026-11-27T12:00:00Z'))).checkpoints).toBe(0);
    const d = new NotificationDispatcher(h.tdb.db, createChannels(h.config.notify), h.c.log, h.config.notify);
    expect(await d.dispatchOnce()).toMatchObject({ sent: 1, failed: 0 });
    await d.stop();
    const mail = await simpleParser(mails[0]!);
    expect(mail.subject).toMatch(/^\[ernstfall\] Prüfpunkt der Nachweiskette: Standard-Mandant, Eintrag \d+$/);
    expect(mail.attachments).toHaveLength(1);
    attachment = join(dir, mail.attachments[0]!.filename!);
    await writeFile(attachment, mail.attachments[0]!.content);
    const cp = JSON.parse(mail.attachments[0]!.content.toString('utf8'));
    const head = JSON.parse(cp.canonical);
    const newest = await h.tdb.db.selectFrom('ledger_records').select(['seq', 'hash']).where('tenant_id', '=', T).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(head).toMatchObject({ type: 'checkpoint', tenantId: T, seq: newest.seq, hash: newest.hash });
    expect(mail.text).toContain(newest.hash);
  });

  it('a bundle that still reaches the mailed checkpoint verifies with it', async () => {
    const bundle = await exportBundle('good.json');
    const r = verify(bundle, '--trust-bundle-keys', '--checkpoint', attachment);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('deleting the newest records and the server\'s checkpoints is still caught by the mailed checkpoint', async () => {
    const mailed = JSON.parse(JSON.parse(await readFile(attachment, 'utf8')).canonical) as { seq: number };
    // an attacker with full access removes the newest records (from the mailed head on) and the checkpoint folder
    await hostPsql(`set session_replication_role = replica; delete from ledger_records where tenant_id = '${T}' and seq >= ${mailed.seq}`, h.tdb.name);
    await rm(h.config.evidence.checkpointDir, { recursive: true, force: true });
    const bundle = await exportBundle('truncated.json');
    // without the mail nothing shows (that is the point of keeping it)
    expect(verify(bundle, '--trust-bundle-keys').status).toBe(0);
    const r = verify(bundle, '--trust-bundle-keys', '--checkpoint', attachment, '--json');
    expect(r.status).toBe(1);
    // the export itself is audited: its record may take the deleted seq (a mismatch) or come after the bundle (records missing)
    expect(['missing-after-checkpoint', 'checkpoint-mismatch']).toContain(JSON.parse(r.stdout).result.firstBroken.reason);
    expect(JSON.parse(r.stdout).result.firstBroken.seq).toBe(mailed.seq);
  });

  it('refuses a checkpoint file that is not one, or belongs to another tenant', async () => {
    const bundle = await exportBundle('good2.json');
    const junk = join(dir, 'junk.json');
    await writeFile(junk, '{"hello": 1}\n');
    expect(verify(bundle, '--trust-bundle-keys', '--checkpoint', junk).status).toBe(2);
    const other = join(dir, 'other.json');
    await writeFile(other, `${JSON.stringify({ canonical: JSON.stringify({ v: 1, type: 'checkpoint', tenantId: 'someone-else', seq: 1, hash: 'a'.repeat(64), at: 'x' }), signature: 'x', keyId: 'k' })}\n`);
    const r = verify(bundle, '--trust-bundle-keys', '--checkpoint', other);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/another tenant/);
  });
});
