/**
 * The JSON-RPC protocol between PAL Studio's engine process and its clients (the VS Code
 * extension). This module is the single source of the method names and payload types: the
 * engine's server and the extension's client both import it, so the two sides cannot drift.
 *
 * Transport: vscode-jsonrpc over the engine's stdin/stdout. The engine writes nothing else to
 * stdout; its logs travel as `engine/log` notifications, and stderr carries only what Node itself
 * prints when something goes badly wrong (which the client logs as errors).
 */
import { NotificationType, NotificationType0, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { NoRepeatSource } from '../core/decoding';
import type { Problem } from '../core/formats/types';
import type { RunStage, RunState, TrainingStage } from '../core/runFolder';
import type { EvalRow, MetricRecord } from '../core/runHistory';
import type { RunVerdict } from '../core/runVerdict';
import type { LeftOut } from '../core/exporters/pairs';
// The engine's own result types, where the engine and its clients must agree on their shape.
import type { ImportResult, LabellerChoice } from './data';

/** Bumped on any incompatible change; the client refuses an engine that speaks another version. */
export const ENGINE_PROTOCOL_VERSION = 1;

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export interface EngineSettings {
  /** Interpreter chosen by the user; empty or absent means "search the usual places". */
  readonly pythonPath?: string;
  /**
   * False in an untrusted (Restricted Mode) workspace: the engine then starts no Python at all,
   * since an interpreter path or a trainer could come from the untrusted workspace.
   */
  readonly allowPython: boolean;
  readonly logLevel: LogLevel;
  /** Models may come from the Hugging Face hub (off unless the user turns it on). */
  readonly allowHub?: boolean;
}

export interface InitializeParams {
  readonly protocolVersion: number;
  readonly client: { readonly name: string; readonly version: string };
  readonly settings: EngineSettings;
}

export interface InitializeResult {
  readonly protocolVersion: number;
  readonly engineVersion: string;
  readonly pid: number;
}

export interface EngineInfoParams {
  /** Probe Python again instead of answering from the engine's cache. */
  readonly refresh?: boolean;
}

/** Where an interpreter candidate came from, in the order the search tries them. */
export type PythonSource =
  | 'setting'
  | 'PAL_PYTHON'
  | 'VIRTUAL_ENV'
  | 'CONDA_PREFIX'
  /** PAL Studio's own virtual environment, <cacheRoot()>/python (scripts/setup-python.sh). */
  | 'pal-venv'
  | 'PATH'
  | 'well-known';

/**
 * What happened to one candidate:
 * - `usable`: runs and imports torch >= the minimum;
 * - `no-torch` / `old-torch`: runs, but torch is missing or too old;
 * - `missing`: no such file; `failed`: exists but did not run or answered nonsense;
 * - `skipped`: not probed because an earlier candidate was already usable.
 */
export type PythonOutcome = 'usable' | 'no-torch' | 'old-torch' | 'missing' | 'failed' | 'skipped';

export interface PythonAttempt {
  readonly path: string;
  readonly source: PythonSource;
  readonly outcome: PythonOutcome;
  /** One sentence for a person: what was found, or why it was not usable. */
  readonly detail: string;
  readonly pythonVersion?: string;
  readonly torchVersion?: string;
}

export interface CudaDeviceInfo {
  readonly index: number;
  readonly name: string;
  readonly memoryBytes: number;
  readonly capability: string;
  readonly bf16: boolean;
}

export interface TorchInfo {
  readonly version: string;
  readonly location: string;
  readonly threads: number;
  /** CUDA version torch was built with, or null for a CPU-only build. */
  readonly cudaBuild: string | null;
  readonly cuda: {
    /** True only when a tensor could really be placed on the GPU, not merely when a driver exists. */
    readonly usable: boolean;
    readonly devices: readonly CudaDeviceInfo[];
    readonly error?: string;
  };
  readonly mps: boolean;
  /** Shared BLAS/LAPACK libraries loaded into the process (Linux): tells OpenBLAS from the slow reference BLAS. */
  readonly blasLibraries: readonly string[];
}

export interface PythonReport {
  /** True when an interpreter with a usable torch was found. */
  readonly found: boolean;
  readonly selected?: {
    readonly path: string;
    readonly executable: string;
    readonly version: string;
    readonly source: PythonSource;
  };
  readonly torch?: TorchInfo;
  /** Every candidate, in search order, with what happened to it. */
  readonly tried: readonly PythonAttempt[];
  /** Why nothing usable was found, in plain words (absent when found). */
  readonly reason?: string;
  /** What to do about it (what to install or set). */
  readonly hint?: string;
  /** Problems with what was found that do not stop it from working (e.g. a slow BLAS). */
  readonly warnings: readonly string[];
  readonly probedAt: string;
}

export type DeviceInfo =
  | { readonly kind: 'cpu'; readonly name: string; readonly cores: number; readonly memoryBytes: number }
  | { readonly kind: 'cuda'; readonly index: number; readonly name: string; readonly memoryBytes: number; readonly capability: string; readonly bf16: boolean };

export interface EngineInfo {
  readonly engine: {
    readonly version: string;
    readonly protocolVersion: number;
    readonly pid: number;
    readonly ppid: number;
    readonly uptimeMs: number;
  };
  readonly runtime: {
    readonly node: string;
    readonly platform: string;
    readonly arch: string;
    readonly execPath: string;
  };
  /** CPU always; a CUDA entry per GPU that a usable torch reported. */
  readonly devices: readonly DeviceInfo[];
  readonly python: PythonReport;
}

export interface LogParams {
  readonly level: LogLevel;
  readonly message: string;
}

export interface DidChangeSettingsParams {
  readonly settings: EngineSettings;
}

export interface ListPythonsResult {
  /** Every candidate probed (none skipped), for an interpreter picker. */
  readonly candidates: readonly PythonAttempt[];
}

export interface ValidateParams {
  /** The file's path (its name decides the format). */
  readonly file: string;
  /** The text to check (an editor's unsaved contents); read from disk when absent. */
  readonly text?: string;
  readonly lint?: { readonly maxFactWords: number; readonly contextTokens: number };
}

export interface ValidateResult {
  readonly problems: readonly Problem[];
}

export const ValidateRequest = new RequestType<ValidateParams, ValidateResult, void>('formats/validate');

export interface ImportParams {
  readonly input: string;
  readonly from?: 'persona-chat' | 'spc' | 'corpus' | 'card';
  readonly out: string;
  readonly force?: boolean;
  readonly split?: 'train' | 'valid' | 'test';
  /** Keep the first N examples only. */
  readonly limit?: number;
  /** data.ts ImportOptions.labeller (default "auto": the semantic match when its encoder is fetched). */
  readonly labeller?: LabellerChoice;
}

export type { ImportResult };

export const ImportRequest = new RequestType<ImportParams, ImportResult, void>('data/import');

export interface ExportParams {
  readonly input: string;
  readonly to: 'trl' | 'llama-factory' | 'axolotl' | 'card';
  readonly out: string;
  readonly force?: boolean;
  readonly name?: string;
}

export interface ExportResult {
  readonly to: ExportParams['to'];
  readonly written: readonly string[];
  readonly exported: number;
  readonly leftOut?: Readonly<LeftOut>;
  readonly usage: string;
  readonly problems: readonly Problem[];
}

export const ExportRequest = new RequestType<ExportParams, ExportResult, void>('data/export');

export interface StartRunParams {
  /** A *.palrun.yaml file. */
  readonly config: string;
  /**
   * The folders the run may read and write (the workspace's); every path the config names must lie
   * inside one of them, or be the embedded default model. Absent: no limit (the user allowed it).
   */
  readonly allowedRoots?: readonly string[];
}

export interface RunProgressParams {
  readonly runId: string;
  readonly stage: RunStage;
  readonly message: string;
  /** The message is a warning: the run goes on, but the writer should see it for as long as it runs (bf16 emulated on this CPU). */
  readonly warning?: boolean;
  readonly step?: number;
  readonly total?: number;
  readonly etaSeconds?: number;
  readonly metrics?: Readonly<Record<string, number>>;
}

export interface RunFinishedParams {
  readonly runId: string;
  readonly outcome: 'done' | 'cancelled' | 'failed';
  readonly runDir?: string;
  readonly model?: string;
  readonly error?: string;
}

export interface RunListItem {
  readonly name: string;
  readonly dir: string;
  readonly done: readonly string[];
  readonly finished: boolean;
  /** Running in this engine now. */
  readonly active: boolean;
}

export interface StartRunResult {
  readonly runId: string;
  /** The run folder (<output>/<name>) the run writes, when the config could be read. */
  readonly runDir?: string;
}

export const StartRunRequest = new RequestType<StartRunParams, StartRunResult, void>('run/start');
export const CancelRunRequest = new RequestType<{ runId: string }, { cancelled: boolean }, void>('run/cancel');
/** A run folder as the training dashboard shows it (src/engine/runFolderView.ts reads it). */
export interface RunFolderView {
  readonly state: RunState;
  /**
   * Each training stage's steps in order. A NaN (a diverged loss) travels as null in JSON: read
   * the records back with core's `toMetricRecord`.
   */
  readonly metrics: Readonly<Record<TrainingStage, readonly MetricRecord[]>>;
  readonly evaluation: readonly EvalRow[] | null;
  readonly hasReportHtml: boolean;
  /** Replies before and after on held-out prompts, and the signs of collapse; null before the evaluation. */
  readonly verdict: RunVerdict | null;
  /** Problems of single files (file:line: what), the rest of the run still shown. */
  readonly warnings: readonly string[];
}

/** The dashboard's view of a run folder; `shownAs` is how messages name the folder (relative to the workspace). */
export const ReadRunFolderRequest = new RequestType<{ runDir: string; shownAs?: string }, RunFolderView, void>('run/folder');

export const RunProgressNotification = new NotificationType<RunProgressParams>('run/progress');
export const RunFinishedNotification = new NotificationType<RunFinishedParams>('run/finished');

/** How a reply is decoded: what a client may ask for (inference's DecodingOptions adds the in-process callbacks). */
export interface DecodingSettings {
  readonly maxNewTokens?: number;
  /** 0 = greedy (the default). */
  readonly temperature?: number;
  readonly topK?: number;
  readonly topP?: number;
  /** > 1: beam search (deterministic; temperature is ignored). */
  readonly numBeams?: number;
  /**
   * > 1: tokens the response already holds are made less likely (CTRL's penalty, as Hugging Face's
   * `repetition_penalty`: a positive logit is divided by it, a negative one multiplied). Only the
   * response counts, not the prompt: the prompt holds the persona facts a good reply echoes.
   */
  readonly repetitionPenalty?: number;
  /** > 0: no n-gram of this size occurs twice in the response (Hugging Face's `no_repeat_ngram_size`, response only). */
  readonly noRepeatNgramSize?: number;
  /**
   * Where the no-repeat ban also takes its n-grams from: 'reply' (the reply alone; the default),
   * 'partner' (each of the partner's turns too, so the reply never parrots what it answers, while
   * the facts and the persona's own turns stay free to say), or 'prompt' (the whole prompt, as Hugging
   * Face's generate does for a decoder-only model, whose sequence is the prompt and the reply:
   * no fact is copied word for word either).
   */
  readonly noRepeatNgramFrom?: NoRepeatSource;
  /**
   * With beam search and a selected fact: answer with the best-scoring reply that ended and uses
   * the fact (the labeller's word-overlap rule, as \`pal eval\`'s "selected fact used"), or the
   * best reply where none does. The beams often hold a reply that uses the fact just below one
   * that drops it; the model card measures what this changes.
   */
  readonly preferSelectedFact?: boolean;
  readonly seed?: number;
}

/** The keys of DecodingSettings, for copying them out of a request (and nothing else a client sent). */
export const DECODING_SETTINGS = [
  'maxNewTokens',
  'temperature',
  'topK',
  'topP',
  'numBeams',
  'repetitionPenalty',
  'noRepeatNgramSize',
  'noRepeatNgramFrom',
  'preferSelectedFact',
  'seed',
] as const satisfies readonly (keyof DecodingSettings)[];

export interface SelectThenGenerateParams extends DecodingSettings {
  readonly model: string;
  readonly personas: readonly string[];
  readonly history: readonly string[];
  readonly selection?: SelectionMode;
  /** Echoed in generate/text notifications, so a client can tell streams apart. */
  readonly streamId?: string;
}

/**
 * Which persona sentence the generate prompt highlights: the model's own select answer ('model'),
 * BM25 over the partner's last turn ('retrieval'), or 'auto' (the model's when it was trained on
 * select, else BM25).
 */
export const SELECTION_MODES = ['auto', 'model', 'retrieval'] as const;
export type SelectionMode = (typeof SELECTION_MODES)[number];

/** Where the highlighted sentence came from; 'given' is an evaluation row's (the gold label, or none). */
export type SelectionSource = 'model' | 'retrieval' | 'none' | 'given';

/** The select task's answer as probabilities over its choices (they sum to 1). */
export interface SelectProbabilities {
  readonly none: number;
  /** One per persona sentence, in order. */
  readonly facts: readonly number[];
}

/** What select then generate gives: the persona sentence it used and the reply. */
export interface SelectionAndResponse {
  /** 0-based index of the selected persona sentence, or -1 for none. */
  readonly selected: number;
  readonly selectedText: string;
  /** `model`: the model's own select answer; `retrieval`: BM25, for models not trained on select; `none`: a plain baseline model, which does not select. */
  readonly selectionSource: SelectionSource;
  /** The model's raw select answer (absent for retrieval). */
  readonly selectAnswer?: string;
  /** What the model's select answer put on "none" and on each fact (a PAL model's own selection only). */
  readonly selectProbabilities?: SelectProbabilities;
  readonly response: string;
}

export interface SelectThenGenerateResult extends SelectionAndResponse {
  /** Where the model ran ("cpu", …), and why not on a faster device when that is so. */
  readonly device: string;
  readonly deviceNote?: string;
}

/** Cancel with JSON-RPC's $/cancelRequest: generation stops between two tokens. */
export const SelectThenGenerateRequest = new RequestType<SelectThenGenerateParams, SelectThenGenerateResult, void>('generate/selectThenGenerate');
export const GenerateTextNotification = new NotificationType<{ readonly streamId: string; readonly piece: string }>('generate/text');

export interface ComparisonResult {
  readonly a: string;
  readonly b: string;
  readonly rows: readonly {
    readonly key: string;
    readonly label: string;
    readonly a: number | null;
    readonly b: number | null;
    readonly delta: number | null;
  }[];
  readonly warnings: readonly string[];
}

/** Two `pal eval` reports (report.json) side by side. */
export const CompareReportsRequest = new RequestType<{ readonly a: string; readonly b: string }, ComparisonResult, void>('eval/compare');

export const InitializeRequest = new RequestType<InitializeParams, InitializeResult, void>('engine/initialize');
export const EngineInfoRequest = new RequestType<EngineInfoParams, EngineInfo, void>('engine/info');
export const ListPythonsRequest = new RequestType0<ListPythonsResult, void>('python/list');
/** Asks the engine to finish what it is doing and get ready to exit; `engine/exit` follows. */
export const ShutdownRequest = new RequestType0<void, void>('engine/shutdown');
export const ExitNotification = new NotificationType0('engine/exit');
export const DidChangeSettingsNotification = new NotificationType<DidChangeSettingsParams>('engine/didChangeSettings');
/** Engine to client: one log line. */
export const LogNotification = new NotificationType<LogParams>('engine/log');
