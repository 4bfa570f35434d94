/**
 * What the names in a WAL archive and a base backup's label say, without
 * PostgreSQL: which segment replay starts with, which timelines it follows,
 * and whether a segment is missing on the way (decisions/020). Everything
 * read here is backup data: parsed by fixed patterns, never interpreted.
 */

/** A WAL segment's name: timeline, then the segment number as two 8-digit hex halves. */
export const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
export const HISTORY = /^([0-9A-F]{8})\.history$/;
/** A backup history file: the start segment, the start offset, `.backup` (START/STOP TIME inside). */
export const BACKUP_HISTORY = /^([0-9A-F]{24})\.([0-9A-F]{8})\.backup$/;

/** Names restore_command may hand to PostgreSQL: segments, timeline histories, backup histories. */
export function isWalName(name: string): boolean {
  return SEGMENT.test(name) || HISTORY.test(name) || BACKUP_HISTORY.test(name);
}

export interface BackupLabel {
  startLsn?: string;
  startSegment?: string;
  startTimeline?: number;
  /** As written (with the server's zone abbreviation), and as a moment when the zone is known. */
  startTimeText?: string;
  startTime?: Date;
}

/** Offsets of the zone abbreviations a German or an international server writes into a label, in minutes. */
const ZONES: Record<string, number> = { UTC: 0, GMT: 0, Z: 0, CET: 60, MEZ: 60, CEST: 120, MESZ: 120, WET: 0, WEST: 60, EET: 120, EEST: 180 };

/** `2026-12-07 13:42:43 UTC` (or `+01`, `+0100`, `CET`) as a moment; undefined when the zone is unknown. */
export function labelTime(text: string): Date | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.\d+)? ?([A-Za-z]{1,5}|[+-]\d{2}(?::?\d{2})?)$/.exec(text.trim());
  if (!m) return undefined;
  let offset: number | undefined;
  const z = m[3]!;
  if (/^[+-]/.test(z)) {
    const digits = z.slice(1).replace(':', '');
    offset = (z[0] === '-' ? -1 : 1) * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0));
  } else offset = ZONES[z.toUpperCase()];
  if (offset === undefined) return undefined;
  const t = Date.parse(`${m[1]}T${m[2]}Z`);
  return Number.isNaN(t) ? undefined : new Date(t - offset * 60_000);
}

/** The fields of a `backup_label` (or a backup history file) that matter here. */
export function parseBackupLabel(text: string): BackupLabel & { stopTime?: Date; stopTimeText?: string } {
  const out: BackupLabel & { stopTime?: Date; stopTimeText?: string } = {};
  for (const line of text.split('\n').slice(0, 50)) {
    let m = /^START WAL LOCATION: ([0-9A-F]{1,8}\/[0-9A-F]{1,8}) \(file ([0-9A-F]{24})\)$/.exec(line);
    if (m) {
      out.startLsn = m[1];
      out.startSegment = m[2];
      continue;
    }
    m = /^START TIMELINE: (\d{1,10})$/.exec(line);
    if (m) out.startTimeline = Number(m[1]);
    m = /^(START|STOP) TIME: (.{1,60})$/.exec(line);
    if (m) {
      const t = labelTime(m[2]!);
      if (m[1] === 'START') {
        out.startTimeText = m[2];
        if (t) out.startTime = t;
      } else {
        out.stopTimeText = m[2];
        if (t) out.stopTime = t;
      }
    }
  }
  if (out.startTimeline === undefined && out.startSegment) out.startTimeline = parseInt(out.startSegment.slice(0, 8), 16);
  return out;
}

/** An LSN (`0/3000060`) as a number of bytes. */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/** A segment's sequence number, given the segment size. */
export function segmentNumber(name: string, segBytes: number): bigint | undefined {
  const m = SEGMENT.exec(name);
  if (!m) return undefined;
  const perId = 0x100000000n / BigInt(segBytes);
  return BigInt(`0x${m[2]}`) * perId + BigInt(`0x${m[3]}`);
}

