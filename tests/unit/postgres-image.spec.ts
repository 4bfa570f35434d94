import { describe, expect, it } from 'vitest';
import { choosePostgresImage } from '../../workers/drivers/postgres/image.js';

const T = 'ernstfall/sandbox-postgres:{major}';
const err = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('no error');
};

describe('the PostgreSQL image for a dump', () => {
  it('the smallest available major at least the dump\'s', () => {
    expect(choosePostgresImage(14, [15, 17], T)).toEqual({ image: 'ernstfall/sandbox-postgres:15', major: 15 });
    expect(choosePostgresImage(16, [15, 17], T).major).toBe(17);
    expect(err(() => choosePostgresImage(18, [15, 17], T))).toMatchObject({ code: 'VERSION_UNSUPPORTED' });
  });
  it('a version the plan pins: used when available and able to read the dump, refused otherwise', () => {
    expect(choosePostgresImage(15, [15, 17], T, { version: 17 })).toEqual({ image: 'ernstfall/sandbox-postgres:17', major: 17 });
    expect(err(() => choosePostgresImage(15, [15, 17], T, { version: 16 })).message).toContain('images exist only for 15, 17');
    expect(err(() => choosePostgresImage(17, [15, 17], T, { version: 15 })).message).toContain('written by PostgreSQL 17');
  });
  it('an image only from the operator\'s allowlist', () => {
    expect(choosePostgresImage(15, [15, 17], T, { image: 'postgis/postgis:16', allowed: ['postgis/postgis:16'] })).toEqual({ image: 'postgis/postgis:16', major: 16 });
    expect(err(() => choosePostgresImage(15, [15, 17], T, { image: 'evil/x:1', allowed: ['postgis/postgis:16'] }))).toMatchObject({ code: 'IMAGE_NOT_ALLOWED' });
  });
});
