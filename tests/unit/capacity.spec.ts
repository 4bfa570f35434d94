import { describe, expect, it } from 'vitest';
import { Capacity } from '../../workers/main.js';

describe('a worker\'s capacity over its pools', () => {
  it('lets at most `size` tests hold a slot; the next waits and gets the slot a finished one gives back', async () => {
    const c = new Capacity(2);
    const a = await c.acquire();
    const b = await c.acquire();
    expect(c.inUse).toBe(2);
    let third = false;
    const waiting = c.acquire().then((release) => { third = true; return release; });
    await new Promise((r) => setTimeout(r, 20));
    expect(third).toBe(false);
    a();
    const r3 = await waiting;
    expect(third).toBe(true);
    expect(c.inUse).toBe(2);
    // releasing twice gives back one slot, not two
    b();
    b();
    r3();
    expect(c.inUse).toBe(0);
  });
});
