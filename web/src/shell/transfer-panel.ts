/**
 * The list of uploads and downloads in the corner of the terminal: one row per file with its bar,
 * percent, speed and time left, and the buttons that fit its state (Cancel while it runs, Retry
 * after a failure, Dismiss when it is over). Every name goes in as text, with bidi overrides,
 * zero-width and control characters shown as markers (`⟨U+202E⟩`). Nothing here takes focus,
 * so a transfer that ends never pulls the cursor out of the terminal; a keyboard user reaches the
 * buttons with Tab, and Dismiss or Clear finished hands the keyboard back to the terminal.
 */
import { h, visibleName } from '../lib/dom.js';
import { visibleText } from '../lib/visible-text.js';

export type TransferState = 'running' | 'busy' | 'done' | 'failed' | 'cancelled';

export class TransferRow {
  readonly element: HTMLLIElement;
  private readonly bar: HTMLProgressElement;
  private readonly status: HTMLElement;
  private readonly actions: HTMLElement;
  private cancelHandler: (() => void) | undefined;

  constructor(
    path: string,
    private readonly panel: TransferPanel,
  ) {
    const title = visibleText(path);
    this.bar = h('progress', {
      class: 'transfer-bar',
      max: 1,
      'aria-label': title,
      'data-testid': 'transfer-bar',
    });
    this.status = h('div', { class: 'transfer-status', 'data-testid': 'transfer-status' });
    this.actions = h('div', { class: 'transfer-actions' });
    this.element = h(
      'li',
      { class: 'transfer-row', 'data-testid': 'transfer-row' },
      h('div', { class: 'transfer-name', title, 'data-testid': 'transfer-name' }, visibleName(path)),
      this.bar,
      this.status,
      this.actions,
    );
  }

  get state(): TransferState {
    return (this.element.dataset.state as TransferState | undefined) ?? 'busy';
  }

  /** Bytes are moving: a determinate bar and a Cancel button. */
  progress(done: number, total: number, line: string): void {
    this.setState('running');
    this.bar.max = Math.max(1, total);
    this.bar.value = Math.min(done, total);
    this.status.textContent = visibleText(line);
    this.setButtons(this.cancelHandler ? [this.button('Cancel', 'transfer-cancel', this.cancelHandler)] : []);
  }

  /** Waiting on the server (presign, preparing a download, saving into the home). */
  busy(text: string, cancel = false): void {
    this.setState('busy');
    this.bar.removeAttribute('value');
    this.status.textContent = visibleText(text);
    this.setButtons(
      cancel && this.cancelHandler ? [this.button('Cancel', 'transfer-cancel', this.cancelHandler)] : [],
    );
  }

  /** What Cancel does for this transfer (abort the requests, tell the server). */
  onCancel(handler: () => void): void {
    this.cancelHandler = handler;
  }

  succeed(text: string): void {
    this.bar.max = 1;
    this.bar.value = 1;
    this.finish('done', text, []);
  }

  fail(reason: string, retry?: () => void): void {
    this.finish('failed', reason, retry ? [this.button('Retry', 'transfer-retry', retry)] : []);
  }

  cancelled(text: string): void {
    this.finish('cancelled', text, []);
  }

  /** Dismiss: the row goes and the keyboard goes back to the terminal (not to the page body). */
  remove(): void {
    this.element.remove();
    this.panel.refresh();
    this.panel.focusTerminal();
  }

  private finish(state: TransferState, text: string, buttons: HTMLButtonElement[]): void {
    // If the Cancel button had focus, keep a keyboard user on this row rather than on <body>.
    const hadFocus = this.element.contains(document.activeElement);
    this.setState(state);
    this.status.textContent = visibleText(text);
    const dismiss = this.button('Dismiss', 'transfer-dismiss', () => this.remove());
    this.setButtons([...buttons, dismiss]);
    if (hadFocus) (buttons[0] ?? dismiss).focus();
    this.panel.announce(text);
  }

  private setState(state: TransferState): void {
    this.element.dataset.state = state;
    this.panel.refresh();
  }

  private setButtons(buttons: HTMLButtonElement[]): void {
    const same =
      buttons.length === this.actions.children.length &&
      buttons.every((b, i) => b.textContent === this.actions.children[i]?.textContent);
    // Progress events come many times a second: rebuilding an unchanged button would drop its focus.
    if (same) return;
    this.actions.replaceChildren(...buttons);
  }

  private button(label: string, testId: string, onClick: () => void): HTMLButtonElement {
    return h(
      'button',
      { type: 'button', class: 'btn transfer-button', 'data-testid': testId, onclick: onClick },
      label,
    );
  }
}

export class TransferPanel {
  readonly element: HTMLElement;
  private readonly list: HTMLUListElement;
  /** Read out once per finished transfer; progress ticks are not announced. */
  private readonly live: HTMLElement;
  private readonly clear: HTMLButtonElement;

  constructor(readonly focusTerminal: () => void) {
    this.list = h('ul', { class: 'transfer-list' });
    this.live = h('div', {
      class: 'visually-hidden',
      'aria-live': 'polite',
      'data-testid': 'transfer-announce',
    });
    this.clear = h(
      'button',
      {
        type: 'button',
        class: 'transfer-clear',
        'data-testid': 'transfer-clear',
        onclick: () => this.clearFinished(),
      },
      'Clear finished',
    );
    this.element = h(
      'section',
      {
        class: 'transfer-panel',
        'aria-label': 'File transfers',
        hidden: true,
        'data-testid': 'transfer-panel',
      },
      h('header', { class: 'transfer-header' }, h('h2', null, 'File transfers'), this.clear),
      this.list,
      this.live,
    );
  }

  add(title: string): TransferRow {
    const row = new TransferRow(title, this);
    this.list.append(row.element);
    this.refresh();
    return row;
  }

  announce(text: string): void {
    this.live.textContent = visibleText(text);
  }

  /** Shown while it has rows; Clear finished only when something has finished. */
  refresh(): void {
    const rows = [...this.list.children] as HTMLElement[];
    this.element.hidden = rows.length === 0;
    this.clear.hidden = !rows.some((r) => ['done', 'failed', 'cancelled'].includes(r.dataset.state ?? ''));
  }

  private clearFinished(): void {
    for (const row of [...this.list.children] as HTMLElement[]) {
      if (['done', 'failed', 'cancelled'].includes(row.dataset.state ?? '')) row.remove();
    }
    this.refresh();
    this.focusTerminal();
  }
}

/** What an upload or a download needs from the page. */
export interface TransferContext {
  readonly region: string;
  /** `/api/environments/<region>` */
  readonly base: string;
  readonly panel: TransferPanel;
  /** A file landed in the home or left it: the status line's usage may have changed. */
  onFinished(): void;
  /** Back to the terminal after a dialog closes. */
  focusTerminal(): void;
}
