import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import PDFDocument from 'pdfkit';
import { startHarness, type Harness } from '../helpers/harness.js';
import { UserRepository } from '../../db/repositories/user.repository.js';
import { DEFAULT_TENANT_ID } from '../../db/schema.js';
import { TEST_TOKEN } from '../helpers/config.js';
import { makeTempDir } from '../fixtures/host-dumps.js';

/**
 * Issue #11: ransomware indicators on every files run. A clean share of
 * realistic files (PDFs with compressed streams, Office documents, photos,
 * zips, CSV) must not fire; a ransomed copy must.
 */
let h: Harness;
let dir: string;
let clean: string;

function pdf(text: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const doc = new PDFDocument({ compress: true });
    const parts: Buffer[] = [];
    doc.on('data', (b: Buffer) => parts.push(b));
    doc.on('end', () => resolve(Buffer.concat(parts)));
    for (let i = 0; i < 20; i++) doc.text(`${text} – Absatz ${i}: ${randomBytes(40).toString('base64')}`);
    doc.end();
  });
}

/** A real PNG (noise, so its compressed data is near-random like a photo's). */
function png(w: number, h: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
  const crc = (b: Buffer) => { let c = 0xffffffff; for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, c]);
  };
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  const raw = Buffer.concat(Array.from({ length: h }, () => Buffer.concat([Buffer.from([0]), randomBytes(w * 3)])));
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** A JPEG as a camera writes it: SOI, JFIF, then entropy-coded data. */
const jpeg = () => Buffer.concat([Buffer.from('ffd8ffe000104a46494600010101004800480000', 'hex'), randomBytes(40_000), Buffer.from('ffd9', 'hex')]);

async function officeFile(path: string, body: string): Promise<void> {
  const tmp = await makeTempDir('ef-docx-');
  await mkdir(join(tmp, '_rels'), { recursive: true });
  await mkdir(join(tmp, 'word'), { recursive: true });
  await writeFile(join(tmp, '[Content_Types].xml'), '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>');
  await writeFile(join(tmp, '_rels/.rels'), '<?xml version="1.0"?><Relationships/>');
  await writeFile(join(tmp, 'word/document.xml'), `<?xml version="1.0"?><w:document><w:body>${`<w:p>${body} ${randomBytes(30).toString('hex')}</w:p>`.repeat(200)}</w:body></w:document>`);
  execFileSync('zip', ['-q', '-r', '-X', path, '[Content_Types].xml', '_rels', 'word'], { cwd: tmp });
  await rm(tmp, { recursive: true, force: true });
}

async function buildShare(root: string): Promise<void> {
  for (const amt of ['Bauamt', 'Kämmerei', 'Standesamt', 'Ordnungsamt']) {
    await mkdir(join(root, amt, 'Akten'), { recursive: true });
    for (let i = 1; i <= 6; i++) {
      await writeFile(join(root, amt, 'Akten', `Bescheid-${i}.pdf`), await pdf(`${amt} Bescheid ${i}`));
      await officeFile(join(root, amt, 'Akten', `Vermerk ${i}.docx`), `${amt} Vermerk ${i}`);
      await writeFile(join(root, amt, `Liste-${i}.csv`), `Nr;Name;Betrag\n${Array.from({ length: 200 }, (_, k) => `${k};Müller ${k};${(k * 13.7).toFixed(2)}`).join('\n')}\n`);
      await writeFile(join(root, amt, `Foto-${i}.jpg`), jpeg());
    }
    await writeFile(join(root, amt, 'Lageplan.png'), png(120, 80));
    await writeFile(join(root, amt, 'Notizen.txt'), 'Termine:\n- Sitzung am Montag\n- Haushalt prüfen\n'.repeat(20));
  }
  // an archive inside the share: compressed, near-random, and that is fine
  execFileSync('zip', ['-q', '-r', join(root, 'Archiv-2025.zip'), 'Bauamt/Akten'], { cwd: root });
}

async function tarball(name: string, from: string): Promise<string> {
  const out = join(dir, name);
  execFileSync('tar', ['-c', '--zstd', '-f', out, '-C', from, '.']);
  return out;
}

async function filesOf(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  await walk(root);
  return out.sort();
}

function encrypt(file: string, out: string): void {
  execFileSync('openssl', ['enc', '-aes-256-cbc', '-pbkdf2', '-salt', '-pass', 'pass:erpressung', '-in', file, '-out', out]);
}

beforeAll(async () => {
  dir = await makeTempDir('ef-ransom-');
  clean = join(dir, 'clean');
  await buildShare(clean);
  h = await startHarness({ backupRoot: dir });
});
afterAll(async () => {
  await h?.close();
  await rm(dir, { recursive: true, force: true });
});

