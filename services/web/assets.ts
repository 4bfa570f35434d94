import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { repoRoot } from '../config.js';

/**
 * The two static files of the web interface, read once at start and served
 * from memory: /assets/app.css and /assets/app.js. Pages link them with
 * `?v=<hash>`, so browsers may keep them for a year (a new version has a new
 * address); without the matching hash they revalidate with the ETag.
 */
const TYPES: Record<string, string> = { 'app.css': 'text/css; charset=utf-8', 'app.js': 'text/javascript; charset=utf-8' };

interface Asset { body: Buffer; hash: string; type: string }

function assetDir(): string {
  // next to this module (sources, or a build that copied the folder), else in the repository
  const here = fileURLToPath(new URL('./assets/', import.meta.url));
  return existsSync(join(here, 'app.css')) ? here : join(repoRoot, 'services', 'web', 'assets');
}

let cache: Map<string, Asset> | undefined;
function assets(): Map<string, Asset> {
  if (!cache) {
    const dir = assetDir();
    cache = new Map(Object.entries(TYPES).map(([name, type]) => {
      const body = readFileSync(join(dir, name));
      return [name, { body, type, hash: createHash('sha256').update(body).digest('hex').slice(0, 16) }];
    }));
  }
  return cache;
}

export function assetUrl(name: 'app.css' | 'app.js'): string {
  return `/assets/${name}?v=${assets().get(name)!.hash}`;
}

export async function assetRoutes(app: FastifyInstance): Promise<void> {
  assets(); // fail at start, not on the first request, when a file is missing
  app.get<{ Params: { file: string }; Querystring: { v?: string } }>('/assets/:file', { config: { public: true }, schema: { hide: true } }, async (req, reply) => {
    const a = assets().get(req.params.file);
    if (!a) return reply.status(404).type('text/plain; charset=utf-8').send('not found');
    const etag = `"${a.hash}"`;
    reply.header('etag', etag).header('x-content-type-options', 'nosniff')
      .header('cache-control', req.query.v === a.hash ? 'public, max-age=31536000, immutable' : 'public, max-age=300, must-revalidate');
    if (req.headers['if-none-match'] === etag) return reply.status(304).send();
    return reply.type(a.type).send(a.body);
  });
}
