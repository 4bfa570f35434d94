import { describe, expect, it } from 'vitest';
import { conclude, planTiers, restartable, tierSeconds, tierState, type Tier, type TierRun } from '../../services/systems/restart-order.js';
import type { RestorePlan } from '../../services/plans/plan.types.js';

const sandboxPlan = (id: string, system: string, services = true): { id: string; definition: RestorePlan } => ({
  id,
  definition: {
    id, title: id, system: { id: system, name: system }, targets: { rtoSeconds: 3600, rpoSeconds: 86_400 }, cadence: {} as never, checks: [], controls: [],
    source: { type: 'file', path: `${id}.dump` } as never, restore: { driver: 'postgres' } as never, sandbox: {} as never,
    ...(services && { services: [{ name: 'web', image: 'app:1', probe: { kind: 'tcp', port: 80, deadlineSeconds: 60 } }] as never }),
  },
});
const run = (over: Partial<TierRun>): TierRun => ({
  systemId: 's', systemName: 'S', planId: 'p', runId: 'r', status: 'finished', verdict: 'passed', serviceRtoSeconds: 10, startedAt: null, finishedAt: null, recordHash: null, ...over,
});
const tier = (n: number, runs: TierRun[]): Tier => ({ tier: n, runs, state: tierState(runs), seconds: tierState(runs) === 'passed' ? tierSeconds(runs) : null });

describe('planTiers', () => {
  it('orders the systems by tier, runs every restartable plan of a system, and lists the systems without one with the reason', () => {
    const systems = [
      { id: 'portal', name: 'Bürgerportal', tier: 2 },
      { id: 'ewo', name: 'Einwohnermeldewesen', tier: 1 },
      { id: 'ad', name: 'Verzeichnis', tier: 1 },
      { id: 'post', name: 'Poststelle', tier: 3 },
    ];
    const plans = [sandboxPlan('ewo-db', 'ewo'), sandboxPlan('ewo-files', 'ewo'), sandboxPlan('portal-app', 'portal'), sandboxPlan('ad-dump', 'ad', false)];
    const { tiers, notTested } = planTiers(systems, plans);
    expect(tiers.map((t) => [t.tier, t.runs.map((r) => r.planId)])).toEqual([[1, ['ewo-db', 'ewo-files']], [2, ['portal-app']]]);
    expect(tiers.every((t) => t.state === 'waiting' && t.runs.every((r) => r.runId === null && r.status === 'waiting'))).toBe(true);
    expect(notTested).toEqual([
      { systemId: 'ad', systemName: 'Verzeichnis', tier: 1, reason: expect.stringContaining('ad-dump') },
      { systemId: 'post', systemName: 'Poststelle', tier: 3, reason: 'no plan names this system' },
    ]);
  });

  it('a plan of another kind (external, manual) or without services is not restartable', () => {
    expect(restartable(sandboxPlan('a', 's').definition)).toBe(true);
    expect(restartable(sandboxPlan('a', 's', false).definition)).toBe(false);
    expect(restartable({ ...sandboxPlan('a', 's').definition, kind: 'manual' })).toBe(false);
  });
});

describe('tierState and tierSeconds', () => {
  it('a tier runs until every run ended, then takes the worst verdict; its time is the slowest run', () => {
    expect(tierState([run({ status: 'waiting', verdict: null })])).toBe('waiting');
    expect(tierState([run({}), run({ status: 'running', verdict: null })])).toBe('running');
    expect(tierState([run({}), run({ verdict: 'failed' })])).toBe('failed');
    expect(tierState([run({ verdict: 'failed' }), run({ verdict: 'error' })])).toBe('error');
    expect(tierState([run({}), run({ verdict: 'cancelled' })])).toBe('cancelled');
    expect(tierState([run({}), run({})])).toBe('passed');
    expect(tierSeconds([run({ serviceRtoSeconds: 12.5 }), run({ serviceRtoSeconds: 40 })])).toBe(40);
    expect(tierSeconds([run({ serviceRtoSeconds: 12.5 }), run({ serviceRtoSeconds: null })])).toBeNull();
  });
});

describe('conclude', () => {
  const passedTiers = () => [tier(1, [run({ serviceRtoSeconds: 30 }), run({ serviceRtoSeconds: 45 })]), tier(2, [run({ serviceRtoSeconds: 20 })])];

  it('all tiers passed within the RTO: passed, the time is the sum of the tiers\' slowest runs, no finding', () => {
    const c = conclude(passedTiers(), [], 120, false);
    expect(c.verdict).toBe('passed');
    expect(c.findings).toEqual([]);
    expect(c.result).toMatchObject({ measuredSeconds: 65, rto: { targetSeconds: 120, measuredSeconds: 65, met: true }, tiers: [{ tier: 1, seconds: 45 }, { tier: 2, seconds: 20 }] });
  });

  it('over the RTO: failed with RTO_EXCEEDED naming each tier\'s time', () => {
    const c = conclude(passedTiers(), [], 60, false);
    expect(c.verdict).toBe('failed');
    expect(c.findings.map((f) => f.code)).toEqual(['RTO_EXCEEDED']);
    expect(c.findings[0]!.message).toContain('tier 1: 45 s, tier 2: 20 s');
  });

  it('no RTO set: passed, the time measured and not compared', () => {
    expect(conclude(passedTiers(), [], null, false).result.rto).toEqual({ targetSeconds: null, measuredSeconds: 65, met: null });
  });

  it('a tier that failed: failed with TIER_FAILED naming its system; the tiers after it count as not started, no time', () => {
    const tiers = [tier(1, [run({ systemName: 'Einwohnermeldewesen', runId: 'r1', verdict: 'failed', serviceRtoSeconds: null })]), { ...tier(2, [run({ status: 'waiting', verdict: null })]), state: 'not started' as const }];
    const c = conclude(tiers, [], 3600, false);
    expect(c.verdict).toBe('failed');
    expect(c.findings.map((f) => f.code)).toEqual(['TIER_FAILED']);
    expect(c.findings[0]!.message).toContain('Einwohnermeldewesen');
    expect(c.result.measuredSeconds).toBeNull();
    expect(c.result.rto.met).toBeNull();
  });

  it('a tier that could not be verified: error (never passed), TIER_NOT_VERIFIED', () => {
    const c = conclude([tier(1, [run({ verdict: 'error' })])], [], 3600, false);
    expect(c.verdict).toBe('error');
    expect(c.findings.map((f) => f.code)).toEqual(['TIER_NOT_VERIFIED']);
  });

  it('systems without a restartable plan: named in a warning, the verdict stands on the systems restarted', () => {
    const c = conclude(passedTiers(), [{ systemId: 'ad', systemName: 'Verzeichnis', tier: 1, reason: 'no plan names this system' }], 120, false);
    expect(c.verdict).toBe('passed');
    expect(c.findings.map((f) => [f.code, f.severity])).toEqual([['SYSTEMS_NOT_TESTED', 'warning']]);
    expect(c.findings[0]!.message).toContain('Verzeichnis');
  });

  it('cancelled by a person: cancelled, a cancelled tier is no TIER_NOT_VERIFIED', () => {
    const c = conclude([tier(1, [run({ verdict: 'cancelled' })])], [], 3600, true);
    expect(c.verdict).toBe('cancelled');
    expect(c.findings).toEqual([]);
  });
});
