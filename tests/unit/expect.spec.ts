import { describe, it, expect } from 'vitest';
import { evaluateExpect, ExpectError, parseExpect } from '../../services/plans/expect.js';

describe('parseExpect', () => {
  it.each([
    ['>= 1000', '>=', 1000],
    ['>=1000', '>=', 1000],
    ['== 0', '==', 0],
    ['!= 0', '!=', 0],
    ['< 5', '<', 5],
    ['<= -2', '<=', -2],
    ['> 0.5', '>', 0.5],
    ['5', '==', 5],
  ] as const)('%j → %s %d', (text, op, value) => {
    expect(parseExpect(text)).toEqual({ op, value, text });
  });

  it('treats a bare number as == that number', () => {
    expect(parseExpect(5)).toEqual({ op: '==', value: 5, text: '5' });
  });

  it('reads quoted and unquoted text for == and !=', () => {
    expect(parseExpect("== 'abc'")).toEqual({ op: '==', value: 'abc', text: "== 'abc'" });
    expect(parseExpect('== abc')).toEqual({ op: '==', value: 'abc', text: '== abc' });
    expect(parseExpect('!= "x y"')).toEqual({ op: '!=', value: 'x y', text: '!= "x y"' });
    expect(parseExpect("== '5'")).toEqual({ op: '==', value: '5', text: "== '5'" });
  });

  it('refuses ordering comparisons on text, naming what is allowed', () => {
    expect(() => parseExpect('>= abc')).toThrow(ExpectError);
    expect(() => parseExpect('>= abc')).toThrow(/text can only be compared with == or !=; use a comparison like ">= 1000"/);
    expect(() => parseExpect("< 'a'")).toThrow(/text can only be compared with == or !=/);
  });

  it.each(['', 'abc', '= 5', '<> 5', '=> 5', '>=', '== '])('rejects %j', (text) => {
    expect(() => parseExpect(text)).toThrow(ExpectError);
  });

  it('rejects non-finite numbers', () => {
    expect(() => parseExpect(Number.NaN)).toThrow(ExpectError);
  });
});

describe('evaluateExpect', () => {
  it('compares numerically when both sides are numbers, also from text output', () => {
    expect(evaluateExpect(parseExpect('>= 1000'), '50000')).toBe(true);
    expect(evaluateExpect(parseExpect('>= 1000'), 999)).toBe(false);
    // As text "10" < "9"; numerically it is not.
    expect(evaluateExpect(parseExpect('> 9'), '10')).toBe(true);
    expect(evaluateExpect(parseExpect('== 5'), ' 5.0 ')).toBe(true);
    expect(evaluateExpect(parseExpect('!= 0'), '0')).toBe(false);
    expect(evaluateExpect(parseExpect('< 0.5'), 0.25)).toBe(true);
  });

  it('compares text exactly', () => {
    expect(evaluateExpect(parseExpect("== 'abc'"), 'abc')).toBe(true);
    expect(evaluateExpect(parseExpect("== 'abc'"), 'ABC')).toBe(false);
    expect(evaluateExpect(parseExpect('!= abc'), 'abd')).toBe(true);
    expect(evaluateExpect(parseExpect("== '5'"), 5)).toBe(true);
  });

  it('never passes on null, not even for !=', () => {
    expect(evaluateExpect(parseExpect('!= 0'), null)).toBe(false);
    expect(evaluateExpect(parseExpect("!= 'x'"), null)).toBe(false);
  });

  it('fails a numeric expectation on non-numeric output for every operator', () => {
    expect(evaluateExpect(parseExpect('!= 0'), 'ERROR')).toBe(false);
    expect(evaluateExpect(parseExpect('>= 0'), '')).toBe(false);
  });
});
