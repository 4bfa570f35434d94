import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import PDFDocument from 'pdfkit';
import type { CheckpointRef, Lang, VerdictName } from './report.types.js';
import { fill, formatDateTime, labels } from './i18n.js';

/**
 * Shared PDF building blocks. Every report is PDF/A-2b (archivable, fonts
 * embedded): only the DejaVu fonts from assets/fonts are used, never the
 * built-in PDF fonts. Pages are buffered so the footer can say "page X of Y".
 */
export type Doc = PDFKit.PDFDocument;

const here = path.dirname(fileURLToPath(import.meta.url));
// sources: <repo>/services/reports → <repo>/assets; build: dist/services/reports → dist/assets or <app>/assets
const FONT_DIRS = [path.resolve(here, '../../assets/fonts'), path.resolve(here, '../../../assets/fonts')];
let fontDir: string | null = null;

export function fontsDir(): string {
  if (fontDir) return fontDir;
  const found = FONT_DIRS.find((d) => existsSync(path.join(d, 'DejaVuSans.ttf')));
  if (!found) throw new Error(`report fonts not found (looked in ${FONT_DIRS.join(', ')}): copy assets/ next to dist/`);
  return (fontDir = found);
}

/** Font identifiers are the file paths (pdfkit caches fonts per path, so each is parsed once per document). */
export const font = {
  get sans(): string { return path.join(fontsDir(), 'DejaVuSans.ttf'); },
  get bold(): string { return path.join(fontsDir(), 'DejaVuSans-Bold.ttf'); },
  get mono(): string { return path.join(fontsDir(), 'DejaVuSansMono.ttf'); },
};
const MONO_ADVANCE = 0.6021; // DejaVu Sans Mono: 1233/2048 em per character

export const COLORS = {
  text: '#1a1a1a', muted: '#5f6368', rule: '#c4c8cc', headerBg: '#e6e9ed', zebra: '#f5f6f7',
  verdict: { passed: '#1a7f37', failed: '#c62828', error: '#b35c00', cancelled: '#5f6368' } as Record<VerdictName, string>,
};
export const verdictColor = (v: VerdictName | null | undefined): string => (v ? COLORS.verdict[v] : COLORS.muted);

export interface DocMeta { lang: Lang; title: string; subject: string; tenant: string; generatedAt: string; shortHash?: string | null; landscape?: boolean }
const metas = new WeakMap<Doc, DocMeta>();

/** XMP metadata is written unescaped by pdfkit: keep markup characters out of the document info. */
const xmpSafe = (s: string) => s.replace(/&/g, '+').replace(/</g, '‹').replace(/>/g, '›');

export function createDoc(meta: DocMeta): Doc {
  const created = new Date(meta.generatedAt);
  // the report's own time, from the caller's clock (pdfkit would otherwise take the wall clock)
  if (Number.isNaN(created.getTime())) throw new Error(`report metadata: generatedAt "${meta.generatedAt}" is not a time`);
  const doc = new PDFDocument({
    size: 'A4',
    layout: meta.landscape ? 'landscape' : 'portrait',
    margins: { top: 64, bottom: 58, left: 50, right: 50 },
    subset: 'PDF/A-2b',
    pdfVersion: '1.7',
    tagged: true,
    lang: meta.lang === 'en' ? 'en-GB' : 'de-DE',
    displayTitle: true,
    bufferPages: true,
    font: font.sans,
    info: {
      Title: xmpSafe(`${meta.title} – ${meta.tenant}`),
      Author: 'ernstfall',
      Subject: xmpSafe(meta.subject),
      Creator: 'ernstfall',
      CreationDate: created,
    },
  });
  metas.set(doc, meta);
  doc.fontSize(9).fillColor(COLORS.text);
  return doc;
}

export const contentWidth = (doc: Doc) => doc.page.width - doc.page.margins.left - doc.page.margins.right;
const bottom = (doc: Doc) => doc.page.height - doc.page.margins.bottom;

