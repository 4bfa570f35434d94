import type Docker from 'dockerode';
import type { PullPolicy } from '../../services/config.js';

export interface ImageChoice {
  image: string;
  major: number;
}

export class ImageError extends Error {
  constructor(public readonly code: 'VERSION_UNSUPPORTED' | 'IMAGE_MISSING' | 'IMAGE_NOT_ALLOWED', message: string) {
    super(message);
    this.name = 'ImageError';
  }
}

/**
 * pg_restore of major N refuses archives written by a newer pg_dump, and
 * newer plain dumps use settings older servers lack: take the smallest
 * configured major that is at least the dump's.
 */
export function chooseImage(requiredMajor: number | null, majors: number[], template: string, forced?: string, allowed: string[] = []): ImageChoice {
  const sorted = [...majors].sort((a, b) => a - b);
  if (forced) {
    // checked when the plan was stored, and again here: the operator may have withdrawn it since
    if (!allowed.includes(forced)) {
      throw new ImageError('IMAGE_NOT_ALLOWED', `the plan names image ${forced}, which the operator does not allow (ERNSTFALL_SANDBOX_IMAGES)`);
    }
    const m = /:(\d+)(?:[.-]|$)/.exec(forced);
    return { image: forced, major: m ? Number(m[1]) : (sorted.at(-1) ?? 0) };
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

/** Makes sure the image is there under the pull policy; returns its id (the digest of its config). */
export async function ensureImage(docker: Docker, image: string, pull: PullPolicy): Promise<{ id: string; repoDigests: string[] }> {
  const inspect = async () => {
    const info = await docker.getImage(image).inspect();
    return { id: info.Id, repoDigests: info.RepoDigests ?? [] };
  };
  if (pull !== 'always') {
    try {
      return await inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      if (pull === 'never') {
        throw new ImageError(
          'IMAGE_MISSING',
          `sandbox image ${image} is not on this Docker host and pulling is off (ERNSTFALL_SANDBOX_PULL=never); ` +
            'build the offline images with `npm run setup` (deploy/build-sandbox-image.sh)',
        );
      }
    }
  }
  const stream = await docker.pull(image);
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve()));
  });
  return inspect();
}
