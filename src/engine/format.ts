/** Plain-text rendering of engine reports, for the CLI and logs. */
import { formatBytes } from '../core/units';
import type { EngineInfo, PythonAttempt } from './protocol';

const OUTCOME_MARK: Record<PythonAttempt['outcome'], string> = {
  usable: 'ok',
  'no-torch': 'no torch',
  'old-torch': 'old torch',
  missing: 'missing',
  failed: 'failed',
  skipped: 'skipped',
};

export function formatEngineInfo(info: EngineInfo): string {
  const lines: string[] = [];
  const { engine, runtime, python } = info;
  lines.push(`PAL Studio engine ${engine.version} (protocol ${engine.protocolVersion}, pid ${engine.pid})`);
  lines.push(`Node ${runtime.node} on ${runtime.platform}/${runtime.arch}`);
  lines.push('');
  lines.push('Devices:');
  for (const d of info.devices) {
    lines.push(
      d.kind === 'cpu'
        ? `  cpu      ${d.name}, ${d.cores} cores, ${formatBytes(d.memoryBytes)}`
        : `  cuda:${d.index}   ${d.name}, ${formatBytes(d.memoryBytes)}, compute ${d.capability}${d.bf16 ? ', bf16' : ''}`,
    );
  }
  lines.push('');
  if (python.found && python.selected && python.torch) {
    const t = python.torch;
    lines.push(`Python:   ${python.selected.path} (Python ${python.selected.version}, from ${python.selected.source})`);
    lines.push(`torch:    ${t.version} at ${t.location}`);
    lines.push(
      `          ${t.cudaBuild ? `CUDA build ${t.cudaBuild}, ${t.cuda.usable ? 'GPU usable' : `GPU not usable${t.cuda.error ? `: ${t.cuda.error}` : ''}`}` : 'CPU-only build'}; ${t.threads} CPU thread${t.threads === 1 ? '' : 's'}`,
    );
    if (t.blasLibraries.length) lines.push(`          BLAS: ${t.blasLibraries.join(', ')}`);
  } else {
    lines.push(`Python:   not usable. ${python.reason ?? ''}`);
    if (python.hint) lines.push(`          ${python.hint}`);
  }
  for (const w of python.warnings) lines.push(`warning:  ${w}`);
  if (python.tried.length) {
    lines.push('');
    lines.push('Interpreters tried, in order:');
    for (const t of python.tried) lines.push(`  [${OUTCOME_MARK[t.outcome]}] ${t.path} (${t.source}): ${t.detail}`);
  }
  return lines.join('\n');
}
