import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter } from 'yaml';
import { DurationError, parseDuration } from '../util/duration.js';
import type { PlanIssue } from './plan.types.js';

/**
 * Walks a parsed YAML document with a path and a 1-based line for every
 * value, so the plan validator can report each problem where it is written.
 * Unknown and duplicate keys are reported when a mapping is opened.
 */

export interface Ctx {
  doc: Document;
  lc: LineCounter;
  issues: PlanIssue[];
}

export const byLine = (issues: PlanIssue[]): PlanIssue[] => issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
export const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

export function lineOf(ctx: Ctx, node: unknown, fallback: number): number {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? ctx.lc.linePos(range[0]).line : fallback;
}

export function resolve(ctx: Ctx, node: unknown): unknown {
  return isAlias(node) ? node.resolve(ctx.doc) : node;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

export function suggest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of allowed) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : distance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

interface Entry {
  node: unknown;
  line: number;
}

/** A mapping whose keys were checked against an allow-list; typed getters report into ctx. */
export class Obj {
  constructor(
    readonly ctx: Ctx,
    readonly path: string,
    readonly line: number,
    readonly entries: Map<string, Entry>,
  ) {}

  has(k: string): boolean {
    return this.entries.has(k);
  }
  issue(k: string, message: string, line?: number): void {
    this.ctx.issues.push({ path: join(this.path, k), line: line ?? this.entries.get(k)?.line ?? this.line, message });
  }

  /** The scalar value, or undefined (missing: reported when required; wrong type: always reported). */
  private scalar(k: string, required: boolean): { value: unknown; text: string; line: number } | undefined {
    const e = this.entries.get(k);
    if (!e) {
      if (required) this.issue(k, `missing required key "${k}"`);
      return undefined;
    }
    const node = resolve(this.ctx, e.node);
    if (!isScalar(node)) {
      this.issue(k, `"${k}" must be a single value, not a ${isMap(node) ? 'mapping' : isSeq(node) ? 'list' : 'missing alias'}`);
      return undefined;
    }
    if (node.value === null) {
      this.issue(k, `"${k}" has no value`);
      return undefined;
    }
    // Keep what was written for plain scalars YAML typed as numbers (a canary "0123" must not become 123).
    const src = node.srcToken && 'source' in node.srcToken ? node.srcToken.source : undefined;
    const text = typeof node.value === 'string' ? node.value : node.type === 'PLAIN' && src ? src : String(node.value);
    return { value: node.value, text, line: e.line };
  }

  str(k: string, required = false, re?: RegExp, reMsg?: string): string | undefined {
    const s = this.scalar(k, required);
    if (!s) return undefined;
    if (s.text.trim() === '') return void this.issue(k, `"${k}" must not be empty`);
    if (re && !re.test(s.text)) return void this.issue(k, reMsg ?? `"${k}" has an invalid value`);
    return s.text;
  }
  num(k: string, opts: { int?: boolean; min?: number; max?: number; gt?: number } = {}): number | undefined {
    const s = this.scalar(k, false);
    if (!s) return undefined;
    const v = s.value;
    if (
      typeof v !== 'number' ||
      !Number.isFinite(v) ||
      (opts.int && !Number.isInteger(v)) ||
      (opts.min !== undefined && v < opts.min) ||
      (opts.max !== undefined && v > opts.max) ||
      (opts.gt !== undefined && v <= opts.gt)
    ) {
      const range = [['>=', opts.min], ['>', opts.gt], ['<=', opts.max]].filter((r) => r[1] !== undefined).map((r) => r.join(' '));
      return void this.issue(k, `"${k}" must be ${opts.int ? 'a whole number' : 'a number'} ${range.join(' and ')}`.trim());
    }
    return v;
  }
  bool(k: string): boolean | undefined {
    const s = this.scalar(k, false);
    if (!s) return undefined;
    if (typeof s.value !== 'boolean') return void this.issue(k, `"${k}" must be true or false`);
    return s.value;
  }
  enumOf<T extends string>(k: string, allowed: readonly T[], what: string, required = false): T | undefined {
    const s = this.str(k, required);
    if (s === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(s)) {
      return void this.issue(k, `${what} "${s}" is not supported${allowed.length > 1 ? '' : ' yet'}; supported: ${allowed.join(', ')}`);
    }
    return s as T;
  }
  duration(k: string, required = false): { seconds: number; text: string } | undefined {
    const s = this.scalar(k, required);
    if (!s) return undefined;
    try {
      return parseDuration(s.text);
    } catch (err) {
      if (err instanceof DurationError) return void this.issue(k, err.message);
      throw err;
    }
  }
  timezone(k: string): string | undefined {
    const tz = this.str(k);
    if (tz === undefined) return undefined;
    try {
      new Intl.DateTimeFormat(undefined, { timeZone: tz });
      return tz;
    } catch {
      return void this.issue(k, `unknown time zone "${tz}"; use an IANA name like Europe/Berlin`);
    }
  }
  obj(k: string, allowed: readonly string[], required = false): Obj | undefined {
    const e = this.entries.get(k);
    if (!e) {
      if (required) this.issue(k, `missing required key "${k}"`);
      return undefined;
    }
    return openMap(this.ctx, e.node, join(this.path, k), e.line, allowed);
  }
  list(k: string): { node: unknown; path: string; line: number }[] | undefined {
    const e = this.entries.get(k);
    if (!e) return undefined;
    const node = resolve(this.ctx, e.node);
    if (!isSeq(node)) return void this.issue(k, `"${k}" must be a list`);
    return node.items.map((item, i) => ({ node: item, path: `${join(this.path, k)}[${i}]`, line: lineOf(this.ctx, item, e.line) }));
  }
}

export function keysOf(ctx: Ctx, node: unknown): string[] {
  const n = resolve(ctx, node);
  return isMap(n) ? n.items.map((p) => String(isScalar(p.key) ? p.key.value : '')) : [];
}

export function openMap(ctx: Ctx, raw: unknown, path: string, line: number, allowed: readonly string[], shapeHint?: string): Obj | undefined {
  const node = resolve(ctx, raw);
  if (!isMap(node)) {
    ctx.issues.push({ path, line: lineOf(ctx, node, line), message: shapeHint ?? `"${path || 'plan'}" must be a mapping (key: value)` });
    return undefined;
  }
  const entries = new Map<string, Entry>();
  for (const pair of node.items) {
    const keyLine = lineOf(ctx, pair.key, line);
    if (!isScalar(pair.key) || pair.key.value === null || typeof pair.key.value === 'object') {
      ctx.issues.push({ path, line: keyLine, message: 'keys must be plain names' });
      continue;
    }
    const key = String(pair.key.value);
    const keyPath = join(path, key);
    if (entries.has(key)) {
      ctx.issues.push({ path: keyPath, line: keyLine, message: `duplicate key "${key}" (first on line ${entries.get(key)!.line})` });
    } else if (!allowed.includes(key)) {
      const s = suggest(key, allowed);
      const message = s ? `unknown key "${key}" (did you mean "${s}"?)` : `unknown key "${key}"; allowed: ${allowed.join(', ')}`;
      ctx.issues.push({ path: keyPath, line: keyLine, message });
    } else {
      entries.set(key, { node: pair.value, line: keyLine });
    }
  }
  return new Obj(ctx, path, lineOf(ctx, node, line), entries);
}
