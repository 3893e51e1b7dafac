/**
 * Serves the Engine over a JSON-RPC connection. Kept apart from main.ts so tests can serve an
 * engine over in-memory streams.
 */
import { type MessageConnection, ResponseError, ErrorCodes } from 'vscode-jsonrpc';
import { Engine } from './engine';
import { createLogger, type Logger } from './log';
import {
  DidChangeSettingsNotification,
  ENGINE_PROTOCOL_VERSION,
  EngineInfoRequest,
  ExitNotification,
  InitializeRequest,
  ListPythonsRequest,
  LogNotification,
  ShutdownRequest,
  ValidateRequest,
  ImportRequest,
  ExportRequest,
  StartRunRequest,
  CancelRunRequest,
  RunProgressNotification,
  RunFinishedNotification,
  SelectThenGenerateRequest,
  ReadRunFolderRequest,
  GenerateTextNotification,
  CompareReportsRequest,
  type EngineSettings,
} from './protocol';
import { exportFile, importFile, validateFile } from './data';
import { ModelCache } from './modelCache';
import { pythonFor, RunManager } from './runs';
import { readRunFolder } from './runFolderView';
import { compareRuns } from './eval';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { PAL_STUDIO_VERSION } from '../core/version';

export interface ServeOptions {
  /** Called once the client sent `engine/exit`, or the connection closed. */
  readonly onExit: (code: number) => void;
}

export function serveEngine(connection: MessageConnection, options: ServeOptions): { engine: Engine; log: Logger } {
  let settings: EngineSettings = { allowPython: true, logLevel: 'info' };
  const log = createLogger(
    (level, message) => void connection.sendNotification(LogNotification, { level, message }).catch(() => undefined),
    () => settings.logLevel,
  );
  const engine = new Engine(log, settings);
  let shuttingDown = false;

  connection.onRequest(InitializeRequest, (params) => {
    if (params.protocolVersion !== ENGINE_PROTOCOL_VERSION) {
      throw new ResponseError(
        ErrorCodes.InvalidRequest,
        `The engine speaks protocol ${ENGINE_PROTOCOL_VERSION} but ${params.client.name} ${params.client.version} speaks ${params.protocolVersion}; reinstall PAL Studio.`,
      );
    }
    settings = params.settings;
    engine.updateSettings(settings);
    log.info(`Engine ${PAL_STUDIO_VERSION} (pid ${process.pid}, Node ${process.version}) serving ${params.client.name}, version ${params.client.version}.`);
    return { protocolVersion: ENGINE_PROTOCOL_VERSION, engineVersion: PAL_STUDIO_VERSION, pid: process.pid };
  });
  connection.onNotification(DidChangeSettingsNotification, (params) => {
    settings = params.settings;
    engine.updateSettings(settings);
  });
  connection.onRequest(EngineInfoRequest, (params) => engine.info(params ?? {}));
  connection.onRequest(ListPythonsRequest, () => engine.listPythons());
  connection.onRequest(ValidateRequest, async (params) => ({ problems: await validateFile(params.file, params.text, params.lint) }));
  connection.onRequest(ImportRequest, (params) => importFile(params));
  connection.onRequest(ExportRequest, (params) => exportFile(params));

  const runs = new RunManager(
    async () => pythonFor(await engine.pythonReport()),
    (p) => void connection.sendNotification(RunProgressNotification, p).catch(() => undefined),
    (p) => {
      log[p.outcome === 'failed' ? 'error' : 'info'](`Run ${p.runId.slice(0, 8)} ${p.outcome}${p.error ? `: ${p.error}` : ''}`);
      void connection.sendNotification(RunFinishedNotification, p).catch(() => undefined);
    },
    (line) => log.debug(line),
  );
  connection.onRequest(StartRunRequest, async (params) => {
    if (!settings.allowPython)
      throw new ResponseError(
        ErrorCodes.InvalidRequest,
        'Training runs need Python, which PAL Studio does not start in Restricted Mode; trust the workspace first.',
      );
    return runs.start(params.config, params.allowedRoots);
  });
  connection.onRequest(ReadRunFolderRequest, (params) => readRunFolder(params.runDir, params.shownAs));
  connection.onRequest(CancelRunRequest, (params) => ({ cancelled: runs.cancel(params.runId) }));
  connection.onRequest(CompareReportsRequest, async ({ a, b }) => {
    const read = async (f: string) => {
      try {
        return JSON.parse(await readFile(f, 'utf8')) as unknown;
      } catch (err) {
        throw new ResponseError(ErrorCodes.InvalidParams, `${f}: not a readable evaluation report (${(err as Error).message})`);
      }
    };
    const name = (f: string) => path.basename(path.dirname(f)) || path.basename(f);
    return compareRuns(await read(a), await read(b), { a: name(a), b: name(b) });
  });
  const models = new ModelCache(() => settings.allowHub === true);
  connection.onRequest(SelectThenGenerateRequest, (params, token) => {
    const controller = new AbortController();
    token.onCancellationRequested(() => controller.abort());
    return models.selectThenGenerate(params, controller.signal, (piece) => {
      if (params.streamId) void connection.sendNotification(GenerateTextNotification, { streamId: params.streamId, piece }).catch(() => undefined);
    });
  });
  connection.onRequest(ShutdownRequest, () => {
    shuttingDown = true;
    // Runs stop at a checkpoint (their trainers get SIGTERM) and resume later.
    runs.cancelAll();
    log.info('Shutting down.');
  });
  connection.onNotification(ExitNotification, () => options.onExit(shuttingDown ? 0 : 1));
  // The client went away (its process ended, or it closed our stdin): nobody is left to serve.
  connection.onClose(() => options.onExit(shuttingDown ? 0 : 1));
  connection.listen();
  return { engine, log };
}
