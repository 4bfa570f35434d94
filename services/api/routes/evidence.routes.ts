import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { LedgerService } from '../../evidence/ledger.service.js';
import { stripStored } from '../../evidence/ledger.service.js';
import { parseEnvelope } from '../../evidence/ledger-format.js';
import { fingerprintOfKey } from '../../evidence/signing-key.js';
import type { ReviewService } from '../../evidence/review.service.js';
import { Conflict, Invalid } from '../../errors.js';
import type { ReportService } from '../../reports/report.service.js';
import type { RunService } from '../../runs/run.service.js';
import { renderRunProtocolPdf } from '../../reports/run-protocol.pdf.js';
import { renderAuditReportPdf } from '../../reports/audit-report.pdf.js';
import { auditToCsv } from '../../reports/csv.js';
import { reportPeriod } from '../../reports/period.js';
import { requireRole } from '../plugins/auth.js';
import { RunIdParams } from '../schemas.js';
import type { AuditService } from '../../audit/audit.service.js';
import { runEvidenceStatus } from '../../evidence/run-evidence.js';
import { auditFrom } from '../audit-hook.js';
import type { Clock } from '../../clock.js';

const errorRef = { $ref: 'Error#' };

function measureJson(m: { id: string; plan_id: string; run_id: string; review_id: string | null; title: string; owner: string; due_date: string; status: string; closed_by_run_id: string | null; closed_at: Date | null; created_by: string; created_at: Date; updated_at: Date }) {
  return {
    id: m.id, planId: m.plan_id, runId: m.run_id, reviewId: m.review_id, title: m.title, owner: m.owner, dueDate: m.due_date, status: m.status,
    closedByRunId: m.closed_by_run_id, closedAt: m.closed_at?.toISOString() ?? null, createdBy: m.created_by, createdAt: m.created_at.toISOString(), updatedAt: m.updated_at.toISOString(),
  };
}
const Lang = Type.Optional(Type.Union([Type.Literal('de'), Type.Literal('en')], { default: 'de' }));
const open = { additionalProperties: true } as const;