/** Starts a new page when less than `height` points are left. */
export function ensureSpace(doc: Doc, height: number): void {
  if (doc.y + height > bottom(doc)) doc.addPage();
  doc.x = doc.page.margins.left;
}

export function heading(doc: Doc, text: string, level: 1 | 2 = 1): void {
  const size = level === 1 ? 13 : 10.5;
  ensureSpace(doc, size + 60); // never a heading alone at the foot of a page
  doc.moveDown(level === 1 ? 0.8 : 0.5);
  doc.font(font.bold).fontSize(size).fillColor(COLORS.text).text(text, doc.page.margins.left, doc.y, { width: contentWidth(doc) });
  if (level === 1) {
    const y = doc.y + 1;
    doc.moveTo(doc.page.margins.left, y).lineTo(doc.page.width - doc.page.margins.right, y).lineWidth(0.6).strokeColor(COLORS.rule).stroke();
  }
  doc.moveDown(0.4).font(font.sans).fontSize(9).fillColor(COLORS.text);
}

export function paragraph(doc: Doc, text: string, opts: { size?: number; color?: string; bold?: boolean } = {}): void {
  doc.font(opts.bold ? font.bold : font.sans).fontSize(opts.size ?? 9).fillColor(opts.color ?? COLORS.text);
  ensureSpace(doc, doc.heightOfString(text, { width: contentWidth(doc) }));
  doc.text(text, doc.page.margins.left, doc.y, { width: contentWidth(doc) });
  doc.font(font.sans).fontSize(9).fillColor(COLORS.text);
}

/** Breaks text for the mono font at `width`: at spaces where possible, else anywhere (hashes, base64). */
export function monoLines(text: string, width: number, size: number): string {
  const max = Math.max(8, Math.floor((width * 0.98) / (size * MONO_ADVANCE)));
  const out: string[] = [];
  for (let line of text.split('\n')) {
    while (line.length > max) {
      const cut = line.lastIndexOf(' ', max);
      const at = cut > max / 2 ? cut : max;
      out.push(line.slice(0, at));
      line = line.slice(at).replace(/^ /, '');
    }
    out.push(line);
  }
  return out.join('\n');
}

export type Cell = string | { text: string; color?: string; bold?: boolean; mono?: boolean; size?: number };
export interface Column { header: string; width: number; mono?: boolean; align?: 'left' | 'right' | 'center' }
interface CellStyle { text: string; fontName: string; color: string; align: 'left' | 'right' | 'center'; size: number; mono: boolean }

const LETTER = /[\p{L}]/u;
const WORDCHAR = /[\p{L}\p{N}]/u;
const HYPHENS = new Set(['-', '\u2010']);

/**
 * The pieces of one line of text between the places where it may wrap: after
 * a run of spaces, and after a hyphen between a letter or digit and a letter
 * ("Wiederanlauf-Reihenfolge", not "2026-11-28" or "-v"). Each piece keeps
 * its trailing spaces or hyphen; joined they give the line back.
 */
export function breakPieces(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  const chars = [...line];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    cur += c;
    const next = chars[i + 1];
    if (next === undefined) break;
    const spaceEnds = /\s/.test(c) && !/\s/.test(next);
    const hyphenBreak = HYPHENS.has(c) && i > 0 && WORDCHAR.test(chars[i - 1]!) && LETTER.test(next);
    if (spaceEnds || hyphenBreak) {
      out.push(cur);
      cur = '';
    }
  }
  if (cur) out.push(cur);
  return out;
}

/** The widest piece (see breakPieces) in the doc's current font and size: the narrowest width the text fits without breaking a word. */
export function widestPiece(doc: Doc, text: string): number {
  let max = 0;
  for (const line of text.split('\n')) for (const p of breakPieces(line)) max = Math.max(max, doc.widthOfString(p.trimEnd()));
  return max;
}

/**
 * Wraps text to `width` in the doc's current font and size, only at spaces
 * and after hyphens (breakPieces). `fits` is false when a piece is wider than
 * the width; with `force` such a piece is then cut where it must (the last
 * resort, for a "word" longer than any column, such as a URL).
 */
