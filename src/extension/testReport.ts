/**
 * An event log for the real-VS-Code tests. code-server cannot run an extension-tests payload, so
 * the e2e tests read what happened inside the extension host from this file instead: when
 * PAL_STUDIO_TEST_REPORT names a file, each event is appended to it as one JSON line. Without the
 * variable this writes nothing.
 */
import { appendFileSync } from 'node:fs';

export class TestReport {
  private constructor(private readonly file: string | undefined) {}

  static fromEnvironment(env: NodeJS.ProcessEnv = process.env): TestReport {
    return new TestReport(env.PAL_STUDIO_TEST_REPORT || undefined);
  }

  get enabled(): boolean {
    return this.file !== undefined;
  }

  write(event: { event: string } & Record<string, unknown>): void {
    if (!this.file) return;
    try {
      appendFileSync(this.file, `${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
    } catch {
      // A test harness problem must never break the extension.
    }
  }
}
