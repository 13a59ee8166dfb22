/**
 * The question a terminal's OSC 52 clipboard write asks (see clipboard-gate.ts): a small modal
 * with the count, a preview where control and bidi characters show as markers (text nodes only,
 * never HTML), and Allow once / Always for this terminal / Deny. Focus starts on the preview, not
 * on a button, so keys typed while the prompt appears (Enter ending a command) choose nothing;
 * Tab reaches the buttons, Escape closes it without copying.
 */
import { openDialog } from '../lib/dialog.js';
import { h, replaceChildren, visibleName } from '../lib/dom.js';
import { clipboardPreview, clipboardQuestion, type ClipboardChoice } from './clipboard-gate.js';

export interface ClipboardPrompt {
  /** A newer write replaced the one asked about: show it instead. */
  update(text: string, replaced: number): void;
  /** Closes without copying (the tab went away). */
  close(): void;
}

export function openClipboardPrompt(
  text: string,
  answer: (choice: ClipboardChoice) => void,
): ClipboardPrompt {
  let choice: ClipboardChoice = 'dismiss';
  const question = h('p', { 'data-testid': 'clipboard-question' });
  const preview = h('pre', {
    class: 'clipboard-preview',
    tabindex: 0,
    'aria-label': 'Text to copy',
    'data-testid': 'clipboard-preview',
  });
  const more = h('p', { class: 'hint', 'data-testid': 'clipboard-more' });
  const replacedNote = h('p', { class: 'hint', hidden: true, 'data-testid': 'clipboard-replaced' });
  const button = (label: string, value: ClipboardChoice, testId: string, primary = false) =>
    h(
      'button',
      {
        type: 'button',
        class: primary ? 'btn btn-primary' : 'btn',
        'data-testid': testId,
        onclick: () => {
          choice = value;
          handle.close();
        },
      },
      label,
    );
  const show = (value: string) => {
    question.textContent = clipboardQuestion(value);
    const { shown, omitted } = clipboardPreview(value);
    replaceChildren(preview, visibleName(shown, 'block'));
    more.textContent = omitted > 0 ? `… and ${omitted} more characters.` : '';
    more.hidden = omitted === 0;
  };
  const handle = openDialog(
    'Copy to your clipboard?',
    question,
    preview,
    more,
    replacedNote,
    h(
      'p',
      { class: 'hint' },
      'Allow it only if you asked for this copy (in vim, tmux or a similar program). Output of a file or a command can carry text you did not choose, such as a command to paste into a shell.',
    ),
    h(
      'div',
      { class: 'dialog-actions' },
      button('Allow once', 'allow-once', 'clipboard-allow-once', true),
      button('Always for this terminal', 'always', 'clipboard-always'),
      button('Deny', 'deny', 'clipboard-deny'),
    ),
  );
  handle.element.classList.add('clipboard-dialog');
  handle.element.dataset.testid = 'clipboard-prompt';
  handle.element.addEventListener('close', () => answer(choice));
  show(text);
  preview.focus();
  return {
    update(value, replaced) {
      show(value);
      replacedNote.hidden = false;
      replacedNote.textContent = `The program asked again; this is its latest text (${replaced} earlier ${replaced === 1 ? 'request' : 'requests'} dropped).`;
    },
    close: () => handle.close(),
  };
}