export function wrapWords(doc: Doc, text: string, width: number, force = false): { text: string; fits: boolean } {
  const out: string[] = [];
  let fits = true;
  const w = (s: string) => doc.widthOfString(s.trimEnd());
  for (const para of text.split('\n')) {
    let line = '';
    // measured as pdfkit measures a line: its words one by one, each with its trailing space, the last without
    let lineWidth = 0;
    for (let piece of breakPieces(para)) {
      if (w(piece) > width) {
        fits = false;
        if (force) {
          if (line) out.push(line.trimEnd());
          line = '';
          let chunk = '';
          for (const ch of piece) {
            if (chunk && w(chunk + ch) > width) { out.push(chunk); chunk = ''; }
            chunk += ch;
          }
          piece = chunk;
          lineWidth = 0;
        }
      }
      // as pdfkit does, a word's trailing space counts (so a break falls where pdfkit would put it)
      if (line === '' || lineWidth + doc.widthOfString(piece) <= width) {
        line += piece;
        lineWidth += doc.widthOfString(piece);
      } else {
        out.push(line.trimEnd());
        line = piece;
        lineWidth = doc.widthOfString(piece);
      }
    }
    out.push(line.trimEnd());
  }
  return { text: out.join('\n'), fits };
}

/** Smallest size a cell's text is shrunk to so that its longest word fits its column. */
const MIN_CELL_SIZE = 5;
/** pdfkit may split our words finer (after "/"), losing a kerning pair: a little room so it never wraps a line again. */
const WRAP_SLACK = 0.25;

/**
 * A cell's font, size and text, wrapped to the column: never inside a word.
 * A word wider than the column makes the cell's font smaller (down to
 * MIN_CELL_SIZE) until it fits. Mono cells (hashes, signatures, paths) break
 * anywhere, as monoLines does.
 */
function style(doc: Doc, cell: Cell, col: Column, w: number, tableSize: number, header: boolean): CellStyle {
  const c = typeof cell === 'string' ? { text: cell } : cell;
  const mono = !header && (c.mono ?? col.mono ?? false);
  const fontName = header || c.bold ? font.bold : mono ? font.mono : font.sans;
  const base = {
    fontName,
    color: header ? COLORS.text : c.color ?? COLORS.text,
    align: col.align ?? 'left',
    mono,
  };
  let size = c.size ?? tableSize;
  if (mono) return { ...base, text: monoLines(c.text, w, size), size };
  const width = w - WRAP_SLACK;
  doc.font(fontName);
  for (;;) {
    doc.fontSize(size);
    const wrapped = wrapWords(doc, c.text, width, size <= MIN_CELL_SIZE);
    if (wrapped.fits || size <= MIN_CELL_SIZE) return { ...base, text: wrapped.text, size };
    // the size at which the widest word just fits, at least a quarter point smaller
    const ratio = width / widestPiece(doc, c.text);
    size = Math.max(MIN_CELL_SIZE, Math.min(size - 0.25, Math.floor(size * ratio * 4) / 4));
  }
}

/**
 * Column widths that let every column hold its longest word at the table's
 * size: a column too narrow for one of its words takes width from columns
 * with room to spare (more than their own longest word needs). What cannot be
 * given that way is left to the cell's smaller font (style()).
 */
