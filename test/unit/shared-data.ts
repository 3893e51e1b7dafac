// Where the shared data sets are (../shared/data beside the checkout, or PAL_SHARED_DATA), and
// whether tests that need them may skip: on CI (and with PAL_REQUIRE_DATA=1) they must run.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../../src/engine/paths';

export const sharedData = process.env.PAL_SHARED_DATA || path.join(packageRoot(), '..', 'shared', 'data');
export const personaChatDir = path.join(sharedData, 'persona-chat');

const required = process.env.CI === 'true' || process.env.PAL_REQUIRE_DATA === '1';

/** `false` when the data is there; else a skip reason, or a thrown error where the data is required. */
export function skipWithoutData(...files: string[]): false | string {
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length === 0) return false;
  const reason = `the shared data is missing (${missing.join(', ')}); set PAL_SHARED_DATA`;
  if (required) throw new Error(reason);
  return reason;
}
