/**
 * The client side of the engine process: spawns it, speaks the protocol, and restarts it when it
 * dies. Free of `vscode` so that it is tested against real engine processes with Node alone; the
 * extension wraps it with the user-facing parts (notifications, output channel, status bar).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CancellationToken, Emitter, type Event, type MessageConnection, type NotificationType, type RequestType, type RequestType0 } from 'vscode-jsonrpc';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import {
  DidChangeSettingsNotification,
  ENGINE_PROTOCOL_VERSION,
  ExitNotification,
  InitializeRequest,
  LogNotification,
  ShutdownRequest,
  type EngineSettings,
  type LogLevel,
} from './protocol';

export type EngineState = 'starting' | 'ready' | 'restarting' | 'stopped' | 'failed';

export interface EngineClientOptions {
  readonly enginePath: string;
  readonly client: { readonly name: string; readonly version: string };
  readonly settings: () => EngineSettings;
  readonly autoRestart?: () => boolean;
  /** Give up after this many crashes within `crashWindowMs` (a crash loop helps nobody). */
  readonly maxCrashes?: number;
  readonly crashWindowMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

export interface EngineCrash {
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Crashes within the crash window, this one included. */
  readonly recentCrashes: number;
  readonly willRestart: boolean;
  /** Plain words for a person: what happened and what PAL Studio does about it. */
  readonly message: string;
}

export class EngineStoppedError extends Error {
  constructor(method: string, reason: string) {
    super(`The PAL Studio engine stopped before answering ${method} (${reason}).`);
    this.name = 'EngineStoppedError';
  }
}

interface Running {
  readonly child: ChildProcess;
  readonly connection: MessageConnection;
  ready: Promise<void>;
  exited: boolean;
}

