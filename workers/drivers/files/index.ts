import { createHash, randomInt } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { finding, type Finding } from '../../../services/findings.js';
import { formatBytes } from '../../../services/sandbox-policy.js';
import type { BorgSource, FilesRestore, PlanCheck, ResticSource, SandboxPlan } from '../../../services/plans/plan.types.js';
import { checkBase, type CheckResult } from '../../checks/checks.js';
import { ImageError } from '../../sandbox/images.js';
import { SandboxError, type Sandbox } from '../../sandbox/sandbox.js';
import type { Inspection, RestoreDriver, RestoreResult, SandboxRecipe } from '../driver.js';
import { classifyToolOutput, detectFormat, extractArgv, type FilesFormat } from './archive.js';
import { FILES_UID, restoreBorg, restoreRestic } from './repository.js';
import { checkManifest, EXAMPLES, showPath, takeInventory, type FilesProfile, type Inventory } from './inventory.js';
import { IndicatorScan } from './indicators.js';
import { evaluateFilesBuiltins } from './builtins.js';

export interface FilesInspection extends Inspection {
  format: FilesFormat;
  /** The backup on the worker's host (file, folder or repository): a manifest `beside` it lies in the same folder. */
  hostPath: string;
}

/** The data area: owned by the image's unprivileged user; the backup's copy and the restored tree live here. */
const DATA_DIR = '/srv/ef';
const RESTORED = `${DATA_DIR}/restored`;
const USER = 'ernstfall';

/** What the restore left for the checks: the tree's root, its inventory and indicators (held by the worker for this run only, never stored whole). */
interface FilesState { root: string; inventory: Inventory; indicators: IndicatorScan; sample: Sampled[] }
/** A file of a known format drawn at random, and whether its content is what its name says. */
interface Sampled { path: string; verdict: 'ok' | 'encrypted' | 'mismatch' }
const states = new WeakMap<RestoreResult, FilesState>();

const files = (plan: SandboxPlan) => plan.restore as FilesRestore;

/** Paths the plan's checks ask about: looked for while the tree is walked. */
function wantedPaths(checks: PlanCheck[]): Set<string> {
  const out = new Set<string>();
  for (const c of checks) {
    if (c.kind === 'exists') for (const p of c.paths) out.add(p);
    if (c.kind === 'manifest' && c.file !== undefined) out.add(c.file);
  }
  return out;
}

/**
 * File backups: a folder (a mirrored share) or an archive (tar, tar.gz,
 * tar.zst, tar.xz, tar.bz2, zip). The backup is copied into the sandbox like
 * every backup; an archive is unpacked there by GNU tar or unzip as the
 * image's unprivileged user, then walked by ernstfall's inventory script.
 * Every name from the backup is data: argv holds only fixed paths.
 */
