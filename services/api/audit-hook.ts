import type { FastifyRequest } from 'fastify';
import type { AuditActor, AuditEvent } from '../audit/audit.service.js';
import { Unauthorized } from '../errors.js';
import type { Principal } from './plugins/auth.js';

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

/**
 * The part of an audit event a route knows from its request: the tenant, the
 * actor and the client address. Spread it into AuditService.record:
 * `audit.record({ ...auditFrom(req), action: 'run.triggered', subject: { type: 'run', id } })`.
 */
export function auditFrom(req: FastifyRequest): Pick<AuditEvent, 'tenantId' | 'actor' | 'ip'> {
  const p = req.principal;
  if (!p) throw new Unauthorized();
  return { tenantId: p.tenantId || null, actor: actorOf(p), ...(req.ip && { ip: req.ip }) };
}
