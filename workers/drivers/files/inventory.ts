import { readFile } from 'node:fs/promises';
import type { Sandbox } from '../../sandbox/sandbox.js';

/** The script the sandbox runs to list and read the restored tree (constant; put in after the restore tool has finished). */
let script: Promise<Buffer> | undefined;
const inventoryScript = () => (script ??= readFile(new URL('./inventory.py', import.meta.url)));

/** How many example paths a finding or result names; the rest are counted. */
export const EXAMPLES = 5;

/**
 * A restored file tree in names and numbers: stored with the run as the
 * baseline for drift, never a file's content. Per-folder and per-extension
 * figures are capped to the biggest entries.
 */
export interface FilesProfile {
  files: number;
  bytes: number;
  dirs: number;
  symlinks: number;
  /** FIFOs, devices, sockets: not data, counted. */
  others: number;
  unreadable: number;
  /** The newest modification time of a regular file (ISO), or null for none. */
  newestMtime: string | null;
  /** Top-level folders (and "." for files at the root), by bytes. */
  top: { name: string; files: number; bytes: number }[];
  /** File name extensions (lower case, "" for none), by count. */
  extensions: { ext: string; files: number }[];
}

/** One regular file as the script saw it: no content beyond 32 bytes of head and an entropy figure. */
export interface FileSeen {
  path: string;
  size: number;
  mtime: number;
  /** First 32 bytes, hex. */
  head: string;
  /** Shannon entropy (bits per byte) of the first 8 KiB. */
  entropy: number;
}

export interface Inventory {
  profile: FilesProfile;
  /** The paths the plan's checks asked about that are there (files, folders or links). */
  found: Set<string>;
  /** A few paths the script could not read, with the reason. */
  unreadableExamples: string[];
  /** The walk reached its end (the script's last line). */
  complete: boolean;
  exitCode: number | null;
  stderr: string;
}

const MAX_TOP = 200;

export function extensionOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 && dot < base.length - 1 && base.length - dot <= 16 ? base.slice(dot + 1).toLowerCase() : '';
}

/** Shows a path from a backup safely in a message: control characters escaped, length bounded. */
export function showPath(p: string): string {
  // eslint-disable-next-line no-control-regex
  const s = p.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).replace(/[\ud800-\udfff]/g, '\ufffd');
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}

/**
 * Walks the restored tree inside the sandbox (as its unprivileged user) and
 * reads it as a stream: counts, sizes, folders, extensions, the newest
 * modification time, and whether the paths in `wanted` are there. `onFile`
 * sees each regular file (for the indicators). Nothing is held per file.
 */
export async function takeInventory(sandbox: Sandbox, root: string, wanted: Set<string>, onFile?: (f: FileSeen) => void): Promise<Inventory> {
  const file = `${sandbox.dataDir}/ef-inventory.py`;
  await sandbox.putFile(file, await inventoryScript());
  const p: FilesProfile = { files: 0, bytes: 0, dirs: 0, symlinks: 0, others: 0, unreadable: 0, newestMtime: null, top: [], extensions: [] };
  const top = new Map<string, { files: number; bytes: number }>();
  const ext = new Map<string, number>();
  const found = new Set<string>();
  const unreadableExamples: string[] = [];
  let newest = -Infinity;
  let complete = false;
  let bad = 0;
  const r = await sandbox.execLines(['python3', '-I', '-S', file, 'walk', root], (line, cut) => {
    if (cut) { bad++; return; }
    let row: unknown[];
    try {
      row = JSON.parse(line) as unknown[];
    } catch {
      bad++;
      return;
    }
    const [kind, path] = row as [string, string];
    if (kind !== 'e' && typeof path === 'string' && wanted.has(path)) found.add(path);
    switch (kind) {
      case 'f': {
        const [, , size, mtime, head, entropy] = row as [string, string, number, number, string, number];
        p.files++;
        p.bytes += size;
        if (mtime > newest) newest = mtime;
        const t = path.includes('/') ? path.slice(0, path.indexOf('/')) : '.';
        const e = top.get(t) ?? { files: 0, bytes: 0 };
        e.files++;
        e.bytes += size;
        top.set(t, e);
        const x = extensionOf(path);
        ext.set(x, (ext.get(x) ?? 0) + 1);
        onFile?.({ path, size, mtime, head, entropy });
        break;
      }
      case 'd': p.dirs++; break;
      case 'l': p.symlinks++; break;
      case 'o': p.others++; break;
      case 'x':
        p.unreadable++;
        if (unreadableExamples.length < EXAMPLES) unreadableExamples.push(`${showPath(path)} (${String(row[2]).slice(0, 80)})`);
        break;
      case 'e': complete = true; break;
      default: bad++;
    }
  });
  p.newestMtime = Number.isFinite(newest) ? new Date(newest * 1000).toISOString() : null;
  p.top = [...top].map(([name, v]) => ({ name, ...v })).sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name)).slice(0, MAX_TOP);
  p.extensions = [...ext].map(([e, files]) => ({ ext: e, files })).sort((a, b) => b.files - a.files || a.ext.localeCompare(b.ext)).slice(0, MAX_TOP);
  return { profile: p, found, unreadableExamples, complete: complete && bad === 0 && r.exitCode === 0, exitCode: r.exitCode, stderr: r.stderr };
}

export interface ManifestResult {
  ok: number;
  /** By status: paths (at most EXAMPLES each) and counts. */
  problems: Record<'mismatch' | 'missing' | 'outside' | 'unreadable' | 'malformed', { count: number; examples: string[] }>;
  /** The manifest itself could not be read, or the script did not finish. */
  error?: string;
}

/** Hashes every file the manifest (a `sha256sum` list inside the tree) names and compares. */
/** `manifest` relative to `root` (its paths relative to its own folder), or absolute with `base` the folder its paths are relative to. */
export async function checkManifest(sandbox: Sandbox, root: string, manifest: string, base?: string): Promise<ManifestResult> {
  const file = `${sandbox.dataDir}/ef-inventory.py`;
  await sandbox.putFile(file, await inventoryScript());
  const problems: ManifestResult['problems'] = {
    mismatch: { count: 0, examples: [] }, missing: { count: 0, examples: [] }, outside: { count: 0, examples: [] },
    unreadable: { count: 0, examples: [] }, malformed: { count: 0, examples: [] },
  };
  let ok = 0;
  let error: string | undefined;
  let complete = false;
  const r = await sandbox.execLines(['python3', '-I', '-S', file, 'manifest', root, manifest, ...(base !== undefined ? [base] : [])], (line) => {
    let row: unknown[];
    try {
      row = JSON.parse(line) as unknown[];
    } catch {
      return;
    }
    if (row[0] === 'm') error = `the manifest cannot be read: ${String(row[1]).slice(0, 100)}`;
    else if (row[0] === 'e') complete = true;
    else if (row[0] === 'M') {
      const status = row[2] as keyof ManifestResult['problems'] | 'ok';
      if (status === 'ok') ok++;
      else if (status in problems) {
        problems[status].count++;
        if (problems[status].examples.length < EXAMPLES) problems[status].examples.push(showPath(String(row[1])));
      }
    }
  });
  if (!error && (!complete || r.exitCode !== 0)) error = `the manifest check did not finish (exit ${r.exitCode}): ${r.stderr.trim().split('\n').at(-1)?.slice(0, 200) ?? ''}`;
  return { ok, problems, ...(error && { error }) };
}
