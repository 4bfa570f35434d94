import { ImageError } from '../../sandbox/images.js';

export interface PostgresImageChoice {
  image: string;
  major: number;
}

/**
 * pg_restore of major N refuses archives written by a newer pg_dump, and
 * newer plain dumps use settings older servers lack: take the smallest
 * configured major that is at least the dump's.
 */
export function choosePostgresImage(
  requiredMajor: number | null, majors: number[], template: string,
  opts: { image?: string; allowed?: string[]; version?: number } = {},
): PostgresImageChoice {
  const forced = opts.image;
  const allowed = opts.allowed ?? [];
  const sorted = [...majors].sort((a, b) => a - b);
  if (forced) {
    // checked when the plan was stored, and again here: the operator may have withdrawn it since
    if (!allowed.includes(forced)) {
      throw new ImageError('IMAGE_NOT_ALLOWED', `the plan names image ${forced}, which the operator does not allow (ERNSTFALL_SANDBOX_IMAGES)`);
    }
    const m = /:(\d+)(?:[.-]|$)/.exec(forced);
    return { image: forced, major: m ? Number(m[1]) : (sorted.at(-1) ?? 0) };
  }
  if (opts.version !== undefined) {
    // the plan pins a major (a tenant names a driver and a version, never an image)
    if (!sorted.includes(opts.version)) {
      throw new ImageError('VERSION_UNSUPPORTED', `the plan asks for PostgreSQL ${opts.version}, but sandbox images exist only for ${sorted.join(', ')} (ERNSTFALL_POSTGRES_MAJORS)`);
    }
    if (requiredMajor !== null && opts.version < requiredMajor) {
      throw new ImageError('VERSION_UNSUPPORTED', `the dump was written by PostgreSQL ${requiredMajor}, which PostgreSQL ${opts.version} (restore.version) cannot restore; pin ${requiredMajor} or newer, or leave restore.version out`);
    }
    return { image: template.replace('{major}', String(opts.version)), major: opts.version };
  }
  const need = requiredMajor ?? sorted.at(-1) ?? 0;
  const major = sorted.find((m) => m >= need);
  if (major === undefined) {
    throw new ImageError(
      'VERSION_UNSUPPORTED',
      `the dump needs PostgreSQL ${need} or newer, but sandbox images exist only for ${sorted.join(', ')}; ` +
        `build one (deploy/build-sandbox-image.sh ${need} <suite>) and add ${need} to ERNSTFALL_POSTGRES_MAJORS`,
    );
  }
  return { image: template.replace('{major}', String(major)), major };
}

