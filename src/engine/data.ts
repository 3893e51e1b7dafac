/**
 * File-level operations on the authoring formats, shared by the engine's RPC methods and the
 * `pal` CLI: validate files, import other data sets into PAL Studio's formats, export to other
 * tools. The formats themselves (parsing, checking, converting) live in src/core; this adds the
 * file system, and the rule that nothing a user wrote is ever overwritten unasked.
 */
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { promises as fs, lstatSync } from 'node:fs';
import * as path from 'node:path';
import { stringify as yamlStringify } from 'yaml';
import { decodeUtf8 } from '../core/textEncoding';
import { exportAxolotl, exportLlamaFactory, exportTrl, safeDatasetName, type LeftOut } from '../core/exporters/pairs';
import { fileKind, formatProblem, validateText, type Problem } from '../core/formats/index';
import { allProblems, records } from '../core/formats/jsonl';
import { parsePairs } from '../core/formats/pairs';
import { DEFAULT_PERSONA_LINT, parsePersona, type PersonaLintOptions } from '../core/formats/persona';
import type { DialogueExample, Persona } from '../core/formats/types';
import { exportCharacterCard, importCharacterCard } from '../core/importers/card';
import { importCorpus } from '../core/importers/corpus';
import { sampleExamples } from '../core/mixture';
import { guessImportFormat, type ImportFormat } from '../core/importers/guess';
import { importParlai } from '../core/importers/parlai';
import { importSyntheticPersonaChat } from '../core/importers/spc';
import { fetchedModelDir, fetchModel, isFetched, LABELLER_ENCODER } from './baseModels';
import { labelSemantically, loadEmbedder } from './embedder';

export async function validateFile(file: string, text?: string, lint: PersonaLintOptions = DEFAULT_PERSONA_LINT): Promise<Problem[]> {
  return validateText(file, text ?? (await readTextFile(file)), lint);
}

const SKIP_DIRS = new Set(['node_modules', '.git', 'dist', 'out']);

/** The PAL files named, with folders searched recursively (node_modules, .git and build output skipped). */
/** A writer's text file, UTF-8 (see decodeUtf8: another encoding is refused, naming where). */
export async function readTextFile(file: string): Promise<string> {
  return decodeUtf8(await fs.readFile(file), file);
}

export async function collectFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  // Folders by real path: a link back up the tree (a cycle) is walked once, not until ELOOP.
  const seen = new Set<string>();
  const walk = async (p: string, named: boolean): Promise<void> => {
    const stat = await fs.stat(p).catch((err: NodeJS.ErrnoException) => {
      // A link found while walking that leads nowhere (or to itself) holds no data file: skipped.
      // One named on the command line is the user's mistake: said in words.
      if (!named) return undefined;
      if (err.code === 'ELOOP') throw new Error(`${p}: a chain of symbolic links that leads back to itself`);
      if (err.code === 'ENOENT')
        throw new Error(`${p}: no such file or folder${lstatSync(p, { throwIfNoEntry: false }) ? ' (a symbolic link to something that is not there)' : ''}`);
      throw err;
    });
    if (!stat) return;
    if (stat.isDirectory()) {
      if (!named && SKIP_DIRS.has(path.basename(p))) return;
      const real = await fs.realpath(p);
      if (seen.has(real)) return;
      seen.add(real);
      const entries = await fs.readdir(p);
      for (const e of entries.sort()) await walk(path.join(p, e), false);
    } else if (named || fileKind(p)) {
      out.push(p);
    }
  };
  for (const p of paths) await walk(p, true);
  return out;
}

/**
 * Makes a folder (and its parents), or says in words why it cannot be made: a file in its place,
 * a link to somewhere that is not there, a file where a parent folder should be. `what` names the
 * folder for the user ("--out", "the run's output folder").
 */
