/**
 * The engine's logic, independent of how it is reached: the engine process serves it over
 * JSON-RPC (server.ts) and the `pal` CLI calls it directly (cli.ts), so both run the same code.
 */
import * as os from 'node:os';
import type { DeviceInfo, EngineInfo, EngineInfoParams, EngineSettings, ListPythonsResult, PythonReport } from './protocol';
import { ENGINE_PROTOCOL_VERSION } from './protocol';
import type { Logger } from './log';
import { currentSearchEnvironment, discoverPython, listCandidates, probeCandidate, type SearchEnvironment } from './python';
import { PAL_STUDIO_VERSION } from '../core/version';

export const DEFAULT_SETTINGS: EngineSettings = { allowPython: true, logLevel: 'info' };

export class Engine {
  private settings: EngineSettings;
  /** The Python search is slow (it imports torch); one search serves every caller until refreshed. */
  private python: Promise<PythonReport> | undefined;
  private readonly started = Date.now();

  constructor(
    private readonly log: Logger,
    settings: EngineSettings = DEFAULT_SETTINGS,
    private readonly search: SearchEnvironment = currentSearchEnvironment(),
  ) {
    this.settings = settings;
  }

  get currentSettings(): EngineSettings {
    return this.settings;
  }

  updateSettings(settings: EngineSettings): void {
    const pythonChanged = settings.pythonPath !== this.settings.pythonPath || settings.allowPython !== this.settings.allowPython;
    this.settings = settings;
    if (pythonChanged) {
      this.log.info('Python settings changed; the interpreter will be searched for again.');
      this.python = undefined;
    }
  }

  async info(params: EngineInfoParams = {}): Promise<EngineInfo> {
    const python = await this.pythonReport(params.refresh === true);
    return {
      engine: {
        version: PAL_STUDIO_VERSION,
        protocolVersion: ENGINE_PROTOCOL_VERSION,
        pid: process.pid,
        ppid: process.ppid,
        uptimeMs: Date.now() - this.started,
      },
      runtime: { node: process.version, platform: process.platform, arch: process.arch, execPath: process.execPath },
      devices: devices(python),
      python,
    };
  }

  pythonReport(refresh = false): Promise<PythonReport> {
    if (!this.python || refresh) {
      const search = this.searchPython();
      this.python = search;
      // A failed search must not be cached forever: the next caller tries again.
      search.catch(() => {
        if (this.python === search) this.python = undefined;
      });
    }
    return this.python;
  }

  /** Probes every candidate (none skipped), for an interpreter picker. */
  async listPythons(): Promise<ListPythonsResult> {
    if (!this.settings.allowPython) return { candidates: [] };
    const setting = this.settings.pythonPath?.trim();
    const searched = listCandidates(undefined, this.search);
    const candidates = setting ? [...listCandidates(setting, this.search), ...searched.filter((c) => c.path !== setting)] : searched;
    const results = [];
    for (const c of candidates) results.push((await probeCandidate(c)).attempt);
    return { candidates: results };
  }

  private async searchPython(): Promise<PythonReport> {
    if (!this.settings.allowPython) {
      return {
        found: false,
        tried: [],
        warnings: [],
        probedAt: new Date().toISOString(),
        reason: 'This workspace is in Restricted Mode, so PAL Studio starts no Python.',
        hint: 'Trust the workspace (Manage Workspace Trust) to train; authoring and viewing keep working.',
      };
    }
    const candidates = listCandidates(this.settings.pythonPath, this.search);
    this.log.info(`Looking for Python with torch: ${candidates.length} candidate${candidates.length === 1 ? '' : 's'}.`);
    const t0 = Date.now();
    const report = await discoverPython(candidates);
    for (const attempt of report.tried) {
      if (attempt.outcome !== 'skipped') this.log.debug(`  ${attempt.path} [${attempt.source}]: ${attempt.outcome}: ${attempt.detail}`);
    }
    if (report.found) {
      this.log.info(`Python: ${report.selected!.path} (torch ${report.torch!.version}), found in ${Date.now() - t0} ms.`);
    } else {
      this.log.warn(`No usable Python: ${report.reason} ${report.hint}`);
    }
    for (const w of report.warnings) this.log.warn(w);
    return report;
  }
}

function devices(python: PythonReport): DeviceInfo[] {
  const cpus = os.cpus();
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length;
  const list: DeviceInfo[] = [{ kind: 'cpu', name: cpus[0]?.model.trim() || os.arch(), cores, memoryBytes: os.totalmem() }];
  if (python.torch?.cuda.usable) {
    for (const d of python.torch.cuda.devices) {
      list.push({ kind: 'cuda', index: d.index, name: d.name, memoryBytes: d.memoryBytes, capability: d.capability, bf16: d.bf16 });
    }
  }
  return list;
}
