import { describe, expect, it } from 'vitest';
import { buildIcs, type IcsPlan } from '../../services/calendar/ics.js';

const plan = (over: Partial<IcsPlan> = {}): IcsPlan => ({
  id: 'ewo', title: 'Einwohnermeldewesen', status: 'ok', nextDueAt: null, lastPassedAt: null, nextScheduledAt: null, hasSchedule: true, paused: null, ...over,
});
const unfold = (ics: string) => ics.replace(/\r\n[ \t]/g, '').split('\r\n');

describe('buildIcs', () => {
  it('writes instants as Europe/Berlin wall time in summer (CEST) and winter (CET), whatever the process zone', () => {
    const at = (iso: string) => unfold(buildIcs({ tenantId: 't', tenantName: 'T', lang: 'de', now: new Date(iso), plans: [plan({ nextScheduledAt: new Date(iso) })] }));
    expect(at('2026-07-01T00:00:00Z')).toContain('DTSTART;TZID=Europe/Berlin:20260701T020000');
    expect(at('2026-07-01T00:00:00Z')).toContain('DTEND;TZID=Europe/Berlin:20260701T023000');
    expect(at('2026-12-31T23:30:00Z')).toContain('DTSTART;TZID=Europe/Berlin:20270101T003000');
    // DTSTAMP stays UTC
    expect(at('2026-07-01T00:00:00Z')).toContain('DTSTAMP:20260701T000000Z');
  });

  it('puts a due date on its Berlin calendar day (23:30 UTC is the next day in Berlin)', () => {
    const lines = unfold(buildIcs({ tenantId: 't', tenantName: 'T', lang: 'en', now: new Date('2026-07-01T00:00:00Z'), plans: [plan({ nextDueAt: new Date('2026-07-09T23:30:00Z') })] }));
    expect(lines).toContain('DTSTART;VALUE=DATE:20260710');
    expect(lines).toContain('DTEND;VALUE=DATE:20260711');
    expect(lines).toContain('SUMMARY:Due: Einwohnermeldewesen');
  });

  it('leaves out the scheduled event of a paused plan and says why in the description', () => {
    const ics = unfold(buildIcs({
      tenantId: 't', tenantName: 'T', lang: 'de', now: new Date('2026-07-01T00:00:00Z'),
      plans: [plan({ nextScheduledAt: new Date('2026-07-02T00:00:00Z'), nextDueAt: new Date('2026-07-10T00:00:00Z'), paused: { at: new Date('2026-06-30T08:00:00Z'), reason: 'Migration' } })],
    }));
    expect(ics.filter((l) => l.startsWith('UID:'))).toEqual(['UID:due-ewo-20260710T0000-t@ernstfall']);
    expect(ics.find((l) => l.startsWith('DESCRIPTION:'))).toContain('Zeitplan pausiert seit 30.06.2026\\, 10:00 MESZ (Grund: Migration)');
  });
});