export async function ensureFolder(dir: string, what = dir): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const link = await fs.readlink(dir).catch(() => undefined);
    if (link !== undefined && !(await fs.stat(dir).catch(() => undefined)))
      throw new Error(`${what} (${dir}) is a link to ${link}, which is not there: make that folder, or point ${what} somewhere else.`, { cause: err });
    const here = await fs.stat(dir).catch(() => undefined);
    if (here && !here.isDirectory())
      throw new Error(`${what} (${dir}) is a file, not a folder: choose a folder (it is made when it is not there).`, { cause: err });
    for (let parent = path.dirname(dir); parent !== path.dirname(parent); parent = path.dirname(parent)) {
      const st = await fs.stat(parent).catch(() => undefined);
      if (st && !st.isDirectory()) throw new Error(`${what} (${dir}) cannot be made: ${parent} is a file, not a folder.`, { cause: err });
      if (st) break;
    }
    throw new Error(`${what} (${dir}) cannot be made (${code ?? (err as Error).message}).`, { cause: err });
  }
}

/**
 * Writes a file atomically (a temporary file renamed into place: a crash never leaves half a
 * file) and, unless `force`, refuses to replace one that exists.
 */
export async function writeFileSafely(file: string, content: string, force: boolean): Promise<void> {
  if (!force) {
    const exists = await fs.stat(file).then(
      () => true,
      () => false,
    );
    if (exists) throw new Error(`${file} already exists; choose another name or pass --force to replace it.`);
  }
  await ensureFolder(path.dirname(file), `the folder of ${file}`);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await fs.writeFile(tmp, content, { flag: 'wx' });
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

export interface ImportOptions {
  readonly input: string;
  readonly from?: ImportFormat;
  readonly out: string;
  readonly force?: boolean;
  readonly split?: DialogueExample['split'];
  /** Keep only the first N examples (in file order): a development or evaluation subset. */
  readonly limit?: number;
  /** Keep N examples drawn with `seed` from the whole file (kept in file order): a subset that spans it. */
  readonly sample?: number;
  readonly seed?: number;
  /**
   * Keep every example whose response uses a persona sentence and as many drawn (with `seed`)
   * from the rest, before --sample/--limit: persona data answers "none" most of the time
   * (Synthetic-Persona-Chat: 82%), and a model trained on it learns to ignore its persona.
   */
  readonly balance?: boolean;
  /**
   * How the persona sentence each response relies on is labelled (docs/labeller.md): "words",
   * content-word overlap; "semantic", the overlap and then a sentence-embedding match where it found
   * none (all-MiniLM-L6-v2, fetched into the cache when asked for); "auto" (the default), semantic
   * when the encoder is already fetched (set-up fetches it), else words.
   */
  readonly labeller?: LabellerChoice;
  /** Progress of a fetch or of the embedding pass. */
  readonly onProgress?: (message: string) => void;
  /** The trainer's interpreter, which converts the encoder when "semantic" must fetch it. */
  readonly python?: () => Promise<string>;
}

/** The labellers `pal import --labeller` and the import request take. */
export const LABELLER_CHOICES = ['words', 'semantic', 'auto'] as const;
export type LabellerChoice = (typeof LABELLER_CHOICES)[number];

export interface ImportResult {
  readonly format: ImportFormat;
  readonly out: string;
  /** Examples written (dialogue imports) or 1 for a persona; 0: nothing was imported and `out` was not written. */
  readonly count: number;
  /** The split the examples were given, and why (dialogue imports). */
  readonly split?: { readonly split: DialogueExample['split']; readonly from: 'option' | 'file name' | 'default' };
  /** The labeller that labelled the examples (dialogue imports), and for how many of those written the semantic match named the sentence. */
  readonly labeller?: { readonly kind: 'words' | 'semantic'; readonly semanticLabels?: number };
  readonly problems: Problem[];
}

/**
 * The examples relabelled by the semantic match, with those it named a sentence for (the encoder
 * is loaded for the call and released after it).
 */
async function labelWithEncoder(
  examples: readonly DialogueExample[],
  options: ImportOptions,
): Promise<{ examples: DialogueExample[]; named: ReadonlySet<DialogueExample> }> {
  let folder = fetchedModelDir(LABELLER_ENCODER);
  if (!isFetched(LABELLER_ENCODER)) {
    if (!options.python) throw new Error(`The semantic labeller needs ${LABELLER_ENCODER}: run "pal model fetch ${LABELLER_ENCODER}" (set-up does).`);
    folder = await fetchModel(LABELLER_ENCODER, { python: await options.python(), ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  }
  options.onProgress?.(`Labelling ${examples.filter((e) => e.persona_index < 0).length} responses by meaning (${LABELLER_ENCODER})`);
  const embedder = await loadEmbedder(folder);
  try {
    const relabelled = await labelSemantically(examples, embedder);
    return { examples: relabelled, named: new Set(relabelled.filter((e, i) => e.persona_index !== examples[i]!.persona_index)) };
  } finally {
    await embedder.dispose();
  }
}

/** The split a file's name says ("train_both_original.txt", "valid_self.txt", "convai2_dev.txt"), if any. */
export function splitFromName(file: string): DialogueExample['split'] | undefined {
  const name = path.basename(file).toLowerCase();
  const says = (word: string) => new RegExp(`(^|[^a-z])${word}([^a-z]|$)`).test(name);
  if (says('train')) return 'train';
  if (says('valid') || says('dev') || says('val')) return 'valid';
  if (says('test')) return 'test';
  return undefined;
}

/** Whether two paths name one file (the same path, a link to it, or a hard link): an import must never write over its input. */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([fs.stat(a).catch(() => undefined), fs.stat(b).catch(() => undefined)]);
  return x !== undefined && y !== undefined && x.dev === y.dev && x.ino === y.ino;
}

export async function importFile(options: ImportOptions): Promise<ImportResult> {
  if (await sameFile(options.input, options.out)) {
    throw new Error(`${options.out} is the file being imported (${options.input}): importing over it would lose it. Choose another --out.`);
  }
  const raw = await fs.readFile(options.input);
  // Corpora travel gzip-compressed (*.jsonl.gz); the magic bytes decide, not the name.
  const text = decodeUtf8(raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw, options.input);
  const format = options.from ?? guessImportFormat(text, options.input.replace(/\.gz$/i, ''));
  if (!format) {
    throw new Error(`${options.input}: cannot tell what this file is; say it with --from persona-chat, spc, corpus or card.`);
  }
  if (format === 'card') {
    const { persona, problems } = importCharacterCard(text, options.input);
    if (!persona) return { format, out: options.out, count: 0, problems };
    expectKind(options.out, 'persona', '.persona.yaml');
    await writeFileSafely(options.out, serialisePersona(persona, options.out), options.force ?? false);
    return { format, out: options.out, count: 1, problems };
  }
  expectKind(options.out, 'dialogues', '.dialogues.jsonl');
  // The split: as asked, else as the file's name says (ParlAI's train_*.txt gave "valid" before).
  const named = splitFromName(options.input.replace(/\.gz$/i, ''));
  const chosen = options.split ?? named;
  const split = chosen ? { split: chosen } : {};
  const imported =
    format === 'persona-chat'
      ? importParlai(text, options.input, split)
      : format === 'corpus'
        ? importCorpus(text, options.input, split)
        : importSyntheticPersonaChat(text, options.input, split);
  const { problems } = imported;
  const choice = options.labeller ?? 'auto';
  const semantic = choice === 'semantic' || (choice === 'auto' && isFetched(LABELLER_ENCODER));
  const byMeaning = new Set<DialogueExample>();
  const label = async (xs: readonly DialogueExample[]) => {
    if (!semantic) return [...xs];
    const done = await labelWithEncoder(xs, options);
    for (const e of done.named) byMeaning.add(e);
    return done.examples;
  };
  // --balance draws by label, so every example is labelled first; otherwise only those kept are.
  const pool = options.balance ? balanceLabels(await label(imported.examples), options.seed ?? 42) : imported.examples;
  const drawn = options.sample !== undefined ? sampleExamples(pool, options.sample, options.seed ?? 42) : pool;
  const kept = options.limit !== undefined ? drawn.slice(0, options.limit) : drawn;
  const examples = options.balance ? kept : await label(kept);
  // Nothing to import: no empty file is left to block the next try.
  if (examples.length === 0) return { format, out: options.out, count: 0, problems };
  // The split the importer gave (its own default when neither the option nor the name said one).
  const splitInfo = { split: examples[0]!.split, from: options.split ? ('option' as const) : named ? ('file name' as const) : ('default' as const) };
  await writeFileSafely(options.out, examples.map((e) => `${JSON.stringify(e)}\n`).join(''), options.force ?? false);
  // Counted among the examples written: a balanced draw labels the whole file first.
  const labeller = semantic ? { kind: 'semantic' as const, semanticLabels: examples.filter((e) => byMeaning.has(e)).length } : { kind: 'words' as const };
  return { format, out: options.out, count: examples.length, split: splitInfo, labeller, problems };
}

/** Every labelled example and as many unlabelled ones, drawn with `seed`, in file order. */
export function balanceLabels(examples: readonly DialogueExample[], seed: number): DialogueExample[] {
  const labelled = (e: DialogueExample) => e.persona_index >= 0;
  const named = examples.filter(labelled).length;
  const none = new Set(
    sampleExamples(
      examples.filter((e) => !labelled(e)),
      named,
      seed,
    ),
  );
  return examples.filter((e) => labelled(e) || none.has(e));
}

function expectKind(out: string, kind: ReturnType<typeof fileKind>, suffix: string): void {
  if (fileKind(out) !== kind) throw new Error(`${out}: the output of this import is a ${kind} file, so its name should end in ${suffix}.`);
}

function serialisePersona(persona: Persona, out: string): string {
  return /\.json$/i.test(out) ? `${JSON.stringify(persona, null, 2)}\n` : yamlStringify(persona, { lineWidth: 0 });
}

export type ExportTarget = 'trl' | 'llama-factory' | 'axolotl' | 'card';

export interface ExportOptions {
  readonly input: string;
  readonly to: ExportTarget;
  /** A folder for pair exports (several files), a .json file for a card. */
  readonly out: string;
  readonly force?: boolean;
  /** Dataset name for pair exports (default: the input's name). */
  readonly name?: string;
}

export interface ExportResult {
  readonly to: ExportTarget;
  readonly written: string[];
  readonly exported: number;
  readonly leftOut?: LeftOut;
  readonly usage: string;
  /** Lines of the input that could not be read (not exported). */
  readonly problems: Problem[];
}

export async function exportFile(options: ExportOptions): Promise<ExportResult> {
  const text = await readTextFile(options.input);
  const force = options.force ?? false;
  if (options.to === 'card') {
    if (fileKind(options.input) !== 'persona') throw new Error(`${options.input}: only a persona file (*.persona.yaml or .json) exports to a Character Card.`);
    const doc = parsePersona(text, options.input);
    if (!doc.persona) throw new Error(`${options.input} has errors; fix them first:\n${doc.problems.map(formatProblem).join('\n')}`);
    await writeFileSafely(options.out, exportCharacterCard(doc.persona), force);
    return {
      to: 'card',
      written: [options.out],
      exported: 1,
      usage: 'A Character Card V2/V3 JSON file, for character chat front-ends.',
      problems: doc.problems,
    };
  }
  if (fileKind(options.input) !== 'pairs') throw new Error(`${options.input}: only a preference-pairs file (*.pairs.jsonl) exports to ${options.to}.`);
  const doc = parsePairs(text, options.input);
  const pairs = records(doc).map((r) => r.value);
  const name = safeDatasetName(options.name ?? path.basename(options.input).replace(/\.pairs\.jsonl$/i, ''));
  const unreadable = allProblems(doc).filter((p) => p.severity === 'error');
  // Each unreadable line counts once, however many problems it has.
  const lines = new Set(unreadable.map((p) => p.line)).size;
  const result =
    options.to === 'trl'
      ? exportTrl(pairs, name, lines)
      : options.to === 'llama-factory'
        ? exportLlamaFactory(pairs, name, lines)
        : exportAxolotl(pairs, name, lines);
  const written: string[] = [];
  for (const f of result.files) {
    const target = path.join(options.out, ...f.path.split('/'));
    await writeFileSafely(target, f.content, force);
    written.push(target);
  }
  return { to: options.to, written, exported: result.exported, leftOut: result.leftOut, usage: result.usage, problems: unreadable };
}
