/** Domain errors; one Fastify handler maps them to status codes and `{error, message, details}`. */
export class DomainError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    message: string,
    readonly details?: unknown[],
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = error;
  }
}

export class NotFound extends DomainError {
  constructor(what: string) {
    super(404, 'NotFound', `${what} not found`);
  }
}

export class Invalid extends DomainError {
  constructor(message: string, details?: unknown[]) {
    super(400, 'BadRequest', message, details);
  }
}

export class Conflict extends DomainError {
  constructor(message: string, extra?: Record<string, unknown>) {
    super(409, 'Conflict', message, undefined, extra);
  }
}

export class Unauthorized extends DomainError {
  constructor(message = 'missing or invalid bearer token') {
    super(401, 'Unauthorized', message);
  }
}

export class Forbidden extends DomainError {
  constructor(message = 'not allowed') {
    super(403, 'Forbidden', message);
  }
}