export class EngineClient {
  private running: Running | undefined;
  private state: EngineState = 'stopped';
  private stopping = false;
  private crashTimes: number[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  /** Requests made while an engine starts or restarts, released when one is ready (or it gives up). */
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  private readonly stateEmitter = new Emitter<{ state: EngineState; detail?: string }>();
  private readonly logEmitter = new Emitter<{ level: LogLevel; message: string }>();
  private readonly crashEmitter = new Emitter<EngineCrash>();
  private readonly readyEmitter = new Emitter<{ pid: number }>();
  readonly onDidChangeState: Event<{ state: EngineState; detail?: string }> = this.stateEmitter.event;
  readonly onLog: Event<{ level: LogLevel; message: string }> = this.logEmitter.event;
  readonly onCrash: Event<EngineCrash> = this.crashEmitter.event;
  readonly onReady: Event<{ pid: number }> = this.readyEmitter.event;

  /** Handlers of the engine's notifications, by method; they follow the engine across restarts. */
  private readonly notificationHandlers = new Map<string, Set<(params: unknown) => void>>();

  constructor(private readonly options: EngineClientOptions) {}

  onNotification<P>(type: NotificationType<P>, handler: (params: P) => void): { dispose(): void } {
    let set = this.notificationHandlers.get(type.method);
    if (!set) {
      set = new Set();
      this.notificationHandlers.set(type.method, set);
    }
    const h = handler as (params: unknown) => void;
    set.add(h);
    return { dispose: () => set.delete(h) };
  }

  get currentState(): EngineState {
    return this.state;
  }

  get pid(): number | undefined {
    return this.running?.child.pid;
  }

  start(): Promise<void> {
    if (this.running && !this.running.exited) return this.running.ready;
    this.stopping = false;
    this.crashTimes = [];
    return this.launch('starting');
  }

  /** Stops the current engine (if any) and starts a fresh one; clears the crash history. */
  async restart(): Promise<void> {
    await this.stop();
    return this.start();
  }

  async request<R>(type: RequestType0<R, void>, token?: CancellationToken): Promise<R>;
  async request<P, R>(type: RequestType<P, R, void>, params: P, token?: CancellationToken): Promise<R>;
  async request(type: RequestType0<unknown, void> | RequestType<unknown, unknown, void>, ...rest: unknown[]): Promise<unknown> {
    const running = await this.whenReady();
    try {
      return await running.connection.sendRequest(type as RequestType<unknown, unknown, void>, ...(rest as [unknown]));
    } catch (err) {
      // A request torn off by the engine's death gets an error that says so, not a protocol message.
      if (running.exited) throw new EngineStoppedError(type.method, 'it exited');
      throw err;
    }
  }

  /** Tells the engine that settings changed (if one is running; a new one reads them at start). */
  settingsChanged(): void {
    const running = this.running;
    if (running && !running.exited && this.state === 'ready') {
      void running.connection.sendNotification(DidChangeSettingsNotification, { settings: this.options.settings() }).catch(() => undefined);
    }
  }

  /** Asks the engine to shut down, then makes sure it is gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const running = this.running;
    if (!running || running.exited) {
      this.setState('stopped');
      return;
    }
    const exited = new Promise<void>((resolve) => running.child.once('exit', () => resolve()));
    try {
      await withTimeout(running.connection.sendRequest(ShutdownRequest), 2000);
      await running.connection.sendNotification(ExitNotification);
    } catch {
      // Unresponsive: it is killed below.
    }
    if (
      !(await withTimeout(exited, 3000).then(
        () => true,
        () => false,
      ))
    ) {
      running.child.kill('SIGKILL');
      await exited;
    }
    this.setState('stopped');
  }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
    this.logEmitter.dispose();
    this.crashEmitter.dispose();
    this.readyEmitter.dispose();
  }

  private whenReady(): Promise<Running> {
    if (this.state === 'ready' && this.running && !this.running.exited) return Promise.resolve(this.running);
    if (this.state === 'stopped' || this.state === 'failed') {
      return Promise.reject(
        new Error(`The PAL Studio engine is ${this.state === 'failed' ? 'not running: it kept crashing' : 'not running'}; run "PAL: Restart Engine".`),
      );
    }
    return new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject })).then(() => this.whenReady());
  }

  private launch(state: 'starting' | 'restarting'): Promise<void> {
    // After a crash the state is already 'restarting' (with the reason as detail): keep it.
    if (this.state !== state) this.setState(state);
    const child = spawn(process.execPath, [this.options.enginePath], {
      // In VS Code process.execPath is Electron; this makes it behave as plain Node.
      env: { ...(this.options.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    connection.onNotification(LogNotification, (p) => this.logEmitter.fire(p));
    connection.onNotification((method: string, params: unknown) => this.notificationHandlers.get(method)?.forEach((h) => h(params)));
    // The protocol owns stdout; anything on stderr is Node reporting trouble.
    createInterface({ input: child.stderr! }).on('line', (line) => this.logEmitter.fire({ level: 'error', message: `[engine stderr] ${line}` }));
    connection.onError(([err]) => this.logEmitter.fire({ level: 'debug', message: `connection: ${err.message}` }));
    connection.listen();

    const running: Running = { child, connection, exited: false, ready: Promise.resolve() };
    running.ready = (async () => {
      const result = await connection.sendRequest(InitializeRequest, {
        protocolVersion: ENGINE_PROTOCOL_VERSION,
        client: this.options.client,
        settings: this.options.settings(),
      });
      if (running.exited || this.running !== running) throw new Error('The engine exited while starting.');
      this.setState('ready');
      this.readyEmitter.fire({ pid: result.pid });
      for (const w of this.readyWaiters.splice(0)) w.resolve();
    })();
    this.running = running;
    running.ready.catch((err: Error) => {
      if (running.exited) return; // the exit handler decides what happens next
      // It runs but will not initialise (e.g. another protocol version): restarting cannot help.
      this.logEmitter.fire({ level: 'error', message: `The engine failed to start: ${err.message}` });
      this.fail(`it failed to start: ${err.message}`);
      child.kill('SIGKILL');
    });

    child.on('error', (err) => this.logEmitter.fire({ level: 'error', message: `Could not start the engine (${process.execPath}): ${err.message}` }));
    child.on('exit', (code, signal) => {
      running.exited = true;
      connection.dispose();
      if (this.running !== running) return;
      if (this.stopping || this.state === 'failed') {
        if (this.stopping) this.setState('stopped');
        return;
      }
      this.onUnexpectedExit(child.pid, code, signal);
    });
    return running.ready;
  }

  private onUnexpectedExit(pid: number | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    const now = Date.now();
    const window = this.options.crashWindowMs ?? 180_000;
    this.crashTimes = [...this.crashTimes.filter((t) => now - t < window), now];
    const recentCrashes = this.crashTimes.length;
    const max = this.options.maxCrashes ?? 5;
    const autoRestart = this.options.autoRestart?.() ?? true;
    const willRestart = autoRestart && recentCrashes < max;
    const how = signal ? `it was killed by ${signal}` : `it exited with code ${code}`;
    const message = willRestart
      ? `PAL Studio's engine stopped unexpectedly (${how}) and was restarted. Anything it was doing was interrupted.`
      : !autoRestart
        ? `PAL Studio's engine stopped unexpectedly (${how}). Automatic restart is off; run "PAL: Restart Engine" to start it again.`
        : `PAL Studio's engine stopped unexpectedly ${recentCrashes} times within ${Math.round(window / 60_000)} minutes (last time ${how}), so it was not restarted again. See the "PAL Studio" output for the cause, then run "PAL: Restart Engine".`;
    this.logEmitter.fire({ level: 'error', message });
    this.crashEmitter.fire({ pid, code, signal, recentCrashes, willRestart, message });
    if (!willRestart) {
      this.fail(message);
      return;
    }
    this.setState('restarting', message);
    const delay = Math.min(250 * 2 ** (recentCrashes - 1), 5000);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopping) this.launch('restarting').catch(() => undefined);
    }, delay);
  }

  private fail(detail: string): void {
    this.setState('failed', detail);
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(`The PAL Studio engine is not running: ${detail}`));
  }

  private setState(state: EngineState, detail?: string): void {
    if (state === 'stopped') for (const w of this.readyWaiters.splice(0)) w.reject(new Error('The PAL Studio engine was stopped.'));
    this.state = state;
    this.stateEmitter.fire(detail === undefined ? { state } : { state, detail });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
