import type { LogLevel } from './protocol';
import { LOG_LEVELS } from './protocol';

/** Where engine code writes its log lines: a notification to the client, or stderr in the CLI. */
export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

/** A logger that drops lines below `level` and hands the rest to `sink`. */
export function createLogger(sink: (level: LogLevel, message: string) => void, level: () => LogLevel): Logger {
  const emit = (l: LogLevel) => (message: string) => {
    if (LOG_LEVELS.indexOf(l) <= LOG_LEVELS.indexOf(level())) sink(l, message);
  };
  return { error: emit('error'), warn: emit('warn'), info: emit('info'), debug: emit('debug') };
}
