/**
 * The engine process: started by the extension (or any client) with JSON-RPC on stdin/stdout.
 * stdout belongs to the protocol alone, so console output is routed to stderr.
 */
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { serveEngine } from './server';

console.log = console.info = console.debug = (...args: unknown[]) => console.error(...args);

const connection = createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
const { log } = serveEngine(connection, { onExit: (code) => process.exit(code) });

process.on('uncaughtException', (err) => {
  // Reported, then fatal: the client restarts a fresh engine rather than talk to a damaged one.
  log.error(`Uncaught exception: ${err.stack ?? err.message}`);
  console.error(err);
  process.exit(70);
});
process.on('unhandledRejection', (reason) => {
  log.error(`Unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
});