export function fitColumns(doc: Doc, columns: Column[], rows: Cell[][], widths: number[], size: number, pad: number, header: boolean): number[] {
  const need = columns.map((col, i) => {
    let max = 0;
    const cells: { cell: Cell; header: boolean }[] = [...(header ? [{ cell: col.header as Cell, header: true }] : []), ...rows.map((r) => ({ cell: r[i] ?? '', header: false }))];
    for (const { cell, header: isHeader } of cells) {
      const c = typeof cell === 'string' ? { text: cell } : cell;
      if (!isHeader && (c.mono ?? col.mono)) continue;
      doc.font(isHeader || c.bold ? font.bold : font.sans).fontSize(c.size ?? size);
      max = Math.max(max, widestPiece(doc, c.text));
    }
    // one pathological "word" (a URL, a path) must not take the whole table: beyond 45 % of it, the font shrinks instead
    return Math.min(max + 2 * pad + WRAP_SLACK + 0.5, Math.max(widths[i]!, 0.45 * widths.reduce((a, b) => a + b, 0)));
  });
  const deficit = widths.map((w, i) => Math.max(0, need[i]! - w));
  const totalDeficit = deficit.reduce((a, b) => a + b, 0);
  if (totalDeficit === 0) return widths;
  const slack = widths.map((w, i) => (deficit[i]! > 0 ? 0 : Math.max(0, w - need[i]!)));
  const totalSlack = slack.reduce((a, b) => a + b, 0);
  if (totalSlack === 0) return widths;
  const moved = Math.min(totalDeficit, totalSlack);
  return widths.map((w, i) => w + (deficit[i]! / totalDeficit) * moved - (slack[i]! / totalSlack) * moved);
}

/**
 * A table with relative column widths (scaled to the page), wrapped cells and
 * automatic page breaks that repeat the header row. Cells wrap only at spaces
 * and hyphens: a word too long for its column widens the column (fitColumns)
 * or, where no other column can spare the room, is set smaller (style()).
 */
export function table(doc: Doc, columns: Column[], rows: Cell[][], opts: { size?: number; headerRow?: boolean } = {}): void {
  const size = opts.size ?? 8;
  const pad = 3;
  const left = doc.page.margins.left;
  const total = columns.reduce((s, c) => s + c.width, 0);
  const widths = fitColumns(doc, columns, rows, columns.map((c) => (c.width / total) * contentWidth(doc)), size, pad, opts.headerRow !== false);
  const measure = (cells: Cell[], header: boolean) => {
    const styled = columns.map((col, i) => style(doc, cells[i] ?? '', col, widths[i]! - 2 * pad, size, header));
    const h = Math.max(...styled.map((s, i) => doc.font(s.fontName).fontSize(s.size).heightOfString(s.text || ' ', { width: widths[i]! - 2 * pad })));
    return { styled, h: h + 2 * pad };
  };
  const draw = (cells: Cell[], header: boolean, zebra: boolean) => {
    const { styled, h } = measure(cells, header);
    if (doc.y + h > bottom(doc)) {
      doc.addPage();
      if (!header && opts.headerRow !== false) draw(columns.map((c) => c.header), true, false);
    }
    const y = doc.y;
    if (header || zebra) doc.rect(left, y, contentWidth(doc), h).fill(header ? COLORS.headerBg : COLORS.zebra);
    let x = left;
    styled.forEach((s, i) => {
      doc.font(s.fontName).fontSize(s.size).fillColor(s.color).text(s.text, x + pad, y + pad, { width: widths[i]! - 2 * pad, align: s.align });
      x += widths[i]!;
    });
    doc.moveTo(left, y + h).lineTo(left + contentWidth(doc), y + h).lineWidth(0.4).strokeColor(COLORS.rule).stroke();
    doc.x = left;
    doc.y = y + h;
  };
  if (opts.headerRow !== false) draw(columns.map((c) => c.header), true, false);
  rows.forEach((r, i) => draw(r, false, i % 2 === 1));
  doc.font(font.sans).fontSize(9).fillColor(COLORS.text).moveDown(0.5);
}

export interface KV { label: string; value: string; mono?: boolean; color?: string; bold?: boolean; size?: number }

/** Label/value pairs as a borderless two-column table. */
export function kvTable(doc: Doc, rows: KV[], opts: { labelWidth?: number; size?: number } = {}): void {
  const lw = opts.labelWidth ?? 0.3;
  table(doc, [{ header: '', width: lw }, { header: '', width: 1 - lw }],
    rows.map((r) => [{ text: r.label, color: COLORS.muted }, { text: r.value || '—', mono: r.mono, color: r.color, bold: r.bold, size: r.size }]),
    { size: opts.size ?? 8.5, headerRow: false });
}

