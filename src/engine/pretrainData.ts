/**
 * Pre-training data for the trainer's "lm" job: every dialogue of the corpora formatted as PAL's
 * dialogue block (the speaker tags the model will see in PAL's prompts), and a dialogue whose corpus
 * gives its speakers' personas (Synthetic-Persona-Chat) with one speaker's facts block before it,
 * as PAL's prompts show them (`pretrainText`), tokenized with our BPE
 * tokenizer, and written as one stream of little-endian uint16 token ids with <|endoftext|>
 * between dialogues. TypeScript owns text: the trainer only memory-maps the ids.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { dialogueBlock, factsAndDialogueText } from '../core/prompts';
import { BpeTokenizer, END_OF_TEXT } from '../core/tokenizer/bpe';
import { corpusFiles, corpusTurns, type CorpusTurn } from './tokenizerTrain';

/**
 * One dialogue as pre-training text. With personas, the facts of one speaker (the first speaker's
 * in even dialogues, the second's in odd ones, so both sides are seen; the other when one is
 * missing) head the dialogue and that speaker's turns are tagged as the persona's; the dialogue
 * ends on a partner's turn, as a prompt does before the reply. Without, the plain dialogue block.
 */
export function pretrainText(turns: readonly CorpusTurn[], index: number): string {
  const personas = turns[0]?.personas;
  const speakers = [...new Set(turns.map((t) => t.speaker))];
  const sides = [personas?.a, personas?.b];
  let side = index % 2;
  if (!sides[side]?.length) side = 1 - side;
  const facts = sides[side];
  const own = speakers[side];
  if (!facts?.length || own === undefined) return dialogueBlock(turns.map((t) => t.text));
  let end = turns.length;
  while (end > 1 && turns[end - 1]!.speaker === own) end--;
  return factsAndDialogueText(
    facts,
    turns.slice(0, end).map((t) => ({ own: t.speaker === own, text: t.text })),
  );
}

export interface EncodeResult {
  readonly out: string;
  readonly dialogues: number;
  /** Dialogues written with a facts block (their corpus gives personas). */
  readonly withFacts: number;
  readonly tokens: number;
  readonly seconds: number;
}

export async function encodeCorpora(options: {
  tokenizer: string;
  corpora: string;
  out: string;
  limitDialogues?: number;
  log?: (line: string) => void;
}): Promise<EncodeResult> {
  const t0 = Date.now();
  const tok = BpeTokenizer.fromJson(JSON.parse(await fs.readFile(path.join(options.tokenizer, 'tokenizer.json'), 'utf8')));
  const eos = tok.model.vocab.get(END_OF_TEXT);
  if (eos === undefined) throw new Error(`${options.tokenizer}/tokenizer.json has no ${END_OF_TEXT} token.`);
  if (tok.model.vocab.size > 65536) throw new Error(`A vocabulary of ${tok.model.vocab.size} does not fit in uint16 token files.`);
  const files = await corpusFiles(options.corpora);
  await fs.mkdir(path.dirname(path.resolve(options.out)), { recursive: true });
  const tmp = `${options.out}.${randomBytes(4).toString('hex')}.tmp`;
  const stream = createWriteStream(tmp);
  let dialogues = 0;
  let tokens = 0;
  let current = -1;
  let turns: CorpusTurn[] = [];
  let withFacts = 0;
  const flush = async () => {
    if (turns.length === 0) return;
    if (turns[0]!.personas) withFacts++;
    const ids = [...tok.encode(pretrainText(turns, dialogues)), eos];
    const buf = Buffer.alloc(ids.length * 2);
    ids.forEach((id, i) => buf.writeUInt16LE(id, i * 2));
    if (!stream.write(buf)) await new Promise<void>((r) => stream.once('drain', () => r()));
    tokens += ids.length;
    dialogues++;
    if (dialogues % 10000 === 0) options.log?.(`${dialogues} dialogues, ${tokens} tokens`);
    turns = [];
  };
  try {
    for await (const turn of corpusTurns(files, options.limitDialogues ?? Infinity)) {
      if (turn.dialogue !== current) {
        await flush();
        current = turn.dialogue;
      }
      turns.push(turn);
    }
    await flush();
    await new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await fs.rename(tmp, options.out);
  } catch (err) {
    stream.destroy();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  return { out: options.out, dialogues, withFacts, tokens, seconds: (Date.now() - t0) / 1000 };
}
