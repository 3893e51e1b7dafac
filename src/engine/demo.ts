/**
 * The PAL demo (`npm start`, `pal demo`): a short alignment run of the embedded default model on
 * the sample project the repository ships, select then generate on its held-out examples, and a
 * before/after table with the HTML report. Headless, a few minutes on 2 CPU cores.
 *
 * The sample project is copied afresh into the demo folder each time (the original is never
 * written to), with its run config's model.base pointed at the default model.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { formatEvalTable, type JsonReport } from './eval';
import { runAlignment, type RunProgress, type RunResult } from './pipeline';

export interface DemoOptions {
  readonly python: string;
  /** The sample project (samples/studio). */
  readonly sample: string;
  /** Its run config, relative to the sample project. */
  readonly config?: string;
  /** The model to align further (a folder): the aligned pretrained model, or models/pal-default. */
  readonly model: string;
  /** Run-config settings that suit this model, over the sample's (which suit the embedded model). */
  readonly runSettings?: Readonly<Record<string, unknown>>;
  /** Where the copy and its run go (replaced on each demo). */
  readonly out: string;
  readonly nli?: string;
  /** Tokens per training sequence in both stages (the sample's run config says 256). */
  readonly maxLength?: number;
  readonly onProgress?: (p: RunProgress) => void;
  readonly onLog?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface DemoExample {
  readonly id: string;
  readonly personas: readonly string[];
  readonly history: readonly string[];
  readonly reference: string;
  readonly before: { readonly response: string; readonly selected?: number };
  readonly after: { readonly response: string; readonly selected?: number };
  readonly goldPersona?: number;
}

export interface DemoResult {
  readonly run: RunResult;
  readonly seconds: number;
  readonly report?: JsonReport;
  readonly table?: string;
  readonly html?: string;
  readonly examples: readonly DemoExample[];
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const t0 = Date.now();
  if (!(await fs.stat(path.join(o.model, 'config.json')).catch(() => undefined))) {
    throw new Error(
      `${o.model}: no model there (no config.json). The default model ships in models/pal-default; "npm run make-model" makes it again, or pass --model <folder>.`,
    );
  }
  const project = path.join(path.resolve(o.out), 'project');
  await fs.rm(project, { recursive: true, force: true });
  await fs.mkdir(path.dirname(project), { recursive: true });
  await fs.cp(path.resolve(o.sample), project, { recursive: true, filter: (src) => !/[\\/](runs|\.pal-studio)([\\/]|$)/.test(path.relative(o.sample, src)) });
  const configName = o.config ?? (await fs.readdir(project)).find((f) => /\.palrun\.ya?ml$/i.test(f));
  if (!configName) throw new Error(`${o.sample}: the sample project has no *.palrun.yaml`);
  const configFile = path.join(project, configName);
  const doc = parseDocument(await fs.readFile(configFile, 'utf8'));
  doc.setIn(['model', 'base'], path.resolve(o.model));
  for (const [key, value] of Object.entries(o.runSettings ?? {})) {
    if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) doc.setIn([key, k], doc.createNode(v));
    else doc.setIn([key], value);
  }
  if (o.maxLength) for (const stage of ['stage1', 'stage2']) doc.setIn([stage, 'max_length'], o.maxLength);
  await fs.writeFile(configFile, doc.toString());

  const run = await runAlignment(configFile, {
    python: o.python,
    ...(o.nli ? { nli: o.nli } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.onLog ? { onLog: o.onLog } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const seconds = (Date.now() - t0) / 1000;
  if (run.outcome !== 'done' || !run.report) return { run, seconds, examples: [] };
  const report = JSON.parse(await fs.readFile(run.report, 'utf8')) as JsonReport & { examples?: unknown };
  delete report.examples;
  const rows = async (name: string) =>
    (await fs.readFile(path.join(run.runDir, 'eval', name), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map(
        (l) =>
          JSON.parse(l) as {
            id: string;
            prediction: string;
            reference: string;
            personas: string[];
            selected?: number;
            gold_persona?: number;
            history?: string[];
          },
      );
  const before = await rows('predictions-before.jsonl');
  const after = await rows('predictions-after.jsonl');
  const histories = new Map<string, string[]>();
  for (const f of await fs.readdir(path.join(project, 'data'))) {
    if (!f.endsWith('.dialogues.jsonl')) continue;
    for (const line of (await fs.readFile(path.join(project, 'data', f), 'utf8')).split('\n').filter(Boolean)) {
      const ex = JSON.parse(line) as { id?: string; history: string[] };
      if (ex.id) histories.set(ex.id, ex.history);
    }
  }
  const examples = after.map((a, i) => ({
    id: a.id,
    personas: a.personas,
    history: histories.get(a.id) ?? [],
    reference: a.reference,
    before: { response: before[i]?.prediction ?? '', ...(before[i]?.selected !== undefined ? { selected: before[i]!.selected! } : {}) },
    after: { response: a.prediction, ...(a.selected !== undefined ? { selected: a.selected } : {}) },
    ...(a.gold_persona !== undefined ? { goldPersona: a.gold_persona } : {}),
  }));
  return { run, seconds, report, table: formatEvalTable(report), html: run.report.replace(/\.json$/, '.html'), examples };
}

/** A few examples as text: the persona each model selected, and what each said. */
export function formatDemoExamples(examples: readonly DemoExample[], count = 3): string {
  const persona = (ex: DemoExample, k: number | undefined) => (k === undefined ? '(no selection)' : k < 0 ? 'none' : `${k + 1}. ${ex.personas[k] ?? '?'}`);
  return examples
    .slice(0, count)
    .map((ex) =>
      [
        `  User: ${ex.history.at(-1) ?? ''}`,
        `    before  [${persona(ex, ex.before.selected)}] ${ex.before.response}`,
        `    after   [${persona(ex, ex.after.selected)}] ${ex.after.response}`,
        `    written [${persona(ex, ex.goldPersona)}] ${ex.reference}`,
      ].join('\n'),
    )
    .join('\n\n');
}
