/**
 * Alignment run configs (`*.palrun.yaml`). The schema's defaults are PAL's (from the paper's code:
 * stage 1 lr 2e-5, 100 warm-up steps, grad clip 10; DPO beta 0.1, lr 1e-6; LoRA r 16 / alpha 32
 * when enabled), so a config only states what differs. Paths stay as written (relative to the
 * config file); the engine resolves them.
 */
import type { Document } from 'yaml';
import { parseYamlText } from './documents';
import { problem } from './problems';
import type { Problem, RunConfig } from './types';
import { runConfigSchema } from './schemas';
import { fillDefaults, validateAgainstSchema, type Locator } from './validate';

export function isRunConfigFile(file: string): boolean {
  return /\.palrun\.ya?ml$/i.test(file);
}

export interface RunConfigDocument {
  readonly file: string;
  readonly text: string;
  yaml: Document.Parsed;
  /** With every default filled in; absent when the file has errors. */
  config?: RunConfig;
  problems: Problem[];
}

export function parseRunConfig(text: string, file: string): RunConfigDocument {
  const parsed = parseYamlText(text, file, 'palrun/syntax');
  const doc: RunConfigDocument = { file, text, yaml: parsed.doc, problems: parsed.problems };
  if (parsed.value === undefined) return doc;
  if (parsed.value === null || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
    doc.problems.push(
      problem(
        file,
        { line: 1, column: 1 },
        'error',
        'palrun/not-a-config',
        'A run config is a set of fields: model, data, stage1, stage2, … (see the PAL Studio README).',
      ),
    );
    return doc;
  }
  doc.problems.push(...validateAgainstSchema('palrun', parsed.value, file, parsed.locator));
  if (doc.problems.some((p) => p.severity === 'error')) return doc;
  const config = structuredClone(parsed.value) as RunConfig;
  fillDefaults('palrun', config);
  config.name ??= baseName(file);
  doc.config = config;
  doc.problems.push(...lintRunConfig(config, file, parsed.locator));
  return doc;
}

function baseName(file: string): string {
  return (file.split(/[\\/]/).pop() ?? file).replace(/\.palrun\.ya?ml$/i, '');
}

/** Values that are allowed but almost always a mistake for PAL. */
function lintRunConfig(c: RunConfig, file: string, locator: Locator): Problem[] {
  const out: Problem[] = [];
  if (c.stage2.lr > 1e-4) {
    out.push(
      problem(
        file,
        locator.locate(['stage2', 'lr']),
        'warning',
        'palrun/dpo-lr',
        `A DPO learning rate of ${c.stage2.lr} is very high (PAL uses 1e-6; TRL's default is 1e-6 too): the policy drifts from the reference and rewards collapse.`,
      ),
    );
  }
  if (c.stage1.lr > 1e-2) {
    out.push(
      problem(
        file,
        locator.locate(['stage1', 'lr']),
        'warning',
        'palrun/sft-lr',
        `A stage-1 learning rate of ${c.stage1.lr} is far above what fine-tuning uses (PAL: 2e-5).`,
      ),
    );
  }
  for (const stage of ['stage1', 'stage2'] as const) {
    const lora = c[stage].lora;
    if (lora && lora.alpha / lora.r > 8) {
      out.push(
        problem(
          file,
          locator.locate([stage, 'lora', 'alpha']),
          'warning',
          'palrun/lora-scale',
          `LoRA alpha/r = ${lora.alpha / lora.r}: a scale this large usually destabilises training (PAL: r 16, alpha 32).`,
        ),
      );
    }
  }
  if (c.stage2.rejected.temperature === 0 && (c.stage2.rejected.top_k > 0 || c.stage2.rejected.top_p < 1)) {
    out.push(
      problem(file, locator.locate(['stage2', 'rejected']), 'info', 'palrun/greedy', 'Temperature 0 decodes greedily, so top_k and top_p have no effect.'),
    );
  }
  return out;
}

/**
 * The stage settings the engine uses itself; every other setting of a stage block goes to that
 * stage's trainer job under its own name (`trainerSettings`). The one list of exceptions.
 */
export const ENGINE_STAGE_SETTINGS = {
  stage1: ['select_none_max'], // which select items the mixture holds (prepare)
  stage2: ['examples', 'rejected'], // which examples get a rejection; `rejected` is the generate job's decoding
} as const satisfies Record<'stage1' | 'stage2', readonly string[]>;

export type TrainingStageBlock = keyof typeof ENGINE_STAGE_SETTINGS;

/** What a stage block sends its trainer job: the block less the engine's own settings. */
export type TrainerSettings<S extends TrainingStageBlock> = Omit<RunConfig[S], (typeof ENGINE_STAGE_SETTINGS)[S][number]>;

/**
 * A stage block's trainer settings, by the schema's names: a setting added to the schema reaches
 * the job without another line here (the job contract, job_contract.json, then says whether the
 * trainer knows it). Keys the schema does not name (a typo the validator warned about) stay out.
 */
export function trainerSettings<S extends TrainingStageBlock>(config: RunConfig, stage: S): TrainerSettings<S> {
  const properties = runConfigSchema.properties[stage].properties;
  const engineOnly: readonly string[] = ENGINE_STAGE_SETTINGS[stage];
  const block = config[stage] as unknown as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(properties)
      .filter((k) => !engineOnly.includes(k) && block[k] !== undefined)
      .map((k) => [k, block[k]]),
  ) as TrainerSettings<S>;
}