export const filesDriver: RestoreDriver<FilesInspection> = {
  name: 'files',

  async inspect(backup, plan) {
    const format: FilesFormat = plan.source.type === 'restic' || plan.source.type === 'borg' ? plan.source.type : backup.isDirectory ? 'folder' : await detectFormat(backup.realPath);
    return { format, hostPath: backup.realPath, createdAt: null, facts: { format } };
  },

  chooseImage({ config, plan, policy }) {
    const forced = files(plan).image;
    if (forced !== undefined) {
      // checked when the plan was stored, and again here: the operator may have withdrawn it since
      if (!policy.allowedImages.includes(forced)) throw new ImageError('IMAGE_NOT_ALLOWED', `the plan names image ${forced}, which the operator does not allow (ERNSTFALL_SANDBOX_IMAGES)`);
      return { image: forced, facts: {} };
    }
    return { image: config.sandbox.filesImage, facts: {} };
  },

  sandbox({ plan }): SandboxRecipe {
    // nothing runs until the worker asks; the container only keeps the sandbox alive
    return {
      user: USER, dataDir: DATA_DIR, command: ['sleep', 'infinity'],
      // borg check writes to the repository: its copy is the sandbox user's (the original is never touched)
      ...(plan.source.type === 'borg' && { backupOwner: { uid: FILES_UID, gid: FILES_UID } }),
    };
  },

  async ready(sandbox) {
    if (!(await sandbox.isRunning())) throw new SandboxError(`the files sandbox exited at start: ${(await sandbox.logsTail()).slice(0, 300)}`);
  },

  async restore(sandbox, ctx) {
    const { format } = ctx.inspection;
    const findings: Finding[] = [];
    let root = sandbox.backupPath;
    let log = '';
    let tool: Record<string, unknown> | null = null;
    if (format === 'unknown') {
      return { restored: false, facts: { format }, findings: [finding('ARCHIVE_UNREADABLE', 'the backup is neither a folder nor an archive ernstfall knows (tar, tar.gz, tar.zst, tar.xz, tar.bz2, zip), judged by its first bytes')] };
    }
    let backup: RestoreResult['backup'];
    let extra: Record<string, unknown> = {};
    if (format === 'restic' || format === 'borg') {
      const mk = await sandbox.exec(['mkdir', '-p', '--', RESTORED]);
      if (mk.exitCode !== 0) throw new SandboxError(`could not make the restore folder: ${mk.stderr.slice(0, 200)}`);
      const c = { sandbox, target: RESTORED, roots: ctx.policy.roots, tenant: ctx.policy.tenant };
      const r = format === 'restic' ? await restoreRestic(c, ctx.plan.source as ResticSource) : await restoreBorg(c, ctx.plan.source as BorgSource);
      findings.push(...r.findings);
      log = r.log;
      backup = r.backup;
      extra = r.facts;
      if (!r.restored) return { restored: false, facts: { format, ...extra }, findings, log, ...(backup && { backup }) };
      root = r.root;
      await sandbox.exec(['chmod', '-R', 'u+rwX', '--', RESTORED]);
    } else if (format !== 'folder') {
      root = RESTORED;
      const mk = await sandbox.exec(['mkdir', '-p', '--', RESTORED]);
      if (mk.exitCode !== 0) throw new SandboxError(`could not make the restore folder: ${mk.stderr.slice(0, 200)}`);
      const argv = extractArgv(format, sandbox.backupPath, RESTORED)!;
      const started = performance.now();
      const r = await sandbox.exec(argv, { maxOutput: 64 * 1024 });
      log = r.stderr;
      const c = classifyToolOutput(format, r.exitCode, r.stderr);
      tool = { name: argv[0], exitCode: r.exitCode, stderrLines: r.stderr.split('\n').filter(Boolean).length, ms: Math.round(performance.now() - started) };
      if (c.refusedPaths) findings.push(finding('ARCHIVE_PATHS_REFUSED', `${c.refusedPaths} member(s) of the archive name a place outside its own tree (an absolute path or ".."); ${argv[0]} did not write them there. A backup made by a backup tool has none: look at how it was made`));
      if (c.specialSkipped) findings.push(finding('SPECIAL_FILES_SKIPPED', `${c.specialSkipped} device node(s) or socket(s) of the archive were not created: an unprivileged sandbox cannot, and a container runtime makes its own /dev; everything else was restored`));
      if (c.truncated) findings.push(finding('ARCHIVE_TRUNCATED', `the archive ends early or its compressed data is damaged (${argv[0]} exit ${r.exitCode}); what it restored is incomplete`));
      else if (c.unreadable) findings.push(finding('ARCHIVE_UNREADABLE', `${argv[0]} cannot read the archive as ${format} (exit ${r.exitCode})`));
      else if (r.exitCode !== 0 && (c.otherErrors.length || (!c.refusedPaths && !c.specialSkipped))) {
        findings.push(finding('RESTORE_ERROR', `${argv[0]} exited ${r.exitCode}: ${c.otherErrors.slice(0, 2).join(' | ').slice(0, 300)}`));
      }
      if (c.truncated || c.unreadable) return { restored: false, facts: { format, tool }, findings, log };
      // a folder the archive made unreadable (mode 000) is still the owner's: open it up for the walk
      await sandbox.exec(['chmod', '-R', 'u+rwX', '--', RESTORED]);
    }
    const rw = ctx.plan.builtin?.ransomware;
    const indicators = new IndicatorScan({ notes: rw?.notes, extensions: rw?.extensions });
    // a uniform sample of the files of a known format (reservoir sampling over the stream), for the sample checks
    const want = Math.max(0, ...ctx.plan.checks.map((c) => (c.kind === 'sample' ? c.count : 0)));
    const sample: Sampled[] = [];
    let seen = 0;
    const inventory = await takeInventory(sandbox, root, wantedPaths(ctx.plan.checks), (f) => {
      const verdict = indicators.see(f);
      if (want === 0 || verdict === 'unjudged') return;
      seen++;
      const entry = { path: f.path, verdict };
      if (sample.length < want) sample.push(entry);
      else {
        const j = randomInt(seen);
        if (j < want) sample[j] = entry;
      }
    });
    const p = inventory.profile;
    if (!inventory.complete) {
      throw new SandboxError(`the inventory of the restored tree did not finish (exit ${inventory.exitCode}): ${inventory.stderr.trim().split('\n').at(-1)?.slice(0, 200) ?? ''}`);
    }
    if (p.files === 0) findings.push(finding('EMPTY_RESTORE', `the restored tree holds no file (${p.dirs} folder(s))`));
    if (p.unreadable) findings.push(finding('FILES_UNREADABLE', `${p.unreadable} entr${p.unreadable === 1 ? 'y' : 'ies'} of the restored tree cannot be read: ${inventory.unreadableExamples.join(', ')}`));
    const result: RestoreResult = {
      restored: true, findings, log,
      ...(backup && { backup }),
      facts: { format, ...(tool && { tool }), ...extra, files: p.files, bytes: p.bytes, dirs: p.dirs, symlinks: p.symlinks, others: p.others, unreadable: p.unreadable, newestMtime: p.newestMtime },
    };
    states.set(result, { root, inventory, indicators, sample });
    return result;
  },

  async treeAccess(sandbox, _ctx, restored) {
    const state = states.get(restored);
    if (!state) throw new SandboxError('the restored tree is not known for this run');
    // the services see the sandbox's data read-only where the sandbox sees it, as the user that owns the restored tree
    return { path: state.root, volumesFrom: sandbox.container.id, defaultUser: `${FILES_UID}:${FILES_UID}` };
  },

  async builtins(_sandbox, ctx, restored, input) {
    const state = states.get(restored);
    if (!state) throw new Error('no inventory of the restored tree');
    return evaluateFilesBuiltins({
      profile: state.inventory.profile, baseline: input.baseline as FilesProfile | undefined, indicators: state.indicators.result(),
      config: ctx.plan.builtin ?? {}, backupCreatedAt: input.backupCreatedAt, rpoSeconds: ctx.plan.targets.rpoSeconds,
    });
  },

  checks(sandbox, ctx, restored, history) {
    const state = states.get(restored);
    return async (check) => {
      if (!state) return { ...checkBase(check), status: 'error', actual: null, message: 'keine Bestandsaufnahme des wiederhergestellten Baums' };
      return fileCheck(check, state, sandbox, history.lastProfile as FilesProfile | undefined, ctx.inspection.hostPath);
    };
  },
};

