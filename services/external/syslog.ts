import { createServer, type Server, type Socket } from 'node:net';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from '../../db/schema.js';
import { PlanRepository } from '../../db/repositories/plan.repository.js';
import type { ExternalResultService } from './external.service.js';
import { parseVeeamSyslog, UnreadableResult } from './parsers.js';

export interface SyslogOptions {
  host: string;
  port: number;
  /** Sender address → tenant slug. Syslog carries no credentials: the address is the only thing that says whose it is. */
  sources: Map<string, string>;
  /** One message at most (default 64 KiB); a longer one closes the connection. */
  maxMessageBytes?: number;
  maxConnections?: number;
}

const normalizeAddress = (a: string | undefined) => (a ?? '').replace(/^::ffff:/, '');

/**
 * Veeam Backup & Replication sends every event to syslog over TCP (RFC 5424;
 * framed by octet counting or by line ends, RFC 6587). This listener keeps
 * event 390 (SureBackup job finished) and records it for each external plan
 * of the sender's tenant whose `external.veeamJob` is the event's JobName,
 * through the same path as POST /plans/{id}/results (so a resent event, same
 * JobSessionID, is one run). Every other event is dropped unread; a sender
 * that is not mapped to a tenant is dropped and logged; an event of a job no
 * plan names is logged (there is no plan to record it against).
 */
export class VeeamSyslogListener {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  /** Messages in flight, so close() can wait for them. */
  private pending = new Set<Promise<void>>();
  readonly stats = { received: 0, recorded: 0, ignored: 0, unmapped: 0, refused: 0 };

  private readonly plans: PlanRepository;
  constructor(db: Kysely<DB>, private readonly external: ExternalResultService, private readonly opts: SyslogOptions, private readonly log: Logger) {
    this.plans = new PlanRepository(db);
  }

  async start(): Promise<number> {
    const max = this.opts.maxMessageBytes ?? 64 * 1024;
    this.server = createServer((socket) => {
      const from = normalizeAddress(socket.remoteAddress);
      const slug = this.opts.sources.get(from);
      if (!slug) {
        this.stats.refused++;
        this.log.warn({ from }, 'syslog: a sender that ERNSTFALL_SYSLOG_SOURCES does not map to a tenant; connection closed');
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      socket.setTimeout(10 * 60_000, () => socket.destroy());
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      let buf = Buffer.alloc(0);
      let chain = Promise.resolve();
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        for (;;) {
          let message: Buffer | undefined;
          const counted = /^(\d{1,6}) /.exec(buf.subarray(0, 8).toString('latin1'));
          if (counted) {
            const len = Number(counted[1]);
            if (len > max) return this.tooLong(socket, from, len);
            const start = counted[0].length;
            if (buf.length < start + len) break;
            message = buf.subarray(start, start + len);
            buf = buf.subarray(start + len);
          } else {
            const nl = buf.indexOf(10);
            if (nl === -1) {
              if (buf.length > max) return this.tooLong(socket, from, buf.length);
              break;
            }
            message = buf.subarray(0, nl);
            buf = buf.subarray(nl + 1);
          }
          const text = message.toString('utf8').replace(/\r$/, '');
          if (!text.trim()) continue;
          // one sender's messages in their order
          chain = chain.then(() => this.track(this.handle(text, slug, from)));
        }
      });
    });
    this.server.maxConnections = this.opts.maxConnections ?? 50;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, this.opts.host, () => resolve());
    });
    const port = (this.server.address() as { port: number }).port;
    this.log.info({ host: this.opts.host, port, sources: this.opts.sources.size }, 'syslog listener for Veeam SureBackup results');
    return port;
  }

  private tooLong(socket: Socket, from: string, bytes: number): void {
    this.log.warn({ from, bytes }, 'syslog: a message longer than the limit; connection closed');
    socket.destroy();
  }

  private track(p: Promise<void>): Promise<void> {
    this.pending.add(p);
    return p.finally(() => this.pending.delete(p));
  }

  private async handle(text: string, slug: string, from: string): Promise<void> {
    this.stats.received++;
    let jobName: string | undefined;
    try {
      jobName = parseVeeamSyslog(text).jobName;
    } catch (err) {
      // Veeam sends every event it logs; only SureBackup results concern ernstfall
      if (!(err instanceof UnreadableResult)) throw err;
      this.stats.ignored++;
      return;
    }
    if (!jobName) {
      this.stats.unmapped++;
      this.log.warn({ from }, 'syslog: a SureBackup result without a JobName; no plan to record it for');
      return;
    }
    try {
      const plans = await this.plans.externalByVeeamJob(slug, jobName);
      if (plans.length === 0) {
        this.stats.unmapped++;
        this.log.warn({ from, tenant: slug, job: jobName.slice(0, 200) }, 'syslog: a SureBackup result of a job no external plan names (external.veeamJob); not recorded');
        return;
      }
      for (const p of plans) {
        const { run, created } = await this.external.record(p.tenant_id, p.id, { format: 'veeam-syslog', message: text }, `syslog:${from}`);
        if (created) this.stats.recorded++;
        this.log.info({ tenant: slug, planId: p.id, runId: run.id, verdict: run.verdict, created }, 'syslog: SureBackup result recorded');
      }
    } catch (err) {
      this.log.error({ from, err: (err as Error).message }, 'syslog: recording a SureBackup result failed');
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await Promise.allSettled([...this.pending]);
  }
}
