/**
 * The status line's home usage (`212 MiB / 1 GiB`, the expiry date in its tooltip), refreshed every
 * 30 s and at once when asked (after a notice, a restart or a delete), plus the Actions menu:
 * Upload file and Download file (handed to the page's transfers), Restart environment and Delete
 * home (type "delete" to confirm).
 */
import { formatHomeBytes, type EnvironmentInfo } from '../../../server/protocol/api.js';
import { errorMessage, getJson, postJson, request } from '../lib/api.js';
import { confirmDialog, openDialog } from '../lib/dialog.js';
import { h, showAlert, whileBusy } from '../lib/dom.js';

const refreshMs = 30_000;

const day = (iso: string): string =>
  new Date(iso).toLocaleDateString(undefined, { year: 'numeric', month: 'long', day: 'numeric' });

/** The usage text and its tooltip for one environment answer. */
export function homeUsageText(info: EnvironmentInfo): { text: string; title: string } {
  if (!info.home) return { text: 'Home: new', title: 'Your home is created when your environment starts.' };
  const { usedBytes, totalBytes, sizeBytes, expiresAt } = info.home;
  return {
    text: `${formatHomeBytes(usedBytes)} / ${formatHomeBytes(sizeBytes)}`,
    title: `Home: ${formatHomeBytes(usedBytes)} used of ${formatHomeBytes(totalBytes)} usable in your ${formatHomeBytes(sizeBytes)} home (${Math.round((usedBytes / Math.max(1, totalBytes)) * 100)}%; 1 GiB = 1024 MiB, as df -h counts). If you do not use it, it is deleted on ${day(expiresAt)}.`,
  };
}

export class HomeStatus {
  readonly element = h('span', { class: 'shell-status-item', 'data-testid': 'home-usage' });
  private timer: number | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(private readonly region: string) {}

  start(): void {
    void this.refresh();
    this.timer = window.setInterval(() => void this.refresh(), refreshMs);
  }

  stop(): void {
    window.clearInterval(this.timer);
  }

