import { describe, expect, it } from 'vitest';
import { cleanReason, REASON_MAX } from '../../services/runs/queue-ops.js';

describe('cleanReason: a queue job\'s failure reason fit to show', () => {
  it('one line, at most REASON_MAX characters (cut by characters, not bytes)', () => {
    expect(cleanReason('a\n  b\tc')).toBe('a b c');
    const long = cleanReason('ä'.repeat(1000));
    expect(Array.from(long)).toHaveLength(REASON_MAX);
    expect(long.endsWith('…')).toBe(true);
    expect(cleanReason('😀'.repeat(400)).endsWith('😀…')).toBe(true);
  });

  it('blanks credentials in URLs, tokens and password-like values', () => {
    expect(cleanReason('connect postgres://app:geheim@db:5432/x failed')).toBe('connect postgres://[redacted]@db:5432/x failed');
    expect(cleanReason('redis://:geheim@redis:6379')).toBe('redis://[redacted]@redis:6379');
    expect(cleanReason('token ef_0123456789abcdef and efi_abcdefghijkl')).toBe('token ef_[redacted] and efi_[redacted]');
    expect(cleanReason('Authorization: Bearer abc.def')).toBe('Authorization: Bearer [redacted]');
    expect(cleanReason('password=geheim PASSWORD: "a b" secret=x api_key=y')).toBe('password=[redacted] PASSWORD: [redacted] secret=[redacted] api_key=[redacted]');
    expect(cleanReason('run 1234 failed: no space left on device')).toBe('run 1234 failed: no space left on device');
  });
});
