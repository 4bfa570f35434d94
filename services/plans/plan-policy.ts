import type { TenantRepository } from '../../db/repositories/tenant.repository.js';
import type { SandboxPolicy } from '../sandbox-policy.js';
import type { TenantPlanPolicy } from './plan.parser.js';

/**
 * The operator's sandbox policy for one tenant: its own backup roots (never
 * another tenant's), the allowed images and the upper bounds of the limits.
 * Used where plans are stored (API, plan files) and where they run (worker).
 */
export class PlanPolicyService {
  constructor(private readonly tenants: TenantRepository, private readonly policy: SandboxPolicy) {}

  async forTenant(tenantId: string): Promise<TenantPlanPolicy> {
    const slug = (await this.tenants.byId(tenantId))?.slug ?? tenantId;
    return { tenant: slug, roots: this.policy.tenantRoots.get(slug) ?? [], allowedImages: this.policy.allowedImages, max: this.policy.max, pools: this.policy.pools };
  }
}
