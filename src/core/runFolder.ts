/**
 * A run and its folder, the one place for them: the stages in order, what each is called where,
 * and the folder's state.json (the stages done) with its one parser. The engine's pipeline writes
 * the folder; the engine's protocol, the extension's status bar and the dashboard read these
 * names from here, so a new stage is added once.
 */

/** The pipeline's stages in order. */
export const RUN_STAGES = ['prepare', 'stage1', 'generate', 'stage2', 'export', 'evaluate'] as const;
export type RunStage = (typeof RUN_STAGES)[number];
/** The stages that train (and write a metrics.jsonl). */
export type TrainingStage = 'stage1' | 'stage2';

/** Each stage's names: `title` in the dashboard's list, `progress` in "runs going on", `short` in the status bar. */
export const STAGE_NAMES: Readonly<Record<RunStage, { readonly title: string; readonly progress: string; readonly short: string }>> = {
  prepare: { title: 'Prepare the data', progress: 'Preparing', short: 'preparing' },
  stage1: { title: 'Stage 1: persona-aware learning (SFT)', progress: 'Stage 1 (persona-aware learning)', short: 'stage 1' },
  generate: { title: 'Sample rejected responses', progress: 'Sampling rejected responses', short: 'sampling' },
  stage2: { title: 'Stage 2: persona alignment (DPO)', progress: 'Stage 2 (DPO)', short: 'stage 2' },
  export: { title: 'Export for inference', progress: 'Exporting', short: 'exporting' },
  evaluate: { title: 'Evaluate before vs after', progress: 'Evaluating (before vs after)', short: 'evaluating' },
};

/** The run folder's record of the stages done, beside the stages' own folders. */
export const RUN_STATE_FILE = 'state.json';

export interface RunState {
  readonly done: readonly RunStage[];
  /** The run config the run was started from (absolute); null in a state.json that lacks it. */
  readonly config: string | null;
  readonly startedAt: string | null;
}

const REDO = 'It records which stages of the run are done; delete it to redo the run from the start (checkpoints are kept).';

/** A state.json's text, checked: anything else is an error naming the file and what to do. */
export function parseRunState(text: string, file: string): RunState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}:1: not valid JSON (${(err as Error).message}). ${REDO}`, { cause: err });
  }
  const v = value as Record<string, unknown> | null;
  const stages: readonly string[] = RUN_STAGES;
  if (typeof v !== 'object' || v === null || !Array.isArray(v.done) || !v.done.every((d) => typeof d === 'string' && stages.includes(d))) {
    throw new Error(`${file}:1: 'done' must be a list of stages (${RUN_STAGES.join(', ')}). ${REDO}`);
  }
  return {
    done: RUN_STAGES.filter((s) => (v.done as unknown[]).includes(s)),
    config: typeof v.config === 'string' ? v.config : null,
    startedAt: typeof v.startedAt === 'string' ? v.startedAt : null,
  };
}
