import { describe, expect, it } from 'vitest';
import { decideVerdict, measureTargets } from '../../services/runs/verdict.js';
import { finding } from '../../services/findings.js';

const ok = { status: 'passed' as const };

describe('decideVerdict', () => {
  it('passes only when restored, every check passed and no finding fails', () => {
    expect(decideVerdict({ findings: [], checks: [ok, ok], restored: true })).toBe('passed');
    expect(decideVerdict({ findings: [finding('BACKUP_NOT_NEW', 'x')], checks: [ok], restored: true })).toBe('passed');
  });
  it('is error when the test could not verify, whatever else happened', () => {
    expect(decideVerdict({ findings: [finding('VERSION_UNSUPPORTED', 'x'), finding('RTO_EXCEEDED', 'y')], checks: [], restored: false })).toBe('error');
    expect(decideVerdict({ findings: [finding('SOURCE_NOT_FOUND', 'x')], checks: [{ status: 'skipped' }], restored: false })).toBe('error');
  });
  it('is failed for a failing finding or a check that did not pass', () => {
    expect(decideVerdict({ findings: [finding('ARCHIVE_TRUNCATED', 'x')], checks: [{ status: 'skipped' }], restored: false })).toBe('failed');
    expect(decideVerdict({ findings: [], checks: [ok, { status: 'failed' }], restored: true })).toBe('failed');
    expect(decideVerdict({ findings: [], checks: [{ status: 'error' }], restored: true })).toBe('failed');
    expect(decideVerdict({ findings: [finding('RPO_EXCEEDED', 'x')], checks: [ok], restored: true })).toBe('failed');
  });
  it('never passes a skipped check or an unverified restore', () => {
    expect(decideVerdict({ findings: [], checks: [ok, { status: 'skipped' }], restored: true })).toBe('error');
    expect(decideVerdict({ findings: [], checks: [], restored: false })).toBe('error');
  });
  it('is cancelled when a person stopped it', () => {
    expect(decideVerdict({ findings: [finding('RESTORE_ERROR', 'x')], checks: [], restored: false, cancelled: true })).toBe('cancelled');
  });
});

describe('measureTargets', () => {
  it('compares measured values and gives null when nothing was measured', () => {
    expect(measureTargets({ rtoSeconds: 60, rpoSeconds: 3600 }, 61, 3600)).toEqual({
      rto: { targetSeconds: 60, measuredSeconds: 61, met: false },
      rpo: { targetSeconds: 3600, backupAgeSeconds: 3600, met: true },
    });
    expect(measureTargets({ rtoSeconds: 60, rpoSeconds: 60 }, null, null)).toEqual({
      rto: { targetSeconds: 60, measuredSeconds: null, met: null },
      rpo: { targetSeconds: 60, backupAgeSeconds: null, met: null },
    });
  });
});