/** Boxes with lines for name, role, date and signature (to be filled in on paper). */
export function signatureBlock(doc: Doc, titles: string[], lineLabels: string[]): void {
  const left = doc.page.margins.left;
  const gap = 18;
  const w = (contentWidth(doc) - gap * (titles.length - 1)) / titles.length;
  const h = 34 + lineLabels.length * 30;
  ensureSpace(doc, h + 10);
  const y0 = doc.y;
  titles.forEach((t, i) => {
    const x = left + i * (w + gap);
    doc.rect(x, y0, w, h).lineWidth(0.6).strokeColor(COLORS.rule).stroke();
    doc.font(font.bold).fontSize(9).fillColor(COLORS.text).text(t, x + 8, y0 + 8, { width: w - 16 });
    lineLabels.forEach((l, j) => {
      const ly = y0 + 34 + j * 30 + 16;
      doc.moveTo(x + 8, ly).lineTo(x + w - 8, ly).lineWidth(0.5).strokeColor(COLORS.muted).stroke();
      doc.font(font.sans).fontSize(7).fillColor(COLORS.muted).text(l, x + 8, ly + 2, { width: w - 16 });
    });
  });
  doc.x = left;
  doc.y = y0 + h + 10;
  doc.font(font.sans).fontSize(9).fillColor(COLORS.text);
}

/**
 * The commands of the verification annex, the same JSON paths as the API and
 * docs/verify-by-hand.md: a run's record is `.record` in the answer of
 * GET /runs/{id}/evidence (evidence.json) and the element of `.records[]` with
 * kind "run" and its id as subjectId in a bundle (bundle.json); the chain head
 * is the bundle's last record, `.records[-1]`. tests/integration/
 * verify-by-hand-instance.test.ts runs them on a test instance's exports.
 */
export function verifyCommands(subject: { runId?: string }): { export: string; save: string; hash: string; sig: string; verify: string } {
  const auth = 'curl -H "Authorization: Bearer $TOKEN"';
  if (!subject.runId) {
    return {
      export: `${auth} "$URL/api/v1/evidence/bundle" > bundle.json`,
      save: "jq -j '.records[-1].canonical' bundle.json > record.json",
      hash: 'sha256sum record.json',
      sig: "jq -r '.records[-1].signature' bundle.json | base64 -d > sig.bin",
      verify: VERIFY,
    };
  }
  return {
    export: `RUN=${subject.runId}\n${auth} "$URL/api/v1/runs/$RUN/evidence" > evidence.json\n${auth} "$URL/api/v1/evidence/bundle" > bundle.json`,
    // from evidence.json (first line), or the run's record out of the bundle (kind "run", subjectId = the run id) and from it
    save: "jq -j '.record.canonical' evidence.json > record.json\n"
      + 'jq --arg id "$RUN" \'.records[]|select(.kind=="run" and .subjectId==$id)\' bundle.json > run.json\n'
      + "jq -j '.canonical' run.json > record.json",
    hash: 'sha256sum record.json',
    sig: "jq -r '.record.signature' evidence.json | base64 -d > sig.bin\njq -r '.signature' run.json | base64 -d > sig.bin",
    verify: VERIFY,
  };
}
const VERIFY = 'openssl pkey -pubin -in key.pem -outform DER | sha256sum\nopenssl pkeyutl -verify -pubin -inkey key.pem -rawin -in record.json -sigfile sig.bin';

