import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../../services/config.js';

/** Replaces (or appends) the section that starts with `heading` in docs/BENCHMARKS.md; other sections stay. */
export async function writeBenchmarkSection(heading: string, section: string): Promise<string> {
  const file = join(repoRoot, 'docs', 'BENCHMARKS.md');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    text = '# Benchmarks\n\nHow fast ernstfall is, measured on a real machine. Each section names the command that produced it; ' +
      'rerun it to update the section. Benchmarks measure speed; they are not tests.\n\n';
  }
  const start = text.indexOf(`${heading}\n`);
  if (start === -1) {
    text = `${text.trimEnd()}\n\n${section}`;
  } else {
    const next = text.indexOf('\n## ', start + heading.length);
    text = text.slice(0, start) + section + (next === -1 ? '' : `\n${text.slice(next + 1)}`);
  }
  await mkdir(join(repoRoot, 'docs'), { recursive: true });
  await writeFile(file, `${text.trimEnd()}\n`);
  return file;
}
