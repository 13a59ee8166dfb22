/** Small building blocks the admin tabs share: tables, form fields, the one-time invite link box. */
import { recordModeLabels, type RecordMode } from '../../../server/protocol/api.js';
import { copyText } from '../lib/clipboard.js';
import { errorMessage } from '../lib/api.js';
import { h, showAlert, type Children } from '../lib/dom.js';

export interface AdminTab {
  readonly id: string;
  readonly label: string;
  /** Builds the tab's content (fresh each time it is shown). */
  render(): Promise<HTMLElement> | HTMLElement;
}

export function table(
  headers: readonly string[],
  rows: readonly HTMLTableRowElement[],
  empty: string,
): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      null,
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          headers.map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      h('tbody', null, rows),
    ),
  );
}

export function cell(...children: Children): HTMLTableCellElement {
  return h('td', null, ...children);
}

export function field(id: string, label: string, input: HTMLElement, hint?: string): HTMLElement {
  if (hint) input.setAttribute('aria-describedby', `${id}-hint`);
  input.id = id;
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    input,
    hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null,
  );
}

export function alertRegion(): HTMLElement {
  return h('div', { class: 'alert alert-error', role: 'alert', hidden: true, 'data-testid': 'admin-alert' });
}

/** Shows an invite link once, with a copy button: the server keeps only its hash. */
export function inviteBox(username: string, url: string, what = 'Invite link'): HTMLElement {
  const input = h('input', {
    type: 'text',
    class: 'mono',
    readonly: true,
    value: url,
    'aria-label': `${what} for ${username}`,
    'data-testid': 'invite-url',
  });
  const copy = h('button', { type: 'button', class: 'btn btn-small' }, 'Copy');
  copy.addEventListener('click', () => {
    void copyText(url, input).then((ok) => (copy.textContent = ok ? 'Copied' : 'Press Ctrl+C'));
  });
  input.addEventListener('focus', () => input.select());
  return h(
    'div',
    { class: 'alert alert-success', role: 'status', 'data-testid': 'invite-box' },
    h(
      'p',
      { style: 'margin:0 0 0.5rem' },
      h('strong', null, `${what} for ${username}. `),
      'It is shown only once: copy it now and send it to them.',
    ),
    h('div', { class: 'invite-box' }, input, copy),
  );
}

export function badge(text: string, kind: 'ok' | 'warn' | 'off' | '' = ''): HTMLElement {
  return h('span', { class: kind ? `badge badge-${kind}` : 'badge' }, text);
}

/**
 * Runs one admin action from a list row: shows its error in the tab's alert (or clears it), then
 * reloads what the action may have changed and redraws, whether it worked or not.
 */
export async function actThenRefresh(
  alert: HTMLElement,
  task: () => Promise<unknown>,
  refresh: () => Promise<void>,
): Promise<void> {
  try {
    await task();
    showAlert(alert, '');
  } catch (error) {
    showAlert(alert, errorMessage(error));
  }
  await refresh();
}

/**
 * The recording policy of a group or permission set as a select that saves on change (`save`
 * PATCHes it); the page says "This session is recorded" to the users it covers.
 */
export function recordSelect(
  label: string,
  current: RecordMode,
  save: (mode: RecordMode) => Promise<void>,
): HTMLSelectElement {
  const select = h(
    'select',
    { 'aria-label': label, 'data-testid': 'record-select' },
    (Object.keys(recordModeLabels) as RecordMode[]).map((mode) =>
      h('option', { value: mode, ...(mode === current ? { selected: true } : {}) }, recordModeLabels[mode]),
    ),
  );
  select.addEventListener('change', () => {
    select.disabled = true;
    void save(select.value as RecordMode).finally(() => (select.disabled = false));
  });
  return select;
}