/** "How to verify": offline CLI, then by hand with jq, sha256sum and openssl (details: docs/verify-by-hand.md). */
export function howToVerify(doc: Doc, lang: Lang, subject: { hash?: string | null; runId?: string }): void {
  const h = subject.hash ? ` (${subject.hash.slice(0, 16)}…)` : '';
  const cmd = verifyCommands(subject);
  const cli = 'npm run evidence:verify -- bundle.json --trust key.pem';
  const run = subject.runId;
  const steps: [string, string | null][] = lang === 'en' ? [
    [run
      ? '1. Export the run\'s record (GET /api/v1/runs/{id}/evidence: the record is ".record") and the evidence bundle (GET /api/v1/evidence/bundle: records under ".records[]", the run\'s with kind "run" and the run id as subjectId):'
      : '1. Export the evidence bundle (GET /api/v1/evidence/bundle; records under ".records[]", the chain head — the record this report names — is the last one, ".records[-1]"):', cmd.export],
    ['2. Get the public key key.pem independently of it (npm run keys -- show on the server, or GET /api/v1/evidence/keys) and verify the bundle offline:', cli],
    [run
      ? '3. By hand: save the record\'s "canonical" value byte for byte, without a trailing newline, as record.json: from evidence.json (first line) or from the bundle, taking the run\'s record out as run.json (the other two lines); the same bytes:'
      : '3. By hand: save the head record\'s "canonical" value byte for byte, without a trailing newline, as record.json:', cmd.save],
    [`4. Its SHA-256 must equal the record hash${h}:`, cmd.hash],
    [run ? '5. Decode the record\'s signature (base64), from evidence.json or run.json:' : '5. Decode the record\'s signature (base64):', cmd.sig],
    ['6. The key\'s fingerprint must equal the one in this report; then the signature must verify ("Signature Verified Successfully"):', cmd.verify],
    ['7. The chain: each record\'s prevHash is the hash of the record before it in ".records[]"; the newest checkpoint (kept outside the database) must match the record with its number. Step by step: docs/verify-by-hand.md.', null],
  ] : [
    [run
      ? '1. Den Datensatz des Laufs (GET /api/v1/runs/{id}/evidence: der Datensatz steht unter „.record“) und das Nachweispaket exportieren (GET /api/v1/evidence/bundle: Datensätze unter „.records[]“, der des Laufs mit kind "run" und der Lauf-ID als subjectId):'
      : '1. Das Nachweispaket exportieren (GET /api/v1/evidence/bundle; Datensätze unter „.records[]“, der Kopf der Kette – der in diesem Bericht genannte Datensatz – ist der letzte, „.records[-1]“):', cmd.export],
    ['2. Den öffentlichen Schlüssel key.pem unabhängig davon beschaffen (npm run keys -- show auf dem Server oder GET /api/v1/evidence/keys) und das Paket offline prüfen:', cli],
    [run
      ? '3. Von Hand: den Wert „canonical“ des Datensatzes byteweise unverändert, ohne Zeilenumbruch am Ende, als record.json speichern: aus evidence.json (erste Zeile) oder aus dem Paket, dessen Datensatz des Laufs als run.json (die beiden anderen Zeilen); dieselben Bytes:'
      : '3. Von Hand: den Wert „canonical“ des Kopf-Datensatzes byteweise unverändert, ohne Zeilenumbruch am Ende, als record.json speichern:', cmd.save],
    [`4. Der SHA-256 muss dem Hash des Datensatzes entsprechen${h}:`, cmd.hash],
    [run ? '5. Die Signatur des Datensatzes (Base64) dekodieren, aus evidence.json oder run.json:' : '5. Die Signatur des Datensatzes (Base64) dekodieren:', cmd.sig],
    ['6. Der Fingerabdruck des Schlüssels muss dem in diesem Bericht entsprechen; dann muss die Signatur gültig sein („Signature Verified Successfully“):', cmd.verify],
    ['7. Die Kette: prevHash jedes Datensatzes ist der Hash des vorigen in „.records[]“; der neueste Checkpoint (außerhalb der Datenbank) muss mit dem Datensatz gleicher Nummer übereinstimmen. Schritt für Schritt: docs/verify-by-hand.md.', null],
  ];
  for (const [text, command] of steps) {
    paragraph(doc, text, { size: 8.5 });
    // 7.5 pt: every command fits one line of the page (a wrapped command would not paste)
    if (command) monoBox(doc, command, 7.5);
  }
}

