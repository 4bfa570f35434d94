import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Secrets are removed by configuration, not by discipline: any field with one
 * of these names is censored wherever it appears in a log object.
 */
export const REDACT_PATHS = [
  'password', '*.password', 'token', '*.token', 'secret', '*.secret',
  // URLs with credentials by name (a request's url is not secret and stays readable)
  'databaseUrl', '*.databaseUrl', 'ownerUrl', '*.ownerUrl', 'redisUrl', '*.redisUrl', 'smtpUrl', '*.smtpUrl', 'equals', '*.equals', '*.*.equals',
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization',
  'config.database', 'config.auth', 'config.redis',
];

export function createLogger(level = process.env.LOG_LEVEL ?? 'info', name = 'ernstfall', destination?: DestinationStream): Logger {
  const options = {
    name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
