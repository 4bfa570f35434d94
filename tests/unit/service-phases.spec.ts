import { describe, expect, it } from 'vitest';
import { completePhases, type Phase } from '../../workers/engine/phases.js';
import { concludeRun, newOutcome } from '../../workers/engine/run-outcome.js';

const at = new Date('2026-12-07T10:00:00Z');
const phase = (name: Phase['name'], status: Phase['status'] = 'ok'): Phase => ({ name, startedAt: at.toISOString(), durationMs: 10, status });

describe('the services phase (application groups)', () => {
  it('is absent from the timeline of a run without services, and in its place when a run had one', () => {
    const plain = completePhases([phase('fetch'), phase('provision'), phase('restore'), phase('verify'), phase('teardown')], at);
    expect(plain.map((p) => p.name)).toEqual(['fetch', 'provision', 'restore', 'verify', 'teardown']);
    const group = completePhases([phase('fetch'), phase('provision'), phase('restore'), phase('verify'), phase('services', 'running')], at, 'lost');
    expect(group.map((p) => [p.name, p.status])).toEqual([
      ['fetch', 'ok'], ['provision', 'ok'], ['restore', 'ok'], ['verify', 'ok'], ['services', 'interrupted'], ['teardown', 'skipped'],
    ]);
  });

  it('with services the measured RTO ends when the last service answered healthy; a group that never did has none', () => {
    const plan = { targets: { rtoSeconds: 60, rpoSeconds: 86_400 }, checks: [], services: [{}] };
    const o = newOutcome(at.getTime(), 1_000);
    o.restored = true;
    o.verifyEnd = 21_000;
    o.servicesEnd = 91_000;
    const healthy = concludeRun(o, plan, at);
    expect(healthy.rto.measuredSeconds).toBe(90);
    expect(healthy.findings.find((f) => f.code === 'RTO_EXCEEDED')?.message).toBe('restore until the services answered healthy took 90s, RTO is 60s');
    // without services the same outcome is measured to the end of verify
    expect(concludeRun(o, { ...plan, services: undefined }, at).rto.measuredSeconds).toBe(20);
    o.servicesEnd = null;
    expect(concludeRun(o, plan, at).rto).toMatchObject({ measuredSeconds: null, met: null });
  });
});
