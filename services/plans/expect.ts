import type { ExpectOp, Expectation } from './plan.types.js';

/**
 * Expectations of SQL checks: `">= 1000"`, `"== 0"`, `"!= 0"`, `"< 5"`,
 * `"== 'abc'"` / `"== abc"`, or a bare number meaning `== <number>`.
 */

export class ExpectError extends Error {
  override name = 'ExpectError';
}

const ALLOWED =
  'use a comparison like ">= 1000", "== 0", "!= 0", "< 5", "> 0.5", a bare number (means ==), or "== \'text\'" / "!= \'text\'" for text';

const EXPR_RE = /^(==|!=|>=|<=|>|<)?\s*(.*)$/s;
const NUMBER_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function toNumber(text: string): number | undefined {
  const t = text.trim();
  if (!NUMBER_RE.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

export function parseExpect(input: string | number): Expectation {
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw new ExpectError(`expect must be a finite number or a comparison; ${ALLOWED}`);
    return { op: '==', value: input, text: String(input) };
  }
  if (typeof input !== 'string') throw new ExpectError(`expect must be a string or a number; ${ALLOWED}`);

  const text = input.trim();
  if (text === '') throw new ExpectError(`expect is empty; ${ALLOWED}`);
  // "=" and "<>" are common SQL habits; name them instead of treating "= 5" as text.
  if (/^(=(?!=)|<>|=>|=<)/.test(text)) {
    throw new ExpectError(`"${text}" uses an unknown operator; ${ALLOWED}`);
  }
  const m = EXPR_RE.exec(text)!;
  const op = m[1] as ExpectOp | undefined;
  const rawValue = m[2]!.trim();

  const quoted = /^'(.*)'$/s.exec(rawValue) ?? /^"(.*)"$/s.exec(rawValue);
  if (quoted) {
    if (op !== '==' && op !== '!=') {
      throw new ExpectError(`"${text}": text can only be compared with == or !=; ${ALLOWED}`);
    }
    return { op, value: quoted[1]!, text };
  }
  if (rawValue === '') throw new ExpectError(`"${text}" has no value to compare with; ${ALLOWED}`);

  const num = toNumber(rawValue);
  if (num !== undefined) return { op: op ?? '==', value: num, text };

  if (op === undefined) {
    throw new ExpectError(`"${text}" has no comparison operator; ${ALLOWED}`);
  }
  if (op !== '==' && op !== '!=') {
    throw new ExpectError(`"${text}": "${rawValue}" is not a number, and text can only be compared with == or !=; ${ALLOWED}`);
  }
  return { op, value: rawValue, text };
}

function compare(op: ExpectOp, a: number | string, b: number | string): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '>=':
      return a >= b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '<':
      return a < b;
  }
}

/**
 * Whether `actual` (as returned by the check's query) satisfies `exp`.
 * A missing value (null) never satisfies, not even `!=`: a check that could
 * not read a value has not proven anything.
 */
export function evaluateExpect(exp: Expectation, actual: string | number | null): boolean {
  if (actual === null || actual === undefined) return false;
  if (typeof exp.value === 'number') {
    const n = typeof actual === 'number' ? actual : toNumber(actual);
    // A numeric expectation met by non-numeric output (an error text, "t") is
    // a broken check, so it fails for every operator including !=.
    if (n === undefined || !Number.isFinite(n)) return false;
    return compare(exp.op, n, exp.value);
  }
  return compare(exp.op, typeof actual === 'number' ? String(actual) : actual, exp.value);
}
