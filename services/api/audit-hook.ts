import type { FastifyRequest } from 'fastify';
import type { AuditEvent } from '../audit/audit.service.js';
import { Unauthorized } from '../errors.js';
import { actorOf } from '../auth/principal.js';

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
