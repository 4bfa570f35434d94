import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { freePort, startService, stopServices } from '../helpers/processes.js';
import { faultDumps, faultEngine, faultPlan, faultPostgres, faultRedis, recordFigure, startFaultStack, type FaultEngine, type FaultPostgres, type FaultRedis, type FaultStack } from './kit.js';
import { until } from '../helpers/until.js';

/**
 * Issue 14, item 4: the scheduler leader is SIGKILLed while its dispatcher
 * sends the reminders of a dozen overdue plans to a real (slow) SMTP server;
 * a new scheduler process takes over. Every reminder must arrive; one resent
 * after the kill carries the Message-ID of the first attempt.
 */

const PLANS = 12;
/** The SMTP server answers each message this long after it has received it: the window for the kill. */
const SMTP_DELAY_MS = 1000;
/** The kill falls after the server has received this many messages (the last one not yet answered). */
const KILL_AT = 4;
const recipient = (i: number) => `it-${String(i).padStart(2, '0')}@musterstadt.de`;

interface Received { to: string[]; messageId: string; at: number }

let pg: FaultPostgres;
let redis: FaultRedis;
let engine: FaultEngine;
let dumps: Awaited<ReturnType<typeof faultDumps>>;
let s: FaultStack | undefined;
let smtp: SMTPServer | undefined;
const received: Received[] = [];
let onReceived: ((n: number) => void) | undefined;

beforeAll(async () => {
  [pg, redis, engine, dumps] = await Promise.all([faultPostgres(), faultRedis(), faultEngine(), faultDumps('sched', { big: false })]);
  smtp = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        void simpleParser(Buffer.concat(chunks)).then((mail) => {
          // received in full: counted now, answered (250) only after the delay, if the sender still lives
          received.push({ to: session.envelope.rcptTo.map((r) => r.address), messageId: mail.messageId ?? '', at: Date.now() });
          onReceived?.(received.length);
          setTimeout(() => cb(), SMTP_DELAY_MS);
        }, (err: Error) => cb(err));
      });
    },
  });
  await new Promise<void>((res) => smtp!.listen(0, '127.0.0.1', () => res()));
});
afterAll(async () => {
  await stopServices();
  await s?.close();
  await new Promise<void>((res) => (smtp ? smtp.close(() => res()) : res()));
  await redis?.kill();
  await dumps?.remove();
});

