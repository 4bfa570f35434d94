import type { Transaction } from 'kysely';
import type { DB, RunRow } from '../../db/schema.js';
import type { Repositories } from '../../db/repositories/index.js';
import type { RestorePlan } from '../plans/plan.types.js';
import { buildMessage, messageRun } from './messages.js';
import type { Lang } from './types.js';

/**
 * Failure alerts (issue #4): a run that ends `failed` or `error` puts one
 * notification per `notify.failure` recipient into the outbox, in the same
 * transaction that ends the run: there is no failed run without its alert,
 * and no alert of a run that did not end.
 */
export class FailureNotifier {
  constructor(private readonly repos: Pick<Repositories, 'notifications' | 'tenants'>, private readonly cfg: { lang: Lang; timezone: string; publicUrl?: string }) {}

  async onRunFinished(trx: Transaction<DB>, run: RunRow, plan: RestorePlan | undefined): Promise<void> {
    if (run.verdict !== 'failed' && run.verdict !== 'error') return;
    const to = plan?.notify?.failure ?? [];
    if (!plan || to.length === 0) return;
    const tenant = await this.repos.tenants.names(run.tenant_id, trx);
    // an open alert of the plan (e.g. overdue, then this run failed): the failure belongs to it
    const alert = await this.repos.notifications.openAlertOfPlan(run.tenant_id, run.plan_id, trx);
    await this.repos.notifications.enqueue({
      tenantId: run.tenant_id, planId: run.plan_id, runId: run.id, alertId: alert?.id ?? null, event: 'failure', key: `failure:${run.id}`, recipients: to,
      message: buildMessage(
        { tenant, plan: { id: plan.id, title: plan.title, ...(plan.system && { system: plan.system }) }, publicUrl: this.cfg.publicUrl, timezone: this.cfg.timezone, lang: plan.notify?.language ?? this.cfg.lang },
        'failure', run.finished_at!, { run: messageRun(run) },
      ),
    }, trx);
  }
}
