/**
 * A titled, read-only block of text with a Copy button and a status that says what happened (or
 * that the text is selected for Ctrl+C when the browser refuses the clipboard): the portal's
 * command line keys and its laptop config use the same one.
 */
import { copyText } from './clipboard.js';
import { h } from './dom.js';

export interface CopyBlockOptions {
  /** Prefix of the test ids: `<testId>`, `<testId>-text`, `<testId>-copy`. */
  readonly testId: string;
  readonly title: string;
  readonly hint: string;
  readonly text: string;
  /** Blank rows below the text in the box. */
  readonly extraRows: number;
  /** Long unbroken words (keys, tokens) wrap anywhere instead of scrolling sideways. */
  readonly breakWords?: boolean;
  /** Names the button after the block ("Copy: <title>") for screen readers. */
  readonly labelButton?: boolean;
}

export function copyBlock(o: CopyBlockOptions): HTMLElement {
  const area = h('textarea', {
    readonly: true,
    rows: o.text.split('\n').length + o.extraRows,
    spellcheck: 'false',
    ...(o.breakWords ? { wrap: 'soft' } : {}),
    'aria-label': o.title,
    'data-testid': `${o.testId}-text`,
    style: `width:100%;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:0.8rem;${o.breakWords ? 'word-break:break-all;' : ''}resize:vertical`,
  });
  area.value = o.text;
  const copy = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-small',
      'data-testid': `${o.testId}-copy`,
      ...(o.labelButton ? { 'aria-label': `Copy: ${o.title}` } : {}),
    },
    'Copy',
  );
  const status = h('span', { class: 'muted', role: 'status', 'aria-live': 'polite' });
  copy.addEventListener('click', () => {
    void copyText(o.text, area).then((copied) => {
      status.textContent = copied ? 'Copied' : 'Selected: press Ctrl+C (⌘C) to copy';
    });
  });
  return h(
    'section',
    { 'data-testid': o.testId, style: 'margin-top:1rem' },
    h(
      'div',
      { class: 'row' },
      h('h3', { style: 'margin:0' }, o.title),
      h('span', { class: 'spacer' }),
      status,
      copy,
    ),
    h('p', { class: 'muted', style: 'margin:0.25rem 0' }, o.hint),
    area,
  );
}
