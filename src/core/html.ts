/** Text made safe to put in HTML (element content and quoted attribute values). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The one policy a static page (a report) may carry: nothing loads, nothing runs, its own inline style only. */
export const STATIC_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'";

/**
 * A static HTML page (eval/report.html) made fit for a webview: no script, and the static policy
 * in place of whatever policy the page had (or none). A page with a script is refused rather than
 * shown without it, since it would not read as it was written.
 */
export function staticPage(html: string): string {
  if (/<script\b/i.test(html)) throw new Error('This page holds a script; PAL Studio shows only static pages in a webview.');
  const meta = `<meta http-equiv="Content-Security-Policy" content="${STATIC_PAGE_CSP}">`;
  const withoutPolicy = html.replace(/<meta\s+http-equiv=["']Content-Security-Policy["'][^>]*>/gi, '');
  return /<head[^>]*>/i.test(withoutPolicy) ? withoutPolicy.replace(/<head[^>]*>/i, (head) => `${head}\n${meta}`) : `${meta}\n${withoutPolicy}`;
}
