import { EXAMPLES, extensionOf, showPath, type FileSeen } from './inventory.js';
import { globMatch } from './repository.js';

/**
 * Ransomware indicators on a restored file tree, from names, the first 32
 * bytes and the entropy of the first 8 KiB of each file: never more content.
 * Compressed formats (docx, zip, jpg, png, mp4 …) are near-random by nature;
 * they are judged by their magic bytes, not their entropy.
 */

/** Ransom notes of known families (file names, lower case), and the common phrasings. */
const NOTES: RegExp[] = [
  /^@please_read_me@\.txt$/, /^@wanadecryptor@\.(exe|bmp)$/, // WannaCry
  /^_?locky_recover_instructions\.(txt|bmp)$/, /^_help_instructions\.(html|txt|bmp)$/, // Locky
  /^_readme\.txt$/, // STOP/Djvu
  /^ryukreadme\.(txt|html)$/, // Ryuk
  /^restore-my-files\.txt$/, /^[a-z0-9]{9}\.readme\.txt$/, // LockBit
  /^[a-z0-9]{5,10}-readme\.txt$/, // REvil/Sodinokibi
  /^info\.hta$/, // Phobos
  /^files encrypted\.txt$/, // Dharma
  /^decrypt-files\.(txt|html)$/, // Maze
  /^recover-[a-z0-9]+-files\.txt$/, // BlackCat
  /^akira_readme\.txt$/, /^instructions_read_me\.txt$/, /^clopreadme\.txt$/, /^!_read_me\.rtf$/, /^conti_readme\.txt$/,
  /^#? ?decrypt my files ?#?\.(txt|html|url|vbs)$/, // Cerber
  /^(!+|_|#)?(how[ _-]?to[ _-]?(decrypt|restore|recover|unlock|get[ _-]?back)|decrypt[ _-]?(instructions?|my[ _-]?files|your[ _-]?files|files)|your[ _-]?files[ _-]?(are|were)[ _-]?encrypted|help[ _-]?(to[ _-]?)?decrypt|help[ _-]?restore|restore[ _-]?(your[ _-]?|my[ _-]?)?files|recovery[ _-]?instructions|read[ _-]?me[ _-]?(to|for)[ _-]?decrypt|ransom[ _-]?note)[^/]*\.(txt|html?|hta|rtf|url|png|bmp)$/,
];

/** Extensions ransomware families append (lower case, without the dot): none is a format anybody uses on purpose. */
const EXTENSIONS = new Set([
  'locky', 'zepto', 'odin', 'thor', 'aesir', 'osiris', 'cerber', 'cerber2', 'cerber3', 'crypt', 'crypted', 'cryptolocker', 'crypz', 'cryp1',
  'encrypted', 'locked', 'lockbit', 'conti', 'ryk', 'ryuk', 'wncry', 'wnry', 'wcry', 'wncryt', 'djvu', 'djvuu', 'phobos', 'dharma',
  'arena', 'wallet', 'akira', 'basta', 'royal_w', 'hive', 'babyk', 'clop', 'cl0p', 'medusa', 'rhysida', '8base', 'blackcat', 'lockfile',
  'makop', 'mallox', 'ragnar', 'sage', 'shade', 'globe', 'petya', 'nemty', 'egregor', 'avaddon', 'darkside', 'sodinokibi', 'revil',
]);

/** Formats told by their first bytes. */
const MAGIC: [family: string, hexPrefixes: string[], offset?: number][] = [
  ['pdf', ['25504446']],
  ['zip', ['504b0304', '504b0506', '504b0708']],
  ['ole', ['d0cf11e0a1b11ae1']],
  ['png', ['89504e470d0a1a0a']],
  ['jpeg', ['ffd8ff']],
  ['gif', ['474946383761', '474946383961']],
  ['tiff', ['49492a00', '4d4d002a']],
  ['bmp', ['424d']],
  ['gzip', ['1f8b']],
  ['zstd', ['28b52ffd']],
  ['xz', ['fd377a585a00']],
  ['bzip2', ['425a68']],
  ['7z', ['377abcaf271c']],
  ['rar', ['526172211a07']],
  ['rtf', ['7b5c727466']],
  ['riff', ['52494646']],
  ['mp3', ['494433', 'fffb', 'fff3', 'fff2']],
  ['sqlite', ['53514c69746520666f726d6174203300']],
  ['kdbx', ['03d9a29a']],
  ['exe', ['4d5a']],
  // `openssl enc` output (and tools built on it): the salt header, then ciphertext
  ['openssl-encrypted', ['53616c7465645f5f']],
  ['ftyp', ['66747970'], 4],
];

/** What an extension claims the content is. */
const CLAIMS: Record<string, string> = {
  pdf: 'pdf', docx: 'zip', xlsx: 'zip', pptx: 'zip', docm: 'zip', xlsm: 'zip', odt: 'zip', ods: 'zip', odp: 'zip', zip: 'zip', epub: 'zip', vsdx: 'zip', jar: 'zip',
  doc: 'ole', xls: 'ole', ppt: 'ole', msg: 'ole', vsd: 'ole', pub: 'ole', msi: 'ole',
  png: 'png', jpg: 'jpeg', jpeg: 'jpeg', gif: 'gif', tif: 'tiff', tiff: 'tiff', bmp: 'bmp', gz: 'gzip', tgz: 'gzip', zst: 'zstd', xz: 'xz', bz2: 'bzip2',
  '7z': '7z', rar: 'rar', rtf: 'rtf', wav: 'riff', avi: 'riff', webp: 'riff', mp3: 'mp3', mp4: 'ftyp', m4a: 'ftyp', mov: 'ftyp', heic: 'ftyp',
  sqlite: 'sqlite', kdbx: 'kdbx', exe: 'exe', dll: 'exe',
};
/** Text formats: their bytes are far from random. */
const TEXT = new Set(['txt', 'csv', 'tsv', 'xml', 'html', 'htm', 'json', 'md', 'log', 'sql', 'ini', 'cfg', 'conf', 'yaml', 'yml', 'eml', 'svg', 'tex', 'ics', 'vcf', 'css', 'js', 'ts', 'py', 'sh', 'bat', 'ps1', 'php', 'java', 'c', 'h', 'gml', 'xsd', 'xsl']);

/** Signatures no text file begins with by chance. */
const STRONG = new Set(['zip', 'ole', 'png', 'jpeg', 'gif', 'gzip', 'zstd', 'xz', '7z', 'rar', 'sqlite', 'kdbx', 'tiff']);

/** Near-random: ciphertext and compressed data reach ~7.95 bits per byte over 8 KiB; text stays below ~6, office XML and binaries below ~7. */
const RANDOM_ENTROPY = 7.5;
const TEXT_RANDOM_ENTROPY = 6.8;
/** Too few bytes to judge the entropy of. */
const MIN_BYTES = 256;

export function familyOf(head: string): string | null {
  for (const [family, prefixes, offset = 0] of MAGIC) {
    if (prefixes.some((p) => head.startsWith(p, offset * 2))) return family;
  }
  return null;
}

export interface IndicatorConfig {
  /** Further ransom note names (globs on the file name). */
  notes?: string[];
  /** Further ransomware extensions. */
  extensions?: string[];
  /** From how many files that look encrypted the test fails (default 3). */
  encryptedMin?: number;
}

export interface Tally { count: number; examples: string[] }
export interface IndicatorResult {
  notes: Tally;
  extensions: Tally;
  encrypted: Tally;
  mismatch: Tally;
  /** Files whose name claims a format that can be judged. */
  judged: number;
}

const tally = (): Tally => ({ count: 0, examples: [] });
function add(t: Tally, path: string): void {
  t.count++;
  if (t.examples.length < EXAMPLES) t.examples.push(showPath(path));
}

/** Sees every restored file once (streamed from the inventory) and keeps counts and a few example paths. */
export class IndicatorScan {
  private readonly r: IndicatorResult = { notes: tally(), extensions: tally(), encrypted: tally(), mismatch: tally(), judged: 0 };
  private readonly extraNotes: string[];
  private readonly extraExt: Set<string>;

  constructor(config: IndicatorConfig = {}) {
    this.extraNotes = (config.notes ?? []).map((n) => n.toLowerCase());
    this.extraExt = new Set((config.extensions ?? []).map((e) => e.replace(/^\./, '').toLowerCase()));
  }

  /** Counts what the file shows and returns how it was judged. */
  see(f: FileSeen): ReturnType<typeof judge> {
    const name = f.path.slice(f.path.lastIndexOf('/') + 1).toLowerCase();
    if (NOTES.some((re) => re.test(name)) || this.extraNotes.some((g) => globMatch(g, name))) add(this.r.notes, f.path);
    const ext = extensionOf(f.path);
    if (ext && (EXTENSIONS.has(ext) || this.extraExt.has(ext))) add(this.r.extensions, f.path);
    const verdict = judge(ext, f);
    if (verdict !== 'unjudged') this.r.judged++;
    if (verdict === 'encrypted') add(this.r.encrypted, f.path);
    else if (verdict === 'mismatch') add(this.r.mismatch, f.path);
    return verdict;
  }

  result(): IndicatorResult {
    return this.r;
  }
}

/** One file against the format its name claims. */
export function judge(ext: string, f: Pick<FileSeen, 'head' | 'entropy' | 'size'>): 'ok' | 'encrypted' | 'mismatch' | 'unjudged' {
  const family = familyOf(f.head);
  if (family === 'openssl-encrypted') return 'encrypted';
  const claim = CLAIMS[ext];
  const randomish = f.size >= MIN_BYTES;
  if (claim) {
    if (f.size === 0) return 'ok';
    if (family === claim || (claim === 'mp3' && family === null && f.entropy < RANDOM_ENTROPY)) return 'ok';
    if (randomish && f.entropy >= RANDOM_ENTROPY) return 'encrypted';
    return 'mismatch';
  }
  if (TEXT.has(ext)) {
    // only long binary signatures: "BM…" or "MZ…" may begin a line of text
    if (family && STRONG.has(family)) return randomish && f.entropy >= RANDOM_ENTROPY ? 'encrypted' : 'mismatch';
    return randomish && f.entropy >= TEXT_RANDOM_ENTROPY ? 'encrypted' : 'ok';
  }
  return 'unjudged';
}
