/** Homes: every user × region home with its usage, last use and expiry; an admin can delete one. */
import { formatHomeBytes, type AdminHome } from '../../../server/protocol/api.js';
import { errorMessage, getJson, listOf, request } from '../lib/api.js';
import { openDialog } from '../lib/dialog.js';
import { formatTime, h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import { alertRegion, badge, cell, field, table, type AdminTab } from './admin-ui.js';

/** Homes this close to expiry get a warning badge. */
const soonMs = 14 * 86_400_000;

export class HomesTab implements AdminTab {
  readonly id = 'homes';
  readonly label = 'Homes';
  private readonly root = h('div', { 'data-testid': 'homes-tab' });
  private readonly alert = alertRegion();
  private readonly list = h('div');
  private homes: AdminHome[] = [];

  async render(): Promise<HTMLElement> {
    await this.reload();
    replaceChildren(
      this.root,
      this.alert,
      h(
        'section',
        { class: 'card' },
        h('h2', null, 'Homes'),
        h(
          'p',
          { class: 'muted' },
          'One persistent home per user and region. Homes unused for the retention period are deleted automatically on their expiry date.',
        ),
        h(
          'p',
          { class: 'muted', 'data-testid': 'size-convention' },
          'Sizes are in binary units, as df -h counts: 1 GiB = 1024 MiB. ext4 keeps about 5% for itself, so a 1 GiB home holds about 974 MiB (df shows 974M).',
        ),
        this.list,
      ),
    );
    this.renderList();
    return this.root;
  }

  private async reload(): Promise<void> {
    this.homes = listOf<AdminHome>(await getJson<unknown>('/api/admin/homes'));
  }

  private renderList(): void {
    const now = Date.now();
    const rows = this.homes.map((home) => {
      const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger' }, 'Delete');
      remove.addEventListener('click', () => this.confirmDelete(home, remove));
      const expires = Date.parse(home.expiresAt);
      const used =
        home.usedBytes === null
          ? h('span', { class: 'muted' }, `not mounted · ${formatHomeBytes(home.sizeBytes)}`)
          : `${formatHomeBytes(home.usedBytes)} / ${formatHomeBytes(home.sizeBytes)}`;
      return h(
        'tr',
        { 'data-home': `${home.userId}/${home.region}` },
        cell(
          home.username ? h('strong', null, home.username) : h('span', { class: 'muted' }, 'deleted user'),
        ),
        cell(h('span', { class: 'mono' }, home.region)),
        cell(used),
        cell(formatTime(home.lastUsedAt)),
        cell(formatTime(home.expiresAt), ' ', expires - now < soonMs ? badge('soon', 'warn') : null),
        h('td', { class: 'actions' }, remove),
      );
    });
    replaceChildren(
      this.list,
      table(['User', 'Region', 'Used', 'Last used', 'Expires', ''], rows, 'No homes yet.'),
    );
  }

  /** Type-to-confirm: deleting a home erases the user's files for good. */
  private confirmDelete(home: AdminHome, button: HTMLButtonElement): void {
    const alert = alertRegion();
    const input = h('input', { type: 'text', autocomplete: 'off', spellcheck: false });
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const ok = h(
      'button',
      { type: 'submit', class: 'btn btn-danger', form: 'delete-home', disabled: true },
      'Delete home',
    );
    const who = home.username ?? home.userId;
    const form = h(
      'form',
      { id: 'delete-home', novalidate: true },
      h(
        'p',
        null,
        `Delete the home of ${who} in ${home.region}? Every file in it is erased and their open shells there close. This cannot be undone.`,
      ),
      field('delete-home-confirm', 'Type delete to confirm', input),
    );
    const dialog = openDialog('Delete home', alert, form, h('div', { class: 'dialog-actions' }, cancel, ok));
    input.addEventListener('input', () => (ok.disabled = input.value.trim() !== 'delete'));
    cancel.addEventListener('click', () => dialog.close());
    input.focus();
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (input.value.trim() !== 'delete') return;
      void whileBusy(ok, async () => {
        try {
          await request(
            `/api/admin/homes/${encodeURIComponent(home.userId)}/${encodeURIComponent(home.region)}`,
            { method: 'DELETE', body: { confirm: 'delete' } },
          );
          dialog.close();
          await whileBusy(button, async () => {
            await this.reload();
            this.renderList();
          });
          showAlert(this.alert, '');
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
  }
}
