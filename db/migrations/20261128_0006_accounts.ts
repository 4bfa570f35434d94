import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // Re-enrolment of a second factor from a signed-in session: the new secret waits here (sealed like
  // totp_secret_enc) until the user confirms it with a code; until then the old one keeps working.
  await db.schema.alterTable('users').addColumn('totp_pending_enc', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('totp_pending_enc').execute();
}
