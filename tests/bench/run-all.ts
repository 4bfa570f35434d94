/**
 * `npm run bench [-- --write] [--runs N] [--warmup N] [--jobs N] [--reseed]`
 *
 * Runs every benchmark in sequence, each in a process of its own, with the
 * same flags: --write, --runs and --warmup go to all of them (throughput takes
 * only --write: it has no repeated runs); a flag only one benchmark knows goes
 * only to that one (--jobs: restore; --reseed: evidence; --requests:
 * dashboard, provider; --plans, --configs, --deadline-min: throughput, which
 * is bounded by its deadline: at most 4 × 20 min by default).
 * Every benchmark runs even when an earlier one misses its target.
 *
 * Exit 0: every target met; 1: a target missed; 2: a benchmark could not measure.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../services/config.js';

interface Bench { name: string; file: string; only: string[]; /** the shared flags it takes, if not all */ shared?: string[] }

const BENCHES: Bench[] = [
  { name: 'restore', file: 'tests/bench/restore.bench.ts', only: ['--jobs'] },
  { name: 'builtin', file: 'tests/bench/builtin.bench.ts', only: [] },
  { name: 'files', file: 'tests/bench/files.bench.ts', only: [] },
  { name: 'restic', file: 'tests/bench/restic.bench.ts', only: [] },
  { name: 'evidence', file: 'tests/bench/evidence.bench.ts', only: ['--reseed'] },
  { name: 'status', file: 'tests/bench/status.bench.ts', only: [] },
  { name: 'dashboard', file: 'tests/bench/dashboard.bench.ts', only: ['--requests'] },
  { name: 'provider', file: 'tests/bench/provider.bench.ts', only: ['--requests'] },
  { name: 'throughput', file: 'tests/bench/throughput.bench.ts', only: ['--plans', '--configs', '--deadline-min'], shared: ['--write'] },
];
const SHARED = ['--write', '--runs', '--warmup'];
const WITH_VALUE = new Set(['--runs', '--warmup', '--jobs', '--requests', '--plans', '--configs', '--deadline-min']);

/** Splits argv into flags (with their value, if any) so each can be routed as a unit. */
function flags(argv: string[]): { name: string; parts: string[] }[] {
  const out: { name: string; parts: string[] }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    const parts = [a];
    if (!a.includes('=') && WITH_VALUE.has(name) && i + 1 < argv.length) parts.push(argv[++i]!);
    out.push({ name, parts });
  }
  return out;
}

function runBench(b: Bench, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    console.log(`\n=== bench:${b.name}${args.length ? ` ${args.join(' ')}` : ''} ===\n`);
    const p = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, b.file), ...args], { cwd: repoRoot, stdio: 'inherit' });
    p.on('error', (err) => {
      console.error(`bench: could not start ${b.file}: ${err.message}`);
      resolve(2);
    });
    p.on('close', (code, signal) => resolve(code ?? (signal ? 2 : 0)));
  });
}

async function main(): Promise<number> {
  const given = flags(process.argv.slice(2));
  const known = new Set([...SHARED, ...BENCHES.flatMap((b) => b.only)]);
  const unknown = given.filter((f) => !known.has(f.name));
  if (unknown.length) {
    console.error(`bench: unknown argument ${unknown.map((f) => f.parts.join(' ')).join(', ')} (${[...known].join(', ')})`);
    return 2;
  }
  const codes: { name: string; code: number }[] = [];
  for (const b of BENCHES) {
    const args = given.filter((f) => (b.shared ?? SHARED).includes(f.name) || b.only.includes(f.name)).flatMap((f) => f.parts);
    codes.push({ name: b.name, code: await runBench(b, args) });
  }
  console.log(`\n=== summary ===\n${codes.map((c) => `  bench:${c.name.padEnd(10)} ${c.code === 0 ? 'targets met' : c.code === 1 ? 'target missed' : `could not measure (exit ${c.code})`}`).join('\n')}`);
  // 2 (could not measure) outranks 1 (missed): a missing figure must not read as a mere miss
  return codes.some((c) => c.code !== 0 && c.code !== 1) ? 2 : codes.some((c) => c.code === 1) ? 1 : 0;
}

// Ctrl-C reaches the benchmark in the foreground too (same process group); it cleans up and exits, then so do we.
process.on('SIGINT', () => undefined);

main().then((code) => process.exit(code), (err: Error) => {
  console.error(`bench: ${err.stack ?? err.message}`);
  process.exit(2);
});
