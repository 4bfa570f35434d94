import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AuditService } from '../../audit/audit.service.js';
import { auditFrom } from '../audit-hook.js';
import { berlinYear } from '../../calendar/programme.js';
import { programmeSummary, programmeToCsv, renderProgrammePdf } from '../../reports/programme-report.js';
import type { ReportService } from '../../reports/report.service.js';
import type { Clock } from '../../clock.js';

const errorRef = { $ref: 'Error#' };

/** The year's programme of a tenant (JSON, CSV, PDF): what is planned, due and done, for every kind of test. */
export async function programmeRoutes(base: FastifyInstance, opts: { reports: ReportService; audit: AuditService; clock: Clock }) {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const now = opts.clock;
  app.get('/programme', {
    schema: {
      tags: ['reports'],
      summary: 'The year\'s test programme: every plan of every kind (sandbox, external, manual, exercise) with its runs, scheduled slots and due dates in the year (Europe/Berlin); JSON, CSV or PDF/A-2b',
      querystring: Type.Object({
        year: Type.Optional(Type.Integer({ minimum: 2000, maximum: 2100, description: 'default: this year' })),
        format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv'), Type.Literal('pdf')], { default: 'json' })),
        lang: Type.Optional(Type.Union([Type.Literal('de'), Type.Literal('en')])),
      }, { additionalProperties: false }),
      response: { 400: errorRef, 401: errorRef },
    },
  }, async (req, reply) => {
    const at = now();
    const year = req.query.year ?? berlinYear(at);
    const data = await opts.reports.programme(req.principal!.tenantId, year, req.query.lang ?? 'de', at);
    const format = req.query.format ?? 'json';
    const name = `testprogramm-${year}`;
    // the file complete first, then its export recorded, then handed out (as the audit report)
    if (format === 'csv') {
      const csv = programmeToCsv(data);
      await opts.audit.record({ ...auditFrom(req), action: 'export.programme', details: { year, format } });
      return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}.csv"`).send(csv);
    }
    if (format === 'pdf') {
      const pdf = await renderProgrammePdf(data);
      await opts.audit.record({ ...auditFrom(req), action: 'export.programme', details: { year, format } });
      return reply.type('application/pdf').header('content-disposition', `attachment; filename="${name}.pdf"`).send(pdf);
    }
    return {
      year, tenant: data.tenant.name, generatedAt: data.generatedAt, summary: programmeSummary(data.plans),
      plans: data.plans.map((p) => ({ ...p, occurrences: p.occurrences.map((o) => ({ ...o, at: o.at.toISOString() })) })),
    };
  });
}
