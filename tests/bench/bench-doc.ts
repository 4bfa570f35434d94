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

/**
 * The benchmarks' command line: `--name N` / `--name=N` for numbers (whole,
 * at least `min`), `--name` for switches, `--name value` for strings. Returns
 * what was given, keyed by flag name without dashes; `fail` builds the error.
 */
export function benchArgs(
  argv: string[],
  spec: { numbers?: Record<string, number>; switches?: string[]; strings?: string[] },
  fail: (message: string) => Error,
): Record<string, number | boolean | string> {
  const out: Record<string, number | boolean | string> = {};
  const known = [...Object.keys(spec.numbers ?? {}).map((n) => `--${n} N`), ...(spec.switches ?? []).map((n) => `--${n}`)].join(', ');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const name = flag.replace(/^--/, '');
    if (spec.numbers && name in spec.numbers) {
      const v = inline ?? argv[++i];
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw fail(`${flag} needs a whole number, got "${v}"`);
      out[name] = Math.max(spec.numbers[name]!, n);
    } else if (spec.switches?.includes(name)) out[name] = true;
    else if (spec.strings?.includes(name)) out[name] = inline ?? argv[++i] ?? '';
    else throw fail(`unknown argument ${a} (${known})`);
  }
  return out;
}
