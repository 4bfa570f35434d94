import { describe, expect, it } from 'vitest';
import { classifyRestoreOutput } from '../../workers/drivers/postgres/classify.js';

describe('classifyRestoreOutput with parallel pg_restore workers', () => {
  it('finds a truncation even when two workers wrote into one line, and does not add follow-up noise', () => {
    const stderr = 'pg_restore: error: a worker process died unexpectedlypg_restore: error: could not read from input file: end of file\n'
      + 'pg_restore: error: could not find block Ipg_restore: error: x\n';
    const f = classifyRestoreOutput({ tool: 'pg_restore', exitCode: 1, stderr }, {});
    expect(f.map((x) => x.code)).toEqual(['ARCHIVE_TRUNCATED']);
  });
  it('keeps real SQL errors when the archive is fine', () => {
    const f = classifyRestoreOutput({ tool: 'pg_restore', exitCode: 1, stderr: 'pg_restore: error: could not execute query: ERROR:  relation "t" already exists\n' }, {});
    expect(f.map((x) => x.code)).toEqual(['RESTORE_ERROR']);
  });
});
