/**
 * Polls `fn` until it returns a value, or fails naming what it waited for. An error thrown by `fn` ends the
 * wait at once (a test that sees a run end the wrong way must not sit out the timeout): where an error only
 * means "not yet", e.g. a connection refused while a service is down or starting, `fn` says so itself
 * (`.catch(() => undefined)` on that call).
 */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