export async function evidenceRoutes(base: FastifyInstance, opts: {
  ledger: LedgerService; runs: RunService; reviews: ReviewService; reports: ReportService; audit: AuditService; clock: Clock;
}) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const { ledger } = opts;
  /** the app's clock (tests fix it): "generated at" of reports and the end of a period not over yet */
  const now = opts.clock;

  app.get('/runs/:id/evidence', {
    schema: {
      tags: ['evidence'], summary: 'The signed ledger record of a finished run, its key and whether it verifies',
      params: RunIdParams, response: { 200: Type.Object({}, open), 404: errorRef, 409: errorRef },
    },
  }, async (req) => {
    const tenantId = req.principal!.tenantId;
    const run = await opts.runs.get(tenantId, req.params.id);
    const ev = await runEvidenceStatus(ledger, tenantId, req.params.id);
    if (!ev) throw new Conflict(`run ${req.params.id} is not finished yet (${run.status}); its record is written when it finishes`);
    const { record: rec, key } = ev;
    return {
      record: stripStored(rec),
      envelope: parseEnvelope(rec),
      key: key ? { keyId: rec.keyId, fingerprint: ev.fingerprint, pem: key.export({ type: 'spki', format: 'pem' }).toString() } : { keyId: rec.keyId, trusted: false },
      verified: { hash: ev.hashOk, signature: ev.signatureOk, trustedKey: ev.trustedKey },
      attachments: ev.attachments,
      checkpoint: ledger.newestCheckpoint(tenantId),
    };
  });

  app.get('/evidence/verify', {
    schema: {
      tags: ['evidence'],
      summary: "Verifies the tenant's chain (hashes, order, signatures, checkpoints); names the first broken record. Incremental by default (from the head this process verified last); full=true (admins) verifies every record",
      querystring: Type.Object({ full: Type.Optional(Type.Boolean({ default: false })) }, { additionalProperties: false }),
      response: { 200: Type.Object({}, open), 403: errorRef },
    },
  }, async (req) => {
    const tenantId = req.principal!.tenantId;
    // a full verification reads and checks every record: only admins may ask for it (everyone else gets the incremental one)
    if (req.query.full) await requireRole('admin')(req);
    const result = await ledger.verify(tenantId, { full: req.query.full === true });
    return { ...result, checkpoint: ledger.newestCheckpoint(tenantId), verifiedAt: now().toISOString() };
  });

  app.get('/evidence/bundle', {
    preValidation: requireRole('auditor'),
    schema: {
      tags: ['evidence'], summary: 'A chain segment with public keys and checkpoints, for offline verification (npm run evidence:verify)',
      querystring: Type.Object({ fromSeq: Type.Optional(Type.Integer({ minimum: 1 })), toSeq: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false }),
    },
  }, async (req, reply) => {
    const b = await ledger.bundle(req.principal!.tenantId, req.query);
    // exports are recorded before they are handed out: no export without its trace
    await opts.audit.record({ ...auditFrom(req), action: 'export.evidence-bundle', details: { fromSeq: b.records[0]?.seq ?? null, toSeq: b.records.at(-1)?.seq ?? null } });
    return reply.header('content-disposition', `attachment; filename="ernstfall-evidence-${now().toISOString().slice(0, 10)}.json"`).send(b);
  });

  app.get('/evidence/keys', {
    schema: { tags: ['evidence'], summary: 'Public keys trusted for verification, with fingerprints' },
  }, async () => ({
    items: [...ledger.trusted()].map(([keyId, k]) => ({ keyId, fingerprint: fingerprintOfKey(k), pem: k.export({ type: 'spki', format: 'pem' }).toString(), current: keyId === ledger.keyId })),
  }));

  // ---- review and follow-up (DER.4.A14, PERS.2.3.4)
  app.post('/runs/:id/reviews', {
    preValidation: requireRole('reviewer'),
    schema: {
      tags: ['reviews'], summary: 'Sign a run off (four-eyes: not by whoever triggered it); deviations become follow-up measures',
      params: RunIdParams,
      body: Type.Object({
        decision: Type.Union([Type.Literal('approved'), Type.Literal('approved-with-deviations'), Type.Literal('rejected')]),
        comment: Type.Optional(Type.String({ maxLength: 4000 })),
        deviations: Type.Optional(Type.Array(Type.Object({
          title: Type.String({ minLength: 1, maxLength: 500 }), owner: Type.String({ minLength: 1, maxLength: 200 }), dueDate: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }),
        }, { additionalProperties: false }), { maxItems: 50 })),
      }, { additionalProperties: false }),
      response: { 201: Type.Object({}, open), 400: errorRef, 403: errorRef, 404: errorRef, 409: errorRef },
    },
  }, async (req, reply) => reply.status(201).send(await opts.reviews.review(req.principal!.tenantId, req.params.id, req.body, req.principal!.name)));

  app.get('/runs/:id/reviews', { schema: { tags: ['reviews'], summary: 'Reviews of a run; 404 for a run not in your tenant', params: RunIdParams } }, async (req) => {
    await opts.runs.get(req.principal!.tenantId, req.params.id); // 404 for a run not in the tenant
    return listReviews(req.principal!.tenantId, req.params.id);
  });
  const listReviews = async (tenantId: string, runId: string) => ({
    items: (await opts.reviews.listReviews(tenantId, runId)).map((r) => ({
      id: r.id, runId: r.run_id, decision: r.decision, comment: r.comment, reviewer: r.reviewer, recordHash: r.record_hash, createdAt: r.created_at.toISOString(),
    })),
  });

  app.get('/measures', {
    schema: {
      tags: ['reviews'], summary: 'Follow-up measures',
      querystring: Type.Object({ status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('in-progress'), Type.Literal('done')])), planId: Type.Optional(Type.String()) }, { additionalProperties: false }),
    },
  }, async (req) => ({ items: (await opts.reviews.listMeasures(req.principal!.tenantId, req.query)).map(measureJson) }));

  const MeasureParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
  app.patch('/measures/:id', {
    preValidation: requireRole('reviewer', 'operator'),
    schema: {
      tags: ['reviews'], summary: 'Change status (open, in-progress), owner or due date; closing needs a re-test',
      params: MeasureParams,
      body: Type.Object({ status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('in-progress')])), owner: Type.Optional(Type.String({ minLength: 1 })), dueDate: Type.Optional(Type.String()) }, { additionalProperties: false }),
    },
  }, async (req) => measureJson(await opts.reviews.updateMeasure(req.principal!.tenantId, req.params.id, req.body, req.principal!.name)));

  app.post('/measures/:id/close', {
    preValidation: requireRole('reviewer', 'operator'),
    schema: {
      tags: ['reviews'], summary: 'Close a measure with a passed re-test of the same plan (links back to the run)',
      params: MeasureParams, body: Type.Object({ runId: Type.String({ format: 'uuid' }) }, { additionalProperties: false }),
    },
  }, async (req) => measureJson(await opts.reviews.closeMeasure(req.principal!.tenantId, req.params.id, req.body.runId, req.principal!.name)));

  // ---- reports
  app.get('/runs/:id/protocol.pdf', {
    schema: { tags: ['reports'], summary: 'Wiederherstellungsprotokoll (PDF/A-2b); lang=de|en', params: RunIdParams, querystring: Type.Object({ lang: Lang }, { additionalProperties: false }) },
  }, async (req, reply) => {
    const data = await opts.reports.runProtocol(req.principal!.tenantId, req.params.id, req.query.lang ?? 'de', now());
    const pdf = await renderRunProtocolPdf(data);
    // recorded once the file is complete, before it is handed out (as the audit report)
    await opts.audit.record({ ...auditFrom(req), action: 'export.protocol', subject: { type: 'run', id: req.params.id }, details: { lang: data.lang } });
    return reply.type('application/pdf').header('content-disposition', `attachment; filename="wiederherstellungsprotokoll-${req.params.id}.pdf"`).send(pdf);
  });

  app.get('/reports/audit', {
    preValidation: requireRole('auditor'),
    schema: {
      tags: ['reports'], summary: 'Audit report for a period of whole days in Europe/Berlin: PDF/A-2b, CSV (systems table) or JSON; lang=de|en',
      querystring: Type.Object({
        from: Type.String({ format: 'date', description: 'first day, from 00:00 Europe/Berlin' }),
        to: Type.String({ format: 'date', description: 'last day, inclusive: up to 24:00 Europe/Berlin' }),
        format: Type.Optional(Type.Union([Type.Literal('pdf'), Type.Literal('csv'), Type.Literal('json')], { default: 'pdf' })), lang: Lang,
      }, { additionalProperties: false }),
    },
  }, async (req, reply) => {
    // the days from..to (inclusive) in Europe/Berlin: local midnight of `from` up to local midnight after `to`
    let period: ReturnType<typeof reportPeriod>;
    try {
      period = reportPeriod(req.query.from, req.query.to);
    } catch (err) {
      throw new Invalid('invalid period', [{ path: 'from', message: (err as Error).message }]);
    }
    if (!(period.from < period.to)) throw new Invalid('invalid period', [{ path: 'to', message: 'must not be before from' }]);
    const data = await opts.reports.audit(req.principal!.tenantId, period, req.query.lang ?? 'de', now());
    const name = `pruefbericht-${req.query.from}-${req.query.to}`;
    const format = req.query.format ?? 'pdf';
    // the file is complete before its export is recorded, and recorded before it is handed out: a process
    // that dies while building it leaves no record of an export that never happened, and no export goes untraced
    const recordExport = () => opts.audit.record({ ...auditFrom(req), action: 'export.audit-report', details: { from: req.query.from, to: req.query.to, format } });
    if (format === 'json') {
      await recordExport();
      return data;
    }
    if (format === 'csv') {
      const csv = auditToCsv(data);
      await recordExport();
      return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}.csv"`).send(csv);
    }
    const pdf = await renderAuditReportPdf(data);
    await recordExport();
    return reply.type('application/pdf').header('content-disposition', `attachment; filename="${name}.pdf"`).send(pdf);
  });
}