describe('the scheduler leader is killed (SIGKILL) while it sends reminders', () => {
  it('a new scheduler sends every reminder; a resent one keeps its Message-ID; nothing stays sending; runs end; the ledger verifies', { timeout: 330_000 }, async () => {
    const smtpPort = (smtp!.server.address() as AddressInfo).port;
    // the in-test stack runs the worker only: the scheduler processes are the only ones holding the key (they sign the runs' records)
    s = await startFaultStack({
      pg, redisUrl: redis.url, dockerHost: engine.host, backupRoot: dumps.dir, signer: false,
      env: {
        ERNSTFALL_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, ERNSTFALL_SMTP_STARTTLS: 'off', ERNSTFALL_MAIL_FROM: 'ernstfall <ernstfall@musterstadt.de>',
        ERNSTFALL_NOTIFY_DISPATCH_MS: '200',
      },
    });
    for (let i = 1; i <= PLANS; i++) {
      await s.putPlan({ ...faultPlan(`overdue-${i}`, 'small.dump'), cadence: { timezone: 'Europe/Berlin', requiredEvery: 'P1D' }, notify: { overdue: [`mail:${recipient(i)}`] } });
    }
    // a scheduled plan without recipients: the leader enqueues its missed slot on its first tick, the worker runs it
    await s.putPlan({ ...faultPlan('scheduled', 'small.dump'), cadence: { timezone: 'Europe/Berlin', schedule: '0 2 * * *', requiredEvery: 'P1D' } });
    // created a month ago and never tested: overdue
    await s.c.db.updateTable('plans').set({ created_at: new Date(Date.now() - 30 * 86_400_000) }).execute();

    const env = { ...s.env, PORT: String(await freePort()) };
    const leader = startService(['scheduler'], env);
    let killedAt = 0;
    let killed = false;
    // from the SMTP server's handler: the KILL_AT-th message is in, its answer not yet given
    onReceived = (n) => {
      if (n !== KILL_AT) return;
      onReceived = undefined;
      killedAt = Date.now();
      void leader.kill().then(() => (killed = true));
    };
    await until(`the leader to send ${KILL_AT} reminders and be killed`, async () => (killed ? true : undefined), 90_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}; received ${received.length}; scheduler output:\n${leader.output()}`);
    });
    expect(received).toHaveLength(KILL_AT);

    // what the dead leader left: some sent, the rest claimed under its lease (status sending)
    const atKill = await s.c.db.selectFrom('notifications').select(['id', 'status']).execute();
    const leftSending = atKill.filter((n) => n.status === 'sending').length;
    expect(atKill).toHaveLength(PLANS);
    expect(leftSending).toBeGreaterThan(0);

    const second = startService(['scheduler'], { ...env, PORT: String(await freePort()) });
    const rows = await until('every reminder to be sent', async () => {
      const r = await s!.c.db.selectFrom('notifications').select(['id', 'status', 'recipient', 'attempts', 'event', 'sent_at']).execute();
      return r.length === PLANS && r.every((n) => n.status === 'sent') ? r : undefined;
    }, 240_000, 500).catch((err: Error) => {
      throw new Error(`${err.message}; received ${received.length}; scheduler output:\n${second.output()}`);
    });
    const recovered = (Date.now() - killedAt) / 1000;
    // the last answer may still be on its way
    await new Promise((r) => setTimeout(r, SMTP_DELAY_MS + 500));

    expect(rows.every((n) => n.event === 'overdue')).toBe(true);
    // none lost: every reminder arrived, counted by distinct Message-ID, each the id of its outbox row
    const ids = new Set(received.map((m) => m.messageId));
    expect(ids.size).toBe(PLANS);
    expect([...ids].sort()).toEqual(rows.map((n) => `<${n.id}@ernstfall>`).sort());
    // no reminder twice under different Message-IDs: each recipient (one plan each) saw one Message-ID only
    for (let i = 1; i <= PLANS; i++) {
      const mine = received.filter((m) => m.to.includes(recipient(i)));
      const row = rows.find((n) => n.recipient === `mail:${recipient(i)}`)!;
      expect(mine.length, recipient(i)).toBeGreaterThanOrEqual(1);
      expect(new Set(mine.map((m) => m.messageId)), recipient(i)).toEqual(new Set([`<${row.id}@ernstfall>`]));
    }
    // the message the server had received but not answered when the leader died went out again (at-least-once)
    const duplicates = received.length - ids.size;
    expect(duplicates).toBeGreaterThanOrEqual(1);
    for (const id of ids) {
      const times = received.filter((m) => m.messageId === id).length;
      if (times > 1) expect(rows.find((n) => `<${n.id}@ernstfall>` === id)!.attempts).toBeGreaterThanOrEqual(times);
    }
    // the new leader's reminder tick added nothing (one notification per change and recipient)
    const outbox = await s.c.db.selectFrom('notifications').select('status').execute();
    expect(outbox.filter((n) => n.status === 'sending')).toEqual([]);

    // the run the dead leader enqueued ends, signed by the new scheduler; no sandbox is left
    const runs = await until('every run to end', async () => {
      const r = await s!.c.db.selectFrom('runs').select(['id', 'status', 'verdict', 'plan_id']).execute();
      return r.length > 0 && r.every((x) => x.status === 'finished') ? r : undefined;
    }, 120_000, 500);
    expect(runs.map((r) => [r.plan_id, r.verdict])).toEqual([['scheduled', 'passed']]);
    await until('no sandbox left', async () => ((await s!.sandboxesLeft()) === 0 ? true : undefined), 30_000);
    s.c.ledger.forgetVerified();
    const ledger = await s.c.ledger.verify(DEFAULT_TENANT_ID, { full: true });
    expect(ledger, JSON.stringify(ledger)).toMatchObject({ ok: true });
    await recordFigure({
      fault: `scheduler leader SIGKILLed while sending ${PLANS} reminders (SMTP answers after ${SMTP_DELAY_MS} ms; killed after ${KILL_AT} received)`,
      recoveredSeconds: recovered,
      runs: `scheduled run ${runs[0]!.verdict}`,
      containersLeft: await s.sandboxesLeft(),
      ledger: `ok, ${ledger.records} records`,
      detail: `${ids.size} of ${PLANS} reminders arrived (distinct Message-IDs), ${received.length} mails, ${duplicates} duplicate(s) with the same Message-ID; ${leftSending} left in sending by the killed leader`,
    });
    await second.stop();
  });
});
