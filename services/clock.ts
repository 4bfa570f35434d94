/**
 * The one clock for business time.
 *
 * Everything a person, an auditor or a test reasons about — when a run was
 * queued, started and finished, when a review, alert, reminder, session, token,
 * invitation or grant begins and ends, what a report's period and "created at"
 * say — is read from a `Clock` that the container creates once and passes in.
 * Tests pass a fixed or stepping clock; production passes `systemClock`.
 *
 * The database's `now()` is used only for leases between processes, where both
 * sides of every comparison are the database's time: job and notification locks,
 * run heartbeats, scheduler leader ticks and the outcome hand-over. Durations
 * (how long a phase took, retry back-off, caches) use the monotonic
 * `performance.now()`, never the wall clock.
 *
 * Enforced by eslint (no `new Date()` or `Date.now()` in services/, workers/,
 * db/ outside this file) and by migration 0017, which removed the database's
 * `default now()` from business columns, so an insert that forgets the clock
 * fails instead of silently taking the database's time.
 */
export type Clock = () => Date;

/** The wall clock of this host. Only the composition roots (main, CLIs) pass it in. */
// eslint-disable-next-line no-restricted-syntax -- the one place that reads the wall clock
export const systemClock: Clock = () => new Date();

/**
 * Times that other systems check against their own clocks — a mail's `Date`
 * header, a webhook signature's timestamp: always the host's wall clock, never
 * a test's fixed one (a receiver would reject a signature from another day).
 */
// eslint-disable-next-line no-restricted-syntax -- see above: the outside world's clock
export const hostClock: Clock = () => new Date();
