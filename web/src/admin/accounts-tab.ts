/** AWS accounts: the 12-digit id and a friendly name users see in the portal. */
import { accountIdPattern } from '../../../server/protocol/api.js';
import { deleteJson, errorMessage, patchJson, postJson } from '../lib/api.js';
import { confirmDialog, openDialog } from '../lib/dialog.js';
import { formatTime, h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import type { AdminData } from './admin-data.js';
import { alertRegion, cell, field, table, type AdminTab, actThenRefresh } from './admin-ui.js';

export class AccountsTab implements AdminTab {
  readonly id = 'accounts';
  readonly label = 'AWS accounts';
  private readonly root = h('div', { 'data-testid': 'accounts-tab' });
  private readonly alert = alertRegion();
  private readonly list = h('div');

  constructor(private readonly data: AdminData) {}

  async render(): Promise<HTMLElement> {
    await this.data.reload('accounts');
    replaceChildren(
      this.root,
      this.alert,
      this.createCard(),
      h('section', { class: 'card' }, h('h2', null, 'AWS accounts'), this.list),
    );
    this.renderList();
    return this.root;
  }

  private createCard(): HTMLElement {
    const alert = alertRegion();
    const accountId = h('input', {
      type: 'text',
      inputmode: 'numeric',
      autocomplete: 'off',
      maxlength: 12,
      placeholder: '123456789012',
    });
    const name = h('input', { type: 'text', autocomplete: 'off', placeholder: 'production' });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add account');
    const form = h(
      'form',
      { novalidate: true, 'data-testid': 'create-account-form' },
      alert,
      h(
        'div',
        { class: 'grid-form' },
        field('account-id', 'Account id (12 digits)', accountId),
        field('account-name', 'Name', name),
      ),
      submit,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const id = accountId.value.replace(/[\s-]/g, '');
      if (!accountIdPattern.test(id)) {
        showAlert(alert, 'An AWS account id is exactly 12 digits, for example 123456789012.');
        return;
      }
      void whileBusy(submit, async () => {
        try {
          await postJson('/api/admin/accounts', { accountId: id, name: name.value.trim() });
          showAlert(alert, '');
          form.reset();
          await this.data.reload('accounts');
          this.renderList();
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
    return h('section', { class: 'card' }, h('h2', null, 'Add an AWS account'), form);
  }

  private renderList(): void {
    const rows = this.data.accounts.map((account) => {
      const rename = h('button', { type: 'button', class: 'btn btn-small' }, 'Rename');
      rename.addEventListener('click', () => this.rename(account.accountId, account.name));
      const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger' }, 'Delete');
      remove.addEventListener('click', () => {
        void (async () => {
          const ok = await confirmDialog(
            'Delete account',
            `Remove ${account.name} (${account.accountId}) from Cove? Its assignments are removed too.`,
            'Delete account',
          );
          if (ok)
            await whileBusy(remove, () =>
              this.act(() => deleteJson(`/api/admin/accounts/${encodeURIComponent(account.accountId)}`)),
            );
        })();
      });
      return h(
        'tr',
        { 'data-account-id': account.accountId },
        cell(h('strong', null, account.name)),
        cell(h('span', { class: 'mono' }, account.accountId)),
        cell(formatTime(account.createdAt)),
        h('td', { class: 'actions' }, rename, remove),
      );
    });
    replaceChildren(this.list, table(['Name', 'Account id', 'Added', ''], rows, 'No AWS accounts yet.'));
  }

  private rename(accountId: string, current: string): void {
    const alert = alertRegion();
    const name = h('input', { type: 'text', value: current });
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const save = h('button', { type: 'submit', class: 'btn btn-primary', form: 'rename-account' }, 'Save');
    const form = h(
      'form',
      { id: 'rename-account', novalidate: true },
      field('rename-account-name', 'Name', name),
    );
    const dialog = openDialog(
      `Rename ${accountId}`,
      alert,
      form,
      h('div', { class: 'dialog-actions' }, cancel, save),
    );
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void whileBusy(save, async () => {
        try {
          await patchJson(`/api/admin/accounts/${encodeURIComponent(accountId)}`, {
            name: name.value.trim(),
          });
          dialog.close();
          await this.data.reload('accounts');
          this.renderList();
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
  }

  private act(task: () => Promise<unknown>): Promise<void> {
    return actThenRefresh(this.alert, task, async () => {
      await this.data.reload('accounts');
      this.renderList();
    });
  }
}
