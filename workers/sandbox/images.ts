import type Docker from 'dockerode';
import type { PullPolicy } from '../../services/config.js';

export class ImageError extends Error {
  constructor(public readonly code: 'VERSION_UNSUPPORTED' | 'IMAGE_MISSING' | 'IMAGE_NOT_ALLOWED', message: string) {
    super(message);
    this.name = 'ImageError';
  }
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