export function segmentName(tli: number, n: bigint, segBytes: number): string {
  const perId = 0x100000000n / BigInt(segBytes);
  const hex = (v: bigint | number) => v.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(tli)}${hex(n / perId)}${hex(n % perId)}`;
}

/** A timeline history file: the parent timelines and where each was left (`1\t0/3000000\treason`). */
export function parseHistory(text: string): { parent: number; switchLsn: string }[] {
  const out: { parent: number; switchLsn: string }[] = [];
  for (const line of text.split('\n').slice(0, 10_000)) {
    const m = /^\s*(\d{1,10})\s+([0-9A-F]{1,8}\/[0-9A-F]{1,8})\b/.exec(line);
    if (m) out.push({ parent: Number(m[1]), switchLsn: m[2]! });
  }
  return out;
}

export interface ChainInput {
  /** The names in the archive that restore_command may hand out. */
  names: string[];
  /** Timeline history files' contents by timeline. */
  histories: Map<number, string>;
  segBytes: number;
  startSegment: string;
  startTimeline: number;
}

export interface Chain {
  /** The timelines replay follows, oldest first (PostgreSQL follows the newest history, as with recovery_target_timeline latest). */
  timelines: number[];
  /** The newest archived segment on that path (its name). */
  newest?: string;
  /** The first segment missing between the start and the newest. */
  missing?: string;
  /** The newest timeline's history does not contain the base backup's timeline. */
  foreignTimeline?: number;
}

/**
 * The path of timelines replay takes and the first gap on it. PostgreSQL (recovery_target_timeline
 * latest) heads for the newest timeline with a history file; a timeline branches off its parent at
 * the switch LSN, so each segment number is looked for on the timeline that is current there.
 */
export function walChain(input: ChainInput): Chain {
  const { segBytes } = input;
  const newestTli = Math.max(input.startTimeline, ...[...input.histories.keys()]);
  let path = [input.startTimeline];
  const switches = new Map<number, bigint>(); // timeline -> first segment number that belongs to it
  let foreignTimeline: number | undefined;
  if (newestTli !== input.startTimeline) {
    const parents = parseHistory(input.histories.get(newestTli) ?? '');
    const idx = parents.findIndex((p) => p.parent === input.startTimeline);
    if (idx < 0) foreignTimeline = newestTli;
    else {
      path = [...parents.slice(idx).map((p) => p.parent), newestTli];
      parents.slice(idx).forEach((p, i) => switches.set(path[i + 1]!, lsnValue(p.switchLsn) / BigInt(segBytes)));
    }
  }
  const have = new Set(input.names.filter((n) => SEGMENT.test(n)));
  const start = segmentNumber(input.startSegment, segBytes)!;
  const tliAt = (n: bigint) => {
    let tli = path[0]!;
    for (const t of path.slice(1)) if (n >= switches.get(t)!) tli = t;
    return tli;
  };
  let newest: bigint | undefined;
  for (const name of have) {
    const n = segmentNumber(name, segBytes)!;
    const tli = parseInt(name.slice(0, 8), 16);
    // a parent's segments after its switch (an old primary that wrote on) are not on the path
    const current = n >= start && (tli === tliAt(n) || (path.includes(tli) && n === switches.get(tliAt(n))));
    if (current && (newest === undefined || n > newest)) newest = n;
  }
  let missing: string | undefined;
  if (newest !== undefined) {
    for (let n = start; n <= newest; n++) {
      const tli = tliAt(n);
      // the segment a timeline switched in exists on the new timeline; the parent's copy would do as well
      const parent = path[path.indexOf(tli) - 1];
      const found = have.has(segmentName(tli, n, segBytes)) || (parent !== undefined && have.has(segmentName(parent, n, segBytes)) && n === switches.get(tli));
      if (!found) {
        missing = segmentName(tli, n, segBytes);
        break;
      }
    }
  }
  return { timelines: path, ...(newest !== undefined && { newest: segmentName(tliAt(newest), newest, segBytes) }), ...(missing && { missing }), ...(foreignTimeline !== undefined && { foreignTimeline }) };
}