  refresh(): Promise<void> {
    this.inFlight ??= getJson<EnvironmentInfo>(`/api/environments/${encodeURIComponent(this.region)}`)
      .then((info) => {
        const { text, title } = homeUsageText(info);
        this.element.textContent = text;
        this.element.title = title;
        const full = info.home ? info.home.usedBytes / Math.max(1, info.home.totalBytes) : 0;
        this.element.classList.toggle('warning', full >= 0.9);
      })
      .catch(() => {
        // The status line is a convenience: keep the last value rather than show an error.
      })
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}

export interface EnvironmentActionsHooks {
  /** The environment's terminals are gone (restart or delete): drop the tabs, open a fresh one. */
  onReset(message: string): void;
  onError(message: string): void;
  /** Back to the terminal when a menu action ends without replacing the terminals. */
  focusTerminal?(): void;
  /** Copy link to this shell: the page copies its plain shell URL. */
  copyLink?(): void;
  /** Upload file… and Download file… (the shell page's TransferActions). */
  readonly transfers?: { upload(): void; download(): void };
}

/** The Actions menu button and its popup; `open()` opens it with the keyboard on its first item. */
export function environmentActions(
  region: string,
  hooks: EnvironmentActionsHooks,
): { readonly element: HTMLElement; open(): void } {
  const base = `/api/environments/${encodeURIComponent(region)}`;
  const menu = h('div', { class: 'shell-menu', role: 'menu', hidden: true, 'data-testid': 'actions-menu' });
  const toggle = h(
    'button',
    {
      type: 'button',
      class: 'shell-actions-button',
      'aria-haspopup': 'menu',
      'aria-expanded': 'false',
      'data-testid': 'actions',
    },
    'Actions ▾',
  );
  const close = () => {
    menu.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
  };
  const show = (shown: boolean) => {
    menu.hidden = !shown;
    toggle.setAttribute('aria-expanded', String(shown));
    // Fixed, not absolute: the tab bar scrolls sideways and would clip the menu.
    const box = toggle.getBoundingClientRect();
    menu.style.top = `${box.bottom + 2}px`;
    menu.style.right = `${Math.max(4, window.innerWidth - box.right)}px`;
  };
  toggle.addEventListener('click', () => show(menu.hidden));
  // Escape closes the menu and gives the keyboard back to the terminal; arrows move between items.
  menu.addEventListener('keydown', (event) => {
    const items = [...menu.querySelectorAll('button')];
    const at = items.indexOf(document.activeElement as HTMLButtonElement);
    if (event.key === 'Escape') {
      event.preventDefault();
      close();
      hooks.focusTerminal?.();
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const step = event.key === 'ArrowDown' ? 1 : -1;
      items[(at + step + items.length) % items.length]?.focus();
    }
  });
  document.addEventListener('click', (event) => {
    if (!wrapper.contains(event.target as Node)) close();
  });

  const restart = h(
    'button',
    { type: 'button', role: 'menuitem', 'data-testid': 'restart-environment' },
    'Restart environment',
  );
  restart.addEventListener('click', () => {
    close();
    void (async () => {
      const ok = await confirmDialog(
        'Restart environment',
        'Your terminals in this region close and you get a fresh environment. Files in your home are kept; everything else is reset.',
        'Restart',
        false,
      );
      if (!ok) {
        hooks.focusTerminal?.();
        return;
      }
      try {
        await postJson(`${base}/restart`, {});
        hooks.onReset('Your environment was restarted; your home is kept.');
      } catch (error) {
        hooks.onError(errorMessage(error));
        hooks.focusTerminal?.();
      }
    })();
  });

  const remove = h(
    'button',
    { type: 'button', role: 'menuitem', class: 'danger', 'data-testid': 'delete-home' },
    'Delete home…',
  );
  remove.addEventListener('click', () => {
    close();
    confirmDeleteHome(base, hooks);
  });

  const transfers = hooks.transfers;
  if (transfers) {
    const item = (label: string, testId: string, run: () => void) => {
      const onclick = () => {
        close();
        run();
      };
      return h('button', { type: 'button', role: 'menuitem', 'data-testid': testId, onclick }, label);
    };
    menu.append(
      item('Upload file…', 'upload-file', () => transfers.upload()),
      item('Download file…', 'download-file', () => transfers.download()),
    );
  }
  const copyLink = hooks.copyLink;
  if (copyLink) {
    const onclick = () => {
      close();
      copyLink();
    };
    menu.append(
      h(
        'button',
        { type: 'button', role: 'menuitem', 'data-testid': 'copy-shell-link', onclick },
        'Copy link to this shell',
      ),
    );
  }
  menu.append(restart, remove);
  const wrapper = h('div', { class: 'shell-actions' }, toggle, menu);
  return {
    element: wrapper,
    open: () => {
      show(true);
      menu.querySelector('button')?.focus();
    },
  };
}

function confirmDeleteHome(base: string, hooks: EnvironmentActionsHooks): void {
  const alert = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
  const input = h('input', {
    type: 'text',
    id: 'delete-home-confirm',
    autocomplete: 'off',
    spellcheck: false,
    'data-testid': 'delete-home-confirm',
  });
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const ok = h(
    'button',
    { type: 'submit', class: 'btn btn-danger', form: 'delete-home-form', disabled: true },
    'Delete home',
  );
  const form = h(
    'form',
    { id: 'delete-home-form', novalidate: true },
    h(
      'p',
      null,
      'Every file in your home in this region is erased, your terminals here close, and you start again with a fresh, empty home. Use this when your shell no longer starts (for example after a broken .bashrc). This cannot be undone.',
    ),
    h('label', { for: 'delete-home-confirm' }, 'Type delete to confirm'),
    input,
  );
  const dialog = openDialog('Delete home', alert, form, h('div', { class: 'dialog-actions' }, cancel, ok));
  input.addEventListener('input', () => (ok.disabled = input.value.trim() !== 'delete'));
  cancel.addEventListener('click', () => dialog.close());
  let deleted = false;
  // Cancel, Escape or the close button: back to the terminal (after a delete a new one takes it).
  dialog.element.addEventListener('close', () => {
    if (!deleted) hooks.focusTerminal?.();
  });
  input.focus();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (input.value.trim() !== 'delete') return;
    void whileBusy(ok, async () => {
      try {
        await request(`${base}/home`, { method: 'DELETE', body: { confirm: 'delete' } });
        deleted = true;
        dialog.close();
        hooks.onReset('Your home was deleted; this terminal has a fresh one.');
      } catch (error) {
        showAlert(alert, errorMessage(error));
      }
    });
  });
}
