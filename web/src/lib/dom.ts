/**
 * A tiny element builder. Text always goes in through text nodes, so nothing shown is ever
 * parsed as HTML.
 */
import { visibleSegments, type VisibleMode } from './visible-text.js';

export type AttrValue = string | number | boolean | null | undefined;
export type Props = Record<string, AttrValue | ((event: Event) => void)>;
export type Child = Node | string | number | null | undefined | false;
export type Children = (Child | readonly Child[])[];

/**
 * `h('button', {class: 'btn', type: 'button', onclick: save}, 'Save')`. Keys starting with `on`
 * and a function value become listeners; `true` sets an empty attribute; false/null/undefined
 * leave it out; `value` and `checked` set the live property too.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Children
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (typeof value === 'function') {
      if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
      continue;
    }
    if (value === false || value === null || value === undefined) continue;
    element.setAttribute(name, value === true ? '' : String(value));
    if (name === 'value' && 'value' in element) (element as HTMLInputElement).value = String(value);
    if (name === 'checked' && element instanceof HTMLInputElement) element.checked = value === true;
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Children): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(
      typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child,
    );
  }
}

/** Replaces everything inside `parent`. */
export function replaceChildren(parent: Element, ...children: Children): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** The element with this id, or a clear failure when the page markup does not have it. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`The page is missing #${id}`);
  return element as T;
}

/** Shows a message in an alert region (role=alert), or hides it when `message` is empty. */
export function showAlert(
  region: HTMLElement,
  message: string,
  kind: 'error' | 'info' | 'success' = 'error',
): void {
  region.textContent = message;
  region.hidden = message === '';
  region.className = `alert alert-${kind}`;
}

/**
 * Runs `task` with `button` disabled (and a busy label), so a double click sends one request.
 */
export async function whileBusy<T>(
  button: HTMLButtonElement,
  task: () => Promise<T>,
  busyLabel?: string,
): Promise<T> {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (busyLabel) button.textContent = busyLabel;
  try {
    return await task();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    if (busyLabel) button.textContent = label;
  }
}

/** Formats a time (epoch ms or ISO text) for tables, in the user's locale. */
export function formatTime(time: number | string | null | undefined): string {
  if (time === null || time === undefined || time === '') return '—';
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return '—';
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** "1 hour", "12 hours", "90 minutes". */
export function formatDuration(seconds: number): string {
  if (seconds % 3600 === 0) {
    const hours = seconds / 3600;
    return `${hours} hour${hours === 1 ? '' : 's'}`;
  }
  return `${Math.round(seconds / 60)} minutes`;
}

/**
 * A name (or any text from outside) as a person should read it: in an isolating `<bdi>`, so right-
 * to-left letters cannot reorder the words around it, with each hidden character (bidi override,
 * zero-width, control) shown as a marker in its own `.invisible-char` span. Text nodes only.
 */
export function visibleName(text: string, mode: VisibleMode = 'line'): HTMLElement {
  return h(
    'bdi',
    { class: 'visible-name' },
    visibleSegments(text, mode).map((segment) =>
      segment.marker ? h('span', { class: 'invisible-char' }, segment.text) : segment.text,
    ),
  );
}
