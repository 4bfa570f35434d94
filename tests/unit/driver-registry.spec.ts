import { describe, expect, it } from 'vitest';
import { DRIVERS, driverFor } from '../../workers/drivers/registry.js';
import { DRIVER_NAMES } from '../../workers/drivers/plan-parts.js';
import { parsePlanText } from '../../services/plans/plan.parser.js';

describe('driver registry', () => {
  it('the plan parser knows exactly the drivers the worker has', () => {
    expect(Object.keys(DRIVERS).sort()).toEqual([...DRIVER_NAMES].sort());
    for (const name of DRIVER_NAMES) expect(driverFor(name)?.name).toBe(name);
  });
  it('an unknown driver is refused at parse time and not found in the worker (no prototype keys)', () => {
    const r = parsePlanText('id: p1\ntitle: T\ntargets: { rto: 1h, rpo: 1d }\nsource: { type: file, path: x }\nrestore: { driver: oracle, database: app }\n');
    expect('issues' in r && r.issues[0]).toMatchObject({ path: 'restore.driver', line: 5 });
    expect(driverFor('oracle')).toBeUndefined();
    expect(driverFor('constructor')).toBeUndefined();
    expect(driverFor('__proto__')).toBeUndefined();
  });
});