async function fileCheck(check: PlanCheck, state: FilesState, sandbox: Sandbox, last: FilesProfile | undefined, hostPath: string): Promise<CheckResult> {
  const base = checkBase(check);
  const p = state.inventory.profile;
  switch (check.kind) {
    case 'files': {
      const ok = p.files >= check.min;
      return { ...base, status: ok ? 'passed' : 'failed', actual: String(p.files), message: ok ? 'erfüllt' : `${p.files} Dateien, mindestens ${check.min} erwartet` };
    }
    case 'bytes': {
      const ok = p.bytes >= check.min;
      return { ...base, expected: `>= ${formatBytes(check.min)}`, status: ok ? 'passed' : 'failed', actual: formatBytes(p.bytes), message: ok ? 'erfüllt' : `${formatBytes(p.bytes)}, mindestens ${formatBytes(check.min)} erwartet` };
    }
    case 'exists': {
      const missing = check.paths.filter((x) => !state.inventory.found.has(x));
      const ok = missing.length === 0;
      return {
        ...base, status: ok ? 'passed' : 'failed', actual: `${check.paths.length - missing.length} von ${check.paths.length}`,
        message: ok ? 'erfüllt' : `fehlt: ${missing.slice(0, EXAMPLES).join(', ')}${missing.length > EXAMPLES ? ` … (+${missing.length - EXAMPLES})` : ''}`,
      };
    }
    case 'manifest': {
      let m: Awaited<ReturnType<typeof checkManifest>>;
      if (check.beside !== undefined) {
        // the manifest lies next to the backup on the host: read there (bounded, no links followed), hashed into the result, handed in as a file
        const got = await readBesideManifest(hostPath, check.beside);
        if ('missing' in got) return { ...base, status: 'failed', actual: 'kein Manifest', message: got.missing };
        base.expected = `${base.expected} (${got.name}, sha256 ${got.sha256.slice(0, 16)}…)`;
        const inside = `${DATA_DIR}/ef-manifest-beside`;
        await sandbox.putFile(inside, got.content, { mode: 0o444 });
        m = await checkManifest(sandbox, state.root, inside, state.root);
      } else {
        if (!state.inventory.found.has(check.file)) return { ...base, status: 'failed', actual: 'kein Manifest', message: `das Manifest ${check.file} fehlt im wiederhergestellten Baum` };
        m = await checkManifest(sandbox, state.root, posix.normalize(check.file));
      }
      if (m.error) return { ...base, status: 'error', actual: null, message: m.error };
      const bad = Object.entries(m.problems).filter(([, v]) => v.count > 0);
      const listed = m.ok + bad.reduce((a, [, v]) => a + v.count, 0);
      if (listed === 0) return { ...base, status: 'failed', actual: '0 Einträge', message: 'das Manifest nennt keine Datei' };
      if (!bad.length) return { ...base, status: 'passed', actual: `${m.ok} von ${listed}`, message: 'jede Datei des Manifests ist da, mit ihrem Hash' };
      const words: Record<string, string> = { mismatch: 'anderer Hash', missing: 'fehlt', outside: 'außerhalb des Baums', unreadable: 'nicht lesbar', malformed: 'unlesbare Zeile' };
      return {
        ...base, status: 'failed', actual: `${m.ok} von ${listed}`,
        message: bad.map(([k, v]) => `${words[k]}: ${v.count}${v.examples.length ? ` (${v.examples.join(', ')}${v.count > v.examples.length ? ', …' : ''})` : ''}`).join('; '),
      };
    }
    case 'sample': {
      // a random order of the reservoir, then the first `count`: a uniform sample of that size
      const drawn = [...state.sample];
      for (let i = drawn.length - 1; i > 0; i--) {
        const j = randomInt(i + 1);
        [drawn[i], drawn[j]] = [drawn[j]!, drawn[i]!];
      }
      const picked = drawn.slice(0, check.count);
      if (picked.length === 0) return { ...base, status: 'failed', actual: '0', message: 'keine Datei eines bekannten Formats zum Prüfen' };
      const bad = picked.filter((x) => x.verdict !== 'ok');
      const note = picked.length < check.count ? ` (nur ${picked.length} Dateien eines bekannten Formats)` : '';
      return {
        ...base, status: bad.length ? 'failed' : 'passed', actual: `${picked.length - bad.length} von ${picked.length}`,
        message: bad.length ? `passen nicht zu ihrer Endung: ${bad.slice(0, EXAMPLES).map((x) => showPath(x.path)).join(', ')}${note}` : `jede gezogene Datei ist, was ihr Name sagt${note}`,
      };
    }
    case 'drift': {
      // like maxDropVsLastGood: without a passed run there is nothing to have lost against; this run becomes the comparison
      if (!last) return { ...base, status: 'passed', actual: `${p.files} Dateien`, message: 'noch kein bestandener Lauf zum Vergleich: dieser wird die Basis' };
      const floor = (before: number) => before * (1 - check.maxDropPercent / 100);
      const drops: string[] = [];
      if (p.files < floor(last.files)) drops.push(`Dateien ${last.files} → ${p.files}`);
      if (p.bytes < floor(last.bytes)) drops.push(`Bytes ${last.bytes} → ${p.bytes}`);
      const now = new Map(p.top.map((t) => [t.name, t]));
      for (const t of last.top) {
        const n = now.get(t.name);
        if ((n?.files ?? 0) < floor(t.files) || (n?.bytes ?? 0) < floor(t.bytes)) drops.push(`${showPath(t.name)}/ ${t.files} → ${n?.files ?? 0} Dateien`);
      }
      return {
        ...base, status: drops.length ? 'failed' : 'passed', actual: `${p.files} Dateien (zuletzt ${last.files})`,
        message: drops.length ? `mehr als ${check.maxDropPercent} % weniger: ${drops.slice(0, EXAMPLES).join('; ')}` : 'erfüllt',
      };
    }
    default:
      return { ...base, status: 'error', actual: null, message: `ein ${check.kind}-Check passt nicht zu Dateisicherungen` };
  }
}

