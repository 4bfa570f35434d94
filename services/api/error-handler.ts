import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../errors.js';

/** The body of every error answer (schema `Error`): what went wrong, and for a bad request which fields. */
export interface ErrorAnswer {
  status: number;
  body: { error: string; message: string; details?: unknown[] } & Record<string, unknown>;
  /** Not a domain error, not a client's mistake: a bug or an outage, logged, its message never shown. */
  unexpected: boolean;
}

/** `body.name` for a validation error of `body.name`, `querystring.limit` for one of the query. */
function validationDetails(fe: FastifyError) {
  return (fe.validation ?? []).map((v) => {
    const missing = (v.params as { missingProperty?: string }).missingProperty;
    return {
      path: `${fe.validationContext ?? ''}${v.instancePath.replace(/\//g, '.')}${missing ? `.${missing}` : ''}`.replace(/^\./, ''),
      message: v.message ?? 'invalid',
    };
  });
}

/**
 * The one mapping from errors to answers, for the API, the ops app and the
 * web pages alike: domain errors (services/errors.ts) to their status with
 * `{error, message, details}`, validation to 400 with the fields, other
 * client errors to their 4xx, anything else to 500 without internals.
 */
export function errorAnswer(err: FastifyError | DomainError): ErrorAnswer {
  if (err instanceof DomainError) {
    return { status: err.statusCode, body: { error: err.error, message: err.message, ...(err.details ? { details: err.details } : {}), ...(err.extra ?? {}) }, unexpected: false };
  }
  const fe = err as FastifyError;
  if (fe.validation) return { status: 400, body: { error: 'BadRequest', message: fe.message, details: validationDetails(fe) }, unexpected: false };
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return { status: fe.statusCode, body: { error: fe.code ?? 'BadRequest', message: fe.message }, unexpected: false };
  return { status: 500, body: { error: 'InternalServerError', message: 'internal error; see the server log' }, unexpected: true };
}

/** The JSON error handler of the API and the ops app. */
export function jsonErrorHandler(err: FastifyError | DomainError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const a = errorAnswer(err);
  if (a.unexpected) req.log.error({ err }, 'unhandled error');
  return reply.status(a.status).send(a.body);
}

/** What an unknown path answers (API and ops app). */
export function notFoundHandler(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.status(404).send({ error: 'NotFound', message: `no route ${req.method} ${req.url.split('?')[0]}` });
}
