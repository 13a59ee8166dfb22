/** Modal dialogs on the native <dialog> element: focus trapping and Escape come for free. */
import { h, type Children } from './dom.js';

export interface DialogHandle {
  readonly element: HTMLDialogElement;
  close(): void;
}

/** Opens a modal; it removes itself from the page when closed. */
export function openDialog(title: string, ...body: Children): DialogHandle {
  const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
  const dialog = h('dialog', { 'aria-labelledby': titleId }, h('h2', { id: titleId }, title), ...body);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return { element: dialog, close: () => dialog.close() };
}

/** Asks a yes/no question; resolves true only when the user confirms. */
export function confirmDialog(
  title: string,
  message: string,
  confirmLabel = 'Confirm',
  danger = true,
): Promise<boolean> {
  return new Promise((resolve) => {
    let answer = false;
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const ok = h(
      'button',
      { type: 'button', class: danger ? 'btn btn-danger' : 'btn btn-primary' },
      confirmLabel,
    );
    const handle = openDialog(
      title,
      h('p', null, message),
      h('div', { class: 'dialog-actions' }, cancel, ok),
    );
    cancel.addEventListener('click', () => handle.close());
    ok.addEventListener('click', () => {
      answer = true;
      handle.close();
    });
    handle.element.addEventListener('close', () => resolve(answer));
    cancel.focus();
  });
}