/** A manifest beside the backup may be this large; it is read whole (it names files, it is not the backup). */
const MAX_BESIDE_MANIFEST = 64 * 1024 * 1024;

/**
 * Reads the manifest named `beside` (with `{name}` for the backup's own name) from the backup's
 * folder on the host. The name was checked by the plan parser to stay in that folder; a symbolic
 * link there is not followed, so it cannot lead out of the tenant's roots.
 */
export async function readBesideManifest(hostPath: string, beside: string): Promise<{ name: string; content: Buffer; sha256: string } | { missing: string }> {
  const name = beside.replaceAll('{name}', basename(hostPath));
  if (name.includes('/') || name === '.' || name === '..') return { missing: `"${name}" is not a file name` };
  let fh: FileHandle | undefined;
  try {
    fh = await open(join(dirname(hostPath), name), constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = await fh.stat();
    if (!st.isFile()) return { missing: `das Manifest ${name} neben der Sicherung ist keine Datei` };
    if (st.size > MAX_BESIDE_MANIFEST) return { missing: `das Manifest ${name} neben der Sicherung ist größer als ${formatBytes(MAX_BESIDE_MANIFEST)}` };
    const content = await fh.readFile();
    return { name, content, sha256: createHash('sha256').update(content).digest('hex') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { missing: `das Manifest ${name} fehlt neben der Sicherung` };
    if (code === 'ELOOP') return { missing: `das Manifest ${name} neben der Sicherung ist ein symbolischer Link; ihm wird nicht gefolgt` };
    return { missing: `das Manifest ${name} neben der Sicherung ist nicht lesbar (${code ?? 'error'})` };
  } finally {
    await fh?.close();
  }
}
