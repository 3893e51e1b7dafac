/**
 * A tiny element builder for the webviews. Text goes in as text nodes, never as HTML, so nothing
 * a report or a user's file contains can inject markup into a view.
 */
export function h(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  for (const child of children) el.append(typeof child === 'string' ? document.createTextNode(child) : child);
  return el;
}

/**
 * Ctrl+A (Cmd+A) in a text field selects the field's text at once, and VS Code does not hear of it.
 * A webview passes every key to VS Code, whose select-all then came back to the webview late:
 * typing right after Ctrl+A, the first letter was typed and then selected and lost (issue 17).
 * Stopping the key at the document keeps it from the webview host's listener on the window; the
 * browser's own select-all (the default action) still happens.
 */
export function keepSelectAllInTextFields(): void {
  document.addEventListener('keydown', (e) => {
    if (!(e.ctrlKey || e.metaKey) || e.altKey || e.shiftKey || e.key.toLowerCase() !== 'a') return;
    const target = e.composedPath()[0];
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) e.stopPropagation();
  });
}

/** How the fact a reply used was chosen, in words (Try it and the generation panel say it alike). */
export function howSelected(selectionSource: string | undefined): string {
  return selectionSource === 'model'
    ? 'selected by the model'
    : selectionSource === 'retrieval'
      ? 'BM25 retrieval: this model was not trained on select'
      : 'no selection: a plain fine-tuned model';
}
