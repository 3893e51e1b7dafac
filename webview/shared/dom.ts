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
