import type { UserRole } from '../../db/schema.js';
import type { AuditActor } from '../audit/audit.service.js';
import type { LiveSession } from './session.service.js';

/** Who a request acts as: established by the API's auth plugin, read by services that decide by role, tenant and owner. */
export interface Principal {
  /** The tenant the request acts in ('' for a provider admin outside any tenant: only provider routes are open then). */
  tenantId: string;
  /** The acting person or system: the user's e-mail, or the name of a token without a user. */
  name: string;
  role: UserRole;
  kind: 'bootstrap' | 'token' | 'session' | 'ingest';
  /** An ingest token's plan: the one plan whose results it may report, and nothing else. */
  ingestPlanId?: string;
  tokenId?: string;
  userId?: string;
  session?: LiveSession;
}

/** Who acts, as the audit trail names them: never a token or a session secret, only names and ids. */
export function actorOf(p: Principal): AuditActor {
  return {
    name: p.name,
    kind: p.kind,
    ...(p.userId && { userId: p.userId }),
    // a provider admin acting inside a tenant by the tenant's grant
    ...(p.session?.user.role === 'provider-admin' && p.tenantId && { viaProviderGrant: true }),
  };
}
