import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { SandboxError, type Sandbox } from '../../sandbox/sandbox.js';
import type { DbEndpoint } from '../driver.js';
import { sessionRows } from './session.js';

/**
 * The restored database as an application group's services reach it
 * (decisions/021): the server listens on the run's internal network, and
 * only this role may log in over it (the boot script's hba file), with a
 * password made for this run. The role reads everything and writes nothing.
 * The password never leaves the worker's memory except as the services' env:
 * the server is told a SCRAM verifier, never the password.
 */
export const ENDPOINT_ROLE = 'ernstfall_app';
export const ENDPOINT_PORT = 5432;

/** PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802/7677), made on the worker. */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * Creates (or takes over: a dump may name it) the role with a fresh password.
 * The statement is sent over the worker's database session (stdin of a relay
 * exec), never as argv; it holds the verifier, which only the server can use.
 */
export async function openEndpoint(sandbox: Sandbox, database: string, socketDir: string): Promise<DbEndpoint> {
  const password = randomBytes(24).toString('hex');
  const verifier = scramVerifier(password);
  if (!/^[A-Za-z0-9+/=:$-]+$/.test(verifier)) throw new Error('unexpected SCRAM verifier');
  const sql = `do $ef$ begin
      if not exists (select 1 from pg_roles where rolname = '${ENDPOINT_ROLE}') then create role ${ENDPOINT_ROLE}; end if;
    end $ef$;
    alter role ${ENDPOINT_ROLE} with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls connection limit 64 password '${verifier}';
    alter role ${ENDPOINT_ROLE} set default_transaction_read_only = on;
    grant pg_read_all_data to ${ENDPOINT_ROLE};`;
  const r = await sessionRows(sandbox, 'postgres', socketDir, sql, { readOnly: false, statementTimeoutMs: 60_000 });
  if (!r.ok) throw new SandboxError(`could not create the service role in the sandbox: ${r.error.slice(0, 200)}`);
  return { port: ENDPOINT_PORT, user: ENDPOINT_ROLE, password, database };
}
