import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAwsRestoreValidation, parseBorgCheck, parseResticCheck, parseVeeamSyslog, structuredData, UnreadableResult } from '../../services/external/parsers.js';

const sample = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/external', name), 'utf8');

describe('what other tools report, read strictly', () => {
  it('Veeam event 390: JobResult 0 passes, 1 (warning) and 2 fail; the session is the result\'s id, the job is named', () => {
    const ok = parseVeeamSyslog(sample('veeam-390-success.syslog'));
    expect(ok).toMatchObject({ status: 'passed', jobName: 'SureBackup Bauamt', externalId: 'veeam:9f1c2e7a-5b1d-4c3e-8a0f-2d6b7e9c1a44', message: "SureBackup job 'SureBackup Bauamt' finished with Success." });
    expect(ok.finishedAt?.toISOString()).toBe('2026-12-06T21:41:07.512Z');
    // Veeam's documented header (time before the priority) and a description with its reason
    const warn = parseVeeamSyslog(sample('veeam-390-warning.syslog'));
    expect(warn).toMatchObject({ status: 'failed', message: expect.stringContaining("heartbeat test: timed out") });
    expect(warn.finishedAt?.toISOString()).toBe('2026-12-06T21:43:51.004Z');
    expect(parseVeeamSyslog(sample('veeam-390-failed.syslog'))).toMatchObject({ status: 'failed', message: expect.stringContaining('failed to boot') });
  });

  it('Veeam: another event, a missing or strange JobResult, or no event at all is never a pass', () => {
    expect(() => parseVeeamSyslog(sample('veeam-110-backup-started.syslog'))).toThrow(/event 110 is not a SureBackup result/);
    expect(() => parseVeeamSyslog('hello')).toThrow(UnreadableResult);
    expect(() => parseVeeamSyslog('')).toThrow(UnreadableResult);
    const odd = sample('veeam-390-success.syslog').replace('JobResult="0"', 'JobResult="7"');
    expect(parseVeeamSyslog(odd).status).toBe('error');
    const none = sample('veeam-390-success.syslog').replace(' JobResult="0"', '');
    expect(parseVeeamSyslog(none)).toMatchObject({ status: 'error', message: expect.stringContaining('JobResult missing') });
    const nojob = sample('veeam-390-success.syslog').replace(' JobName="SureBackup Bauamt"', '');
    expect(parseVeeamSyslog(nojob).status).toBe('error');
  });

  it('structured data: escapes, several elements, Veeam\'s element without an SD-ID; a broken value ends the reading', () => {
    const sd = structuredData('<14>1 - h a - - [origin enterpriseId="1"][x@1 a="q\\"uote" b="br\\]acket"] msg');
    expect(sd.get('enterpriseId')).toBe('1');
    expect(sd.get('a')).toBe('q"uote');
    expect(sd.get('b')).toBe('br]acket');
    expect(structuredData('[categoryId=0 instanceId=390 JobName="A B"]').get('instanceId')).toBe('390');
    const cut = structuredData('[x instanceId="390" JobResult="0');
    expect(cut.get('instanceId')).toBe('390');
    expect(cut.has('JobResult')).toBe(false);
  });

  it('restic check: "no errors were found" passes; a damaged repository fails with its first error line', () => {
    expect(parseResticCheck(sample('restic-check-ok.txt'), 0)).toMatchObject({ status: 'passed', details: { readData: 'read all data' } });
    expect(parseResticCheck(sample('restic-check-damaged.txt'), 1)).toMatchObject({ status: 'failed', message: expect.stringMatching(/^error for tree/) });
    // the healthy words with a failing exit code are not a pass
    expect(parseResticCheck(sample('restic-check-ok.txt'), 1).status).toBe('failed');
    expect(() => parseResticCheck('load indexes\ncheck all packs\n')).toThrow(/without its verdict/);
  });

  it('borg check: exit 0 with no error passes; a wrong passphrase fails; without an exit code the words decide', () => {
    expect(parseBorgCheck(sample('borg-check-ok.txt'), 0).status).toBe('passed');
    expect(parseBorgCheck(sample('borg-check-ok.txt')).status).toBe('passed');
    expect(parseBorgCheck(sample('borg-check-wrong-passphrase.txt'), 2)).toMatchObject({ status: 'failed', message: expect.stringContaining('is incorrect') });
    expect(parseBorgCheck(sample('borg-check-wrong-passphrase.txt')).status).toBe('failed');
    expect(() => parseBorgCheck('Starting repository check\n')).toThrow(/without its verdict/);
    expect(parseBorgCheck('', 0).status).toBe('passed');
    expect(parseBorgCheck('', 3).status).toBe('error');
  });

  it('AWS restore validation: SUCCESSFUL passes, FAILED and TIMED_OUT fail, anything else is an error', () => {
    const ok = parseAwsRestoreValidation(JSON.parse(sample('aws-validation-successful.json')));
    expect(ok).toMatchObject({ status: 'passed', externalId: 'aws:5A1B2C3D-0000-4E5F-8A9B-ABCDEF012345' });
    expect(ok.startedAt?.toISOString()).toBe('2026-12-06T21:00:04.000Z');
    expect(parseAwsRestoreValidation(JSON.parse(sample('aws-validation-failed.json')))).toMatchObject({ status: 'failed', message: expect.stringContaining('einwohner is empty') });
    expect(parseAwsRestoreValidation(JSON.parse(sample('aws-validation-timed-out.json'))).status).toBe('failed');
    expect(parseAwsRestoreValidation({ RestoreJobId: 'x', ValidationStatus: 'VALIDATING' }).status).toBe('error');
    expect(() => parseAwsRestoreValidation({ RestoreJobId: 'x' })).toThrow(/no ValidationStatus/);
    expect(() => parseAwsRestoreValidation('SUCCESSFUL')).toThrow(UnreadableResult);
  });
});
