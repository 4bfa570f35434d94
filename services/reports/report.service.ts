import type { Repositories } from '../../db/repositories/index.js';
import type { LedgerService } from '../evidence/ledger.service.js';
import type { SystemService } from '../systems/system.service.js';
import { loadProgramme, yearBounds } from '../calendar/programme.js';
import { buildAuditData } from './audit-data.js';
import { buildRunProtocolData } from './run-protocol-data.js';
import type { ProgrammeData } from './programme-report.js';
import type { AuditReportData, Lang, RunProtocolData } from './report.types.js';

/**
 * The data of the reports (run protocol, audit report, the year's
 * programme), read from the ledger and the repositories; rendering (PDF, CSV)
 * stays with the callers. `now` is the caller's clock ("generated at").
 */
export class ReportService {
  constructor(
    private readonly repos: Pick<Repositories, 'runs' | 'tenants' | 'reviews' | 'reports'>,
    private readonly ledger: LedgerService,
    private readonly systems: Pick<SystemService, 'overview'>,
  ) {}

  /** The Wiederherstellungsprotokoll of one run: 404 for a run the tenant does not have, 409 before its record exists. */
  runProtocol(tenantId: string, runId: string, lang: Lang, now: Date): Promise<RunProtocolData> {
    return buildRunProtocolData(this.repos, this.ledger, tenantId, runId, lang, now);
  }

  /** The audit report for a period (instants: from inclusive, to exclusive). */
  audit(tenantId: string, period: { from: Date; to: Date; firstDay?: string; lastDay?: string }, lang: Lang, now: Date): Promise<AuditReportData> {
    return buildAuditData({ repos: this.repos, systems: this.systems }, this.ledger, tenantId, period, lang, now);
  }

  /** The year's programme of a tenant: what is planned, due and done, for every kind of test. */
  async programme(tenantId: string, year: number, lang: Lang, now: Date): Promise<ProgrammeData> {
    const { from, to } = yearBounds(year);
    const [name, plans] = await Promise.all([this.repos.tenants.name(tenantId), loadProgramme(this.repos.reports, tenantId, from, to, now)]);
    return { lang, year, tenant: { name }, generatedAt: now.toISOString(), plans };
  }
}