/** Mono text over the full width on a shaded box (commands, signatures). */
export function monoBox(doc: Doc, text: string, size = 8): void {
  const w = contentWidth(doc) - 12;
  const lines = monoLines(text, w, size);
  doc.font(font.mono).fontSize(size);
  const h = doc.heightOfString(lines, { width: w }) + 6;
  ensureSpace(doc, h + 4);
  const y = doc.y + 1;
  doc.rect(doc.page.margins.left, y, contentWidth(doc), h).fill(COLORS.zebra);
  doc.fillColor(COLORS.text).text(lines, doc.page.margins.left + 6, y + 3, { width: w });
  doc.x = doc.page.margins.left;
  doc.y = y + h + 3;
  doc.font(font.sans).fontSize(9).fillColor(COLORS.text);
}

/** Key fingerprints and the newest checkpoint, as printed in every report. */
export function keysAndCheckpoint(doc: Doc, lang: Lang, keys: { keyId: string; fingerprint: string }[], cp: CheckpointRef | null): void {
  const L = labels(lang);
  if (keys.length) table(doc, [{ header: L.keyId, width: 1 }, { header: L.fingerprint, width: 3, mono: true }], keys.map((k) => [{ text: k.keyId, mono: true }, k.fingerprint]));
  kvTable(doc, cp
    ? [{ label: L.checkpoint, value: `${L.seq} ${cp.seq} · ${formatDateTime(cp.at, lang)} · ${L.keyId} ${cp.keyId}` }, { label: L.hash, value: cp.hash, mono: true }]
    : [{ label: L.checkpoint, value: L.noCheckpoint }], { labelWidth: 0.25 });
}

/** Shortens text with "…" until it fits `width` in the current font. */
export function fitText(doc: Doc, text: string, width: number): string {
  if (doc.widthOfString(text) <= width) return text;
  let t = text;
  while (t.length > 1 && doc.widthOfString(`${t}…`) > width) t = t.slice(0, -1);
  return `${t}…`;
}

function decorate(doc: Doc, meta: DocMeta): void {
  const L = labels(meta.lang);
  const range = doc.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i);
    const { left, right } = doc.page.margins;
    const w = doc.page.width - left - right;
    const savedBottom = doc.page.margins.bottom;
    doc.page.margins.bottom = 0; // writing inside the margin must not open a new page
    doc.markContent('Artifact', { type: 'Pagination' });
    doc.font(font.bold).fontSize(8.5).fillColor(COLORS.text).text(fitText(doc, meta.title, w * 0.5), left, 30, { lineBreak: false });
    doc.font(font.sans).fontSize(8.5).fillColor(COLORS.muted).text(fitText(doc, meta.tenant, w * 0.45), left + w * 0.55, 30, { width: w * 0.45, align: 'right', lineBreak: false });
    doc.moveTo(left, 44).lineTo(left + w, 44).lineWidth(0.5).strokeColor(COLORS.rule).stroke();
    const fy = doc.page.height - 40;
    doc.moveTo(left, fy - 6).lineTo(left + w, fy - 6).lineWidth(0.5).strokeColor(COLORS.rule).stroke();
    const foot = `${L.generatedAt} ${formatDateTime(meta.generatedAt, meta.lang)}${meta.shortHash ? ` · ${L.record} ${meta.shortHash}` : ''} · ernstfall`;
    doc.font(font.sans).fontSize(7.5).fillColor(COLORS.muted).text(fitText(doc, foot, w * 0.75), left, fy, { lineBreak: false });
    doc.text(fill(L.page, { x: i - range.start + 1, y: range.count }), left + w * 0.75, fy, { width: w * 0.25, align: 'right', lineBreak: false });
    doc.endMarkedContent();
    doc.page.margins.bottom = savedBottom;
  }
}

/** Adds header and footer to every page, ends the document and collects it (reports are small). */
export function renderToBuffer(doc: Doc): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
    try {
      const meta = metas.get(doc);
      if (meta) decorate(doc, meta);
      doc.end();
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
