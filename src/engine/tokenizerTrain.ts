/**
 * Trains PAL Studio's byte-level BPE tokenizer on the dialogue corpora (gzip JSON lines, one
 * dialogue per line with "turns": [{speaker, text}]) and saves it as tokenizer.json +
 * tokenizer_config.json, the files transformers.js loads. See docs/tokenizer.md.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { dialoguePersonas } from '../core/importers/corpus';
import { END_OF_TEXT, toTokenizerConfig, toTokenizerJson, trainBpeFromCounts, WordCounter, type BpeModel } from '../core/tokenizer/bpe';

export interface TokenizerTrainOptions {
  /** Folder of *.jsonl.gz (or *.jsonl) corpora; every file is read, in name order. */
  corpora: string;
  /** Folder the tokenizer files are written into (created when missing). */
  out: string;
  vocabSize?: number;
  minFrequency?: number;
  /** Read at most this many dialogues in all (files in name order). */
  limitDialogues?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface TokenizerTrainResult {
  model: BpeModel;
  files: string[];
  dialogues: number;
  turns: number;
  distinctWords: number;
  readSeconds: number;
  trainSeconds: number;
}

/** The corpus files of a folder, in name order. */
export async function corpusFiles(folder: string): Promise<string[]> {
  const names = (await readdir(folder)).filter((n) => n.endsWith('.jsonl.gz') || n.endsWith('.jsonl')).sort();
  if (names.length === 0) throw new Error(`no *.jsonl.gz corpora in ${folder}`);
  return names.map((n) => path.join(folder, n));
}

/** A turn of a corpus dialogue; `personas` when the dialogue gives its speakers' (persona_a, persona_b). */
export interface CorpusTurn {
  readonly dialogue: number;
  readonly text: string;
  readonly speaker: string;
  readonly personas?: { readonly a?: readonly string[]; readonly b?: readonly string[] };
}

/** Streams every turn of the corpora, dialogue by dialogue. */
export async function* corpusTurns(files: readonly string[], limitDialogues = Infinity): AsyncGenerator<CorpusTurn> {
  let dialogue = 0;
  for (const file of files) {
    if (dialogue >= limitDialogues) return;
    const input = createReadStream(file);
    const stream = file.endsWith('.gz') ? input.pipe(createGunzip()) : input;
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    try {
      let lineNo = 0;
      for await (const line of lines) {
        lineNo++;
        if (line.trim() === '') continue;
        if (dialogue >= limitDialogues) break;
        let d: { turns?: { text?: unknown; speaker?: unknown }[]; persona_a?: unknown; persona_b?: unknown };
        try {
          d = JSON.parse(line) as typeof d;
        } catch (err) {
          throw new Error(`${file}:${lineNo}: not JSON (${(err as Error).message})`, { cause: err });
        }
        // Read as the importer reads them, so pre-training sees the facts that stage 1 will.
        const found = dialoguePersonas(d);
        const personas = found.a || found.b ? found : undefined;
        for (const t of d.turns ?? [])
          if (typeof t.text === 'string' && t.text !== '')
            yield { dialogue, text: t.text, speaker: typeof t.speaker === 'string' ? t.speaker : '', ...(personas ? { personas } : {}) };
        dialogue++;
      }
    } finally {
      lines.close();
      input.destroy();
    }
  }
}

/** Writes a file atomically: a temporary name in the same folder, then a rename. */
async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    await writeFile(tmp, text);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Writes tokenizer.json and tokenizer_config.json for a model into a folder. */
export async function saveTokenizer(model: BpeModel, folder: string): Promise<string[]> {
  await mkdir(folder, { recursive: true });
  const files = [path.join(folder, 'tokenizer.json'), path.join(folder, 'tokenizer_config.json')];
  await writeAtomic(files[0]!, `${JSON.stringify(toTokenizerJson(model), null, 2)}\n`);
  await writeAtomic(files[1]!, `${JSON.stringify(toTokenizerConfig(model), null, 2)}\n`);
  return files;
}

/** Reads the corpora, trains the tokenizer and saves it. */
export async function trainTokenizer(options: TokenizerTrainOptions): Promise<TokenizerTrainResult> {
  const log = options.log ?? (() => {});
  const files = await corpusFiles(options.corpora);
  const t0 = performance.now();
  const counter = new WordCounter([END_OF_TEXT]);
  let dialogues = 0;
  let turns = 0;
  for await (const { dialogue, text } of corpusTurns(files, options.limitDialogues)) {
    counter.add(text);
    dialogues = dialogue + 1;
    turns++;
  }
  const t1 = performance.now();
  log(`read ${dialogues} dialogues, ${turns} turns, ${counter.counts.size} distinct words in ${((t1 - t0) / 1000).toFixed(1)} s`);
  const model = trainBpeFromCounts(counter.counts, {
    ...(options.vocabSize !== undefined ? { vocabSize: options.vocabSize } : {}),
    ...(options.minFrequency !== undefined ? { minFrequency: options.minFrequency } : {}),
    specialTokens: [END_OF_TEXT],
  });
  const t2 = performance.now();
  log(`trained ${model.merges.length} merges, vocabulary ${model.vocab.size} in ${((t2 - t1) / 1000).toFixed(1)} s`);
  const written = await saveTokenizer(model, options.out);
  return { model, files: written, dialogues, turns, distinctWords: counter.counts.size, readSeconds: (t1 - t0) / 1000, trainSeconds: (t2 - t1) / 1000 };
}
