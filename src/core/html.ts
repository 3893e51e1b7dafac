/** Text made safe to put in HTML (element content and quoted attribute values). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The one policy a static page (a report) may carry: nothing loads, nothing runs, its own inline style only. */
export const STATIC_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'";

/**
 * The window's colours for a report shown in VS Code (light, dark or high contrast, from the
 * webview's --vscode-* variables), placed after the page's own style so that they win; in a
 * browser the file keeps its own colours (it was a white page in a dark window).
 */
export const STATIC_PAGE_THEME = `<style data-theme="vscode">
body { color: var(--vscode-foreground); background: var(--vscode-editor-background); font-family: var(--vscode-font-family); }
th, td { border-color: var(--vscode-panel-border, var(--vscode-contrastBorder)); }
mark { background: var(--vscode-editor-findMatchHighlightBackground); color: inherit; }
.tag { background: var(--vscode-badge-background); color: var(--vscode-badge-foreground); }
.tag.gold { background: var(--vscode-charts-green); color: var(--vscode-editor-background); }
.na, .nli, .before-text { color: var(--vscode-descriptionForeground); }
svg.chart text { fill: var(--vscode-foreground); }
svg.chart .before { fill: var(--vscode-descriptionForeground); } svg.chart .after { fill: var(--vscode-charts-blue); }
.notes li { color: var(--vscode-editorWarning-foreground); }
</style>`;

/**
 * A static HTML page (eval/report.html) made fit for a webview: no script, the static policy in
 * place of whatever policy the page had (or none), and the window's colours (STATIC_PAGE_THEME).
 * A page with a script is refused rather than shown without it, since it would not read as it
 * was written.
 */
export function staticPage(html: string): string {
  if (/<script\b/i.test(html)) throw new Error('This page holds a script; PAL Studio shows only static pages in a webview.');
  const meta = `<meta http-equiv="Content-Security-Policy" content="${STATIC_PAGE_CSP}">`;
  const withoutPolicy = html.replace(/<meta\s+http-equiv=["']Content-Security-Policy["'][^>]*>/gi, '');
  const withPolicy = /<head[^>]*>/i.test(withoutPolicy) ? withoutPolicy.replace(/<head[^>]*>/i, (head) => `${head}\n${meta}`) : `${meta}\n${withoutPolicy}`;
  return /<\/head>/i.test(withPolicy) ? withPolicy.replace(/<\/head>/i, `${STATIC_PAGE_THEME}\n</head>`) : `${withPolicy}\n${STATIC_PAGE_THEME}`;
}