async function run(id: string, archive: string, over: Record<string, unknown> = {}) {
  await h.putPlan({
    id, title: `Share ${id}`, targets: { rto: '1h', rpo: '26h' }, source: { type: 'file', path: archive },
    restore: { driver: 'files' }, sandbox: { memory: '512m', cpus: 1, timeout: '10m' }, checks: [{ files: { min: 10 } }], ...over,
  });
  return h.waitForRun(await h.trigger(id));
}
const codes = (r: { findings: { code: string }[] }) => r.findings.map((f) => f.code);
const INDICATORS = ['RANSOM_NOTE_FOUND', 'RANSOM_EXTENSION_FOUND', 'ENCRYPTED_FILES_SUSPECTED', 'FILE_TYPE_MISMATCH', 'MASS_RENAME', 'VOLUME_DROP'];
const builtin = (r: { restore: { builtin: { name: string; status: string }[] } }) => Object.fromEntries(r.restore.builtin.map((b) => [b.name, b.status]));

describe('ransomware indicators on every files run', () => {
  it('a clean share of PDFs, Office documents, photos, a zip and CSV: nothing fires, twice (the second against the first)', async () => {
    const archive = await tarball('clean.tar.zst', clean);
    const first = await run('share', archive);
    expect(first.verdict, JSON.stringify(first.findings)).toBe('passed');
    expect(codes(first).filter((c) => INDICATORS.includes(c))).toEqual([]);
    expect(builtin(first)).toEqual({ freshness: 'passed', volume: 'info', ransomware: 'passed', renames: 'info' });
    // every file of a known format was judged: pdf, docx, csv, jpg, png, txt, zip
    const judged = first.restore.builtin.find((b: { name: string }) => b.name === 'ransomware').actual;
    expect(judged).toBe(`${first.restore.files} von ${first.restore.files} Dateien geprüft`);
    const second = await run('share', archive);
    expect(second.verdict, JSON.stringify(second.findings)).toBe('passed');
    expect(builtin(second)).toEqual({ freshness: 'passed', volume: 'passed', ransomware: 'passed', renames: 'passed' });
  });

  it('a ransomed copy (a third of the files encrypted with openssl and renamed, a ransom note): failed with the indicators and example paths', async () => {
    const ransomed = join(dir, 'ransomed');
    await cp(clean, ransomed, { recursive: true });
    const files = await filesOf(ransomed);
    for (const f of files.filter((_, i) => i % 3 === 0)) {
      encrypt(f, `${f}.locked`);
      await rm(f);
    }
    await writeFile(join(ransomed, 'HOW_TO_DECRYPT.txt'), 'Your files are encrypted. Pay 2 BTC.\n');
    await writeFile(join(ransomed, 'Bauamt', 'HOW_TO_DECRYPT.txt'), 'Your files are encrypted. Pay 2 BTC.\n');
    const r = await run('share', await tarball('ransomed.tar.zst', ransomed));
    expect(r.verdict).toBe('failed');
    expect(codes(r)).toEqual(expect.arrayContaining(['RANSOM_NOTE_FOUND', 'RANSOM_EXTENSION_FOUND', 'MASS_RENAME']));
    const note = r.findings.find((f: { code: string }) => f.code === 'RANSOM_NOTE_FOUND');
    expect(note.message).toContain('2 file(s) named like ransom notes');
    expect(note.message).toContain('Bauamt/HOW_TO_DECRYPT.txt');
    expect(builtin(r).ransomware).toBe('failed');

    // the run page and the protocol PDF show the tree in numbers and the indicators, no content
    const user = await new UserRepository(h.tdb.db, h.c.clock).insert({ tenant_id: DEFAULT_TENANT_ID, email: 'leitung@musterstadt.de', name: 'IT-Leitung', role: 'auditor', created_by: 'test' });
    const session = await h.c.sessions.start(user, { stage: 'full', method: 'password' });
    const page = await h.app.inject({ method: 'GET', url: `/runs/${r.id}`, headers: { cookie: `ef_session=${session.token}` } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain(`${r.restore.files} Dateien`);
    expect(page.body).toMatch(/Ransomware-Anzeichen<\/th>\s*<td><span class="check check-failed">/);
    expect(page.body).toContain('RANSOM_NOTE_FOUND');
    const pdf = await h.app.inject({ method: 'GET', url: `/api/v1/runs/${r.id}/protocol.pdf`, headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    expect(pdf.statusCode).toBe(200);
    await writeFile(join(dir, 'protocol.pdf'), pdf.rawPayload);
    const text = execFileSync('pdftotext', ['-layout', join(dir, 'protocol.pdf'), '-']).toString();
    expect(text).toContain('Ransomware-Anzeichen');
    expect(text).not.toContain('Pay 2 BTC');
    expect(text).toContain('Umbenennungen');
    expect(text).toMatch(/\d+ von \d+ Dateien mit/);
  });

  it('files encrypted in place, names unchanged: ENCRYPTED_FILES_SUSPECTED; one odd file alone is only a warning', async () => {
    const inPlace = join(dir, 'in-place');
    await cp(clean, inPlace, { recursive: true });
    const victims = (await filesOf(inPlace)).filter((f) => /\.(docx|csv|pdf)$/.test(f)).slice(0, 8);
    for (const f of victims) {
      encrypt(f, `${f}.tmp`);
      await rename(`${f}.tmp`, f);
    }
    const sampleAll = { checks: [{ sample: { count: 500 } }] };
    const r = await run('in-place', await tarball('in-place.tar.zst', inPlace), sampleAll);
    expect(r.verdict).toBe('failed');
    expect(codes(r)).toContain('ENCRYPTED_FILES_SUSPECTED');
    // every file of a known format drawn (fewer than 500 exist): the encrypted ones do not pass
    expect(r.checks[0]).toMatchObject({ kind: 'sample', status: 'failed', actual: `${r.restore.files - 8} von ${r.restore.files}` });
    expect(r.checks[0].message).toMatch(/^passen nicht zu ihrer Endung: .*\.(docx|csv|pdf)/);
    const cleanSample = await run('clean-sample', await tarball('clean-sample.tar.zst', clean), { checks: [{ sample: { count: 10 } }] });
    expect(cleanSample.checks[0]).toMatchObject({ status: 'passed', actual: '10 von 10' });
    expect(r.findings.find((f: { code: string }) => f.code === 'ENCRYPTED_FILES_SUSPECTED').message).toMatch(/^8 of \d+ file\(s\) of a known format look encrypted/);

    const one = join(dir, 'one-odd');
    await cp(clean, one, { recursive: true });
    await writeFile(join(one, 'Kämmerei', 'Liste-1.csv'), randomBytes(4096));
    const o = await run('one-odd', await tarball('one-odd.tar.zst', one));
    expect(o.verdict, JSON.stringify(o.findings)).toBe('passed');
    expect(codes(o)).toContain('FILE_TYPE_MISMATCH');
    expect(codes(o)).not.toContain('ENCRYPTED_FILES_SUSPECTED');
  });

  it('against the last passed run: most files renamed to a new extension is MASS_RENAME; a folder gone is VOLUME_DROP', async () => {
    const archive = await tarball('base.tar.zst', clean);
    const drift = { checks: [{ files: { min: 10 } }, { drift: { maxDrop: '10%' } }] };
    const base = await run('drift', archive, drift);
    expect(base.verdict, JSON.stringify(base.findings)).toBe('passed');
    expect(base.checks[1]).toMatchObject({ kind: 'drift', status: 'passed', message: 'noch kein bestandener Lauf zum Vergleich: dieser wird die Basis' });
    expect((await run('drift', archive, drift)).checks[1]).toMatchObject({ status: 'passed' });
    const renamed = join(dir, 'renamed');
    await cp(clean, renamed, { recursive: true });
    for (const f of (await filesOf(renamed)).filter((x) => /\.(pdf|docx|jpg)$/.test(x))) await rename(f, `${f}.x7k2q`);
    const r = await run('drift', await tarball('renamed.tar.zst', renamed));
    expect(r.verdict).toBe('failed');
    expect(r.findings.find((f: { code: string }) => f.code === 'MASS_RENAME').message).toContain('.x7k2q');

    const shrunk = join(dir, 'shrunk');
    await cp(clean, shrunk, { recursive: true });
    await rm(join(shrunk, 'Standesamt'), { recursive: true });
    const s = await run('drift', await tarball('shrunk.tar.zst', shrunk), drift);
    expect(s.verdict).toBe('failed');
    expect(s.checks[1]).toMatchObject({ status: 'failed', message: expect.stringContaining('Standesamt/ 26 → 0 Dateien') });
    expect(s.findings.find((f: { code: string }) => f.code === 'VOLUME_DROP').message).toContain('Standesamt/');
  });

  it('switched off with a reason: skipped and recorded; extra note names and extensions from the plan count', async () => {
    const custom = join(dir, 'custom');
    await cp(clean, custom, { recursive: true });
    await writeFile(join(custom, 'LIESMICH-ENTSCHLUESSELN.txt'), 'Zahlen Sie.\n');
    await writeFile(join(custom, 'Bauamt', 'Plan.dwg.kommune'), randomBytes(300));
    const archive = await tarball('custom.tar.zst', custom);
    const r = await run('custom', archive, { builtin: { ransomware: { notes: ['liesmich-entschl*'], extensions: ['.kommune'] } } });
    expect(r.verdict).toBe('failed');
    expect(codes(r)).toEqual(expect.arrayContaining(['RANSOM_NOTE_FOUND', 'RANSOM_EXTENSION_FOUND']));
    const off = await run('custom-off', archive, { builtin: { ransomware: { off: 'Testfreigabe mit Mustern der Schulung' } } });
    expect(off.verdict, JSON.stringify(off.findings)).toBe('passed');
    expect(off.restore.builtin.find((b: { name: string }) => b.name === 'ransomware')).toMatchObject({ status: 'skipped', message: 'abgeschaltet: Testfreigabe mit Mustern der Schulung' });
    expect((await stat(archive)).size).toBeGreaterThan(0);
  });
});
