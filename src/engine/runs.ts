/**
 * The engine's alignment runs, shared by the RPC server (the extension) and the CLI: runs go on in
 * the background with progress callbacks and can be cancelled. Loaded models: modelCache.ts.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { parseRunConfig } from '../core/formats/runConfig';
import { promises as fs } from 'node:fs';
import { listRuns, runAlignment } from './pipeline';
import type { PythonReport, RunFinishedParams, RunListItem, RunProgressParams } from './protocol';

export class NoPythonError extends Error {}

/** The interpreter for training, or an error that says what to install. */
export function pythonFor(report: PythonReport): string {
  if (report.found && report.selected) return report.selected.path;
  throw new NoPythonError(
    `Training needs Python with PyTorch, and none is usable: ${report.reason ?? ''} ${report.hint ?? ''} Inference and authoring keep working.`
      .replace(/\s+/g, ' ')
      .trim(),
  );
}

export class RunManager {
  private readonly active = new Map<string, { controller: AbortController; runDir?: string; config: string }>();

  constructor(
    private readonly python: () => Promise<string>,
    private readonly onProgress: (p: RunProgressParams) => void,
    private readonly onFinished: (p: RunFinishedParams) => void,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts a run and returns at once; progress and the end arrive through the callbacks. */
  async start(config: string, allowedRoots?: readonly string[]): Promise<{ runId: string; runDir?: string }> {
    const absolute = path.resolve(config);
    // Where it writes, for a dashboard to read; a config that cannot be read fails in the run, with its problems.
    const doc = parseRunConfig(await fs.readFile(absolute, 'utf8').catch(() => ''), absolute);
    const runDir = doc.config ? path.resolve(path.dirname(absolute), doc.config.output, doc.config.name) : undefined;
    for (const r of this.active.values()) if (r.config === absolute) throw new Error(`${config} is already running.`);
    const python = await this.python();
    const runId = randomUUID();
    const controller = new AbortController();
    this.active.set(runId, { controller, config: absolute });
    void runAlignment(absolute, {
      python,
      signal: controller.signal,
      ...(allowedRoots ? { allowedRoots } : {}),
      onProgress: (p) => this.onProgress({ runId, ...p }),
      onLog: (line) => this.log(`[run ${runId.slice(0, 8)}] ${line}`),
    })
      .then(
        (r) => this.onFinished({ runId, outcome: r.outcome, runDir: r.runDir, ...(r.model ? { model: r.model } : {}) }),
        (err: Error) => this.onFinished({ runId, outcome: 'failed', error: err.message }),
      )
      .finally(() => this.active.delete(runId));
    return { runId, ...(runDir ? { runDir } : {}) };
  }

  cancel(runId: string): boolean {
    const run = this.active.get(runId);
    run?.controller.abort();
    return run !== undefined;
  }

  /** The runs of a config's output folder, with their state. */
  async list(config: string): Promise<RunListItem[]> {
    const doc = parseRunConfig(await fs.readFile(config, 'utf8'), config);
    if (!doc.config) throw new Error(`${config} has errors; run "pal validate ${config}".`);
    const output = path.resolve(path.dirname(config), doc.config.output);
    const activeConfigs = new Set([...this.active.values()].map((r) => r.config));
    const runs = await listRuns(output);
    return runs.map((r) => ({ ...r, active: activeConfigs.has(path.resolve(config)) && r.name === doc.config!.name }));
  }

  cancelAll(): void {
    for (const r of this.active.values()) r.controller.abort();
  }
}
