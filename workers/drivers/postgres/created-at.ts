/**
 * A dump header's creation time is local wall time without a zone. Read in
 * the plan's zone (Europe/Berlin by default), a dump written on a host that
 * runs in UTC looks one or two hours older than it is — enough to fail an
 * RPO. The file's modification time (when the dump was finished) tells the
 * readings apart: a reading after it is impossible; of two possible ones,
 * the later is taken when it lies within minutes of the file time (dumps
 * usually take minutes), otherwise the earlier (the older age is the safe
 * side). Either way the run records both readings.
 */
export interface CreatedAtReading {
  createdAt: Date;
  zone: string;
  /** Both readings were possible: the evidence keeps the other one. */
  alternative?: { createdAt: Date; zone: string };
}

const SLACK_MS = 60_000;
const LIKELY_DUMP_MS = 15 * 60_000;

export function pickReading(local: { createdAt: Date; zone: string }, utc: { createdAt: Date; zone: string }, fileTime: Date): CreatedAtReading {
  if (local.createdAt.getTime() === utc.createdAt.getTime()) return local;
  const possible = (r: { createdAt: Date }) => r.createdAt.getTime() <= fileTime.getTime() + SLACK_MS;
  const [a, b] = [possible(local), possible(utc)];
  if (a && !b) return local;
  if (b && !a) return utc;
  if (!a && !b) return local; // neither: the caller falls back to the file time
  const [earlier, later] = local.createdAt < utc.createdAt ? [local, utc] : [utc, local];
  const chosen = fileTime.getTime() - later.createdAt.getTime() <= LIKELY_DUMP_MS ? later : earlier;
  const other = chosen === later ? earlier : later;
  return { ...chosen, alternative: { createdAt: other.createdAt, zone: other.zone } };
}
