/**
 * `pal`: PAL Studio's engine on the command line, for headless machines and scripts. It runs the
 * same Engine code as the engine process the extension hosts, in-process.
 */
import { Engine } from './engine';
import { formatEngineInfo } from './format';
import { createLogger } from './log';
import type { LogLevel } from './protocol';
import { PAL_STUDIO_VERSION } from './version';

const HELP = `pal ${PAL_STUDIO_VERSION}: PAL Studio's engine on the command line

Usage: pal <command> [options]

Commands:
  info          The engine, its devices, and the Python/torch the trainer would use,
                with every interpreter that was tried and why it was or was not usable.

Options:
  -h, --help    Show this help (also: pal <command> --help).
  -V, --version Print the version.

Run "pal <command> --help" for a command's options.
`;

const INFO_HELP = `Usage: pal info [--json] [--python PATH] [--verbose]

  --json          Print the report as one JSON object (stable field names).
  --python PATH   Use this interpreter instead of searching (like the palStudio.python.path setting).
  --verbose       Log every step of the search to stderr.
`;

export class UsageError extends Error {}

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
      (command === undefined ? io.err : io.out)(HELP);
      return command === undefined ? 2 : 0;
    }
    if (command === '-V' || command === '--version') {
      io.out(`${PAL_STUDIO_VERSION}\n`);
      return 0;
    }
    if (command === 'info') return await info(rest, io);
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

async function info(args: readonly string[], io: Io): Promise<number> {
  let json = false;
  let python: string | undefined;
  let level: LogLevel = 'warn';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-h' || a === '--help') {
      io.out(INFO_HELP);
      return 0;
    } else if (a === '--json') json = true;
    else if (a === '--verbose') level = 'debug';
    else if (a === '--python') {
      python = args[++i];
      if (!python) throw new UsageError('--python needs a path');
    } else if (a.startsWith('--python=')) python = a.slice('--python='.length);
    else throw new UsageError(`unknown option "${a}" for "pal info"`);
  }
  const log = createLogger((l, m) => io.err(`[${l}] ${m}\n`), () => level);
  const engine = new Engine(log, { allowPython: true, logLevel: level, ...(python ? { pythonPath: python } : {}) });
  const report = await engine.info();
  io.out(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatEngineInfo(report)}\n`);
  return 0;
}

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
