/** Assignments: a user or group × an AWS account × a permission set. */
import type { AdminAssignment, PrincipalKind } from '../../../server/protocol/api.js';
import { deleteJson, errorMessage, getJson, listOf, postJson } from '../lib/api.js';
import { confirmDialog } from '../lib/dialog.js';
import { h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import type { AdminData } from './admin-data.js';
import { alertRegion, badge, cell, field, table, type AdminTab } from './admin-ui.js';

export class AssignmentsTab implements AdminTab {
  readonly id = 'assignments';
  readonly label = 'Assignments';
  private readonly root = h('div', { 'data-testid': 'assignments-tab' });
  private readonly alert = alertRegion();
  private readonly list = h('div');
  private assignments: AdminAssignment[] = [];

  constructor(private readonly data: AdminData) {}

  async render(): Promise<HTMLElement> {
    await Promise.all([this.data.reload(), this.loadAssignments()]);
    replaceChildren(
      this.root,
      this.alert,
      this.createCard(),
      h('section', { class: 'card' }, h('h2', null, 'Assignments'), this.list),
    );
    this.renderList();
    return this.root;
  }

  private async loadAssignments(): Promise<void> {
    this.assignments = listOf<AdminAssignment>(await getJson<unknown>('/api/admin/assignments'));
    this.assignments.sort(
      (a, b) => a.accountName.localeCompare(b.accountName) || a.principalName.localeCompare(b.principalName),
    );
  }

  private createCard(): HTMLElement {
    const alert = alertRegion();
    const kind = h(
      'select',
      null,
      h('option', { value: 'group' }, 'Group'),
      h('option', { value: 'user' }, 'User'),
    );
    const principal = h('select');
    const fillPrincipals = () => {
      const options =
        kind.value === 'user'
          ? this.data.users.map((u) => h('option', { value: u.id }, u.username))
          : this.data.groups.map((g) => h('option', { value: g.id }, g.name));
      replaceChildren(
        principal,
        options.length > 0 ? options : h('option', { value: '' }, `No ${kind.value}s yet`),
      );
    };
    kind.addEventListener('change', fillPrincipals);
    fillPrincipals();
    const account = h(
      'select',
      null,
      this.data.accounts.length > 0
        ? this.data.accounts.map((a) => h('option', { value: a.accountId }, `${a.name} (${a.accountId})`))
        : h('option', { value: '' }, 'No accounts yet: add one first'),
    );
    const permissionSet = h(
      'select',
      null,
      this.data.permissionSets.length > 0
        ? this.data.permissionSets.map((p) => h('option', { value: p.name }, p.name))
        : h('option', { value: '' }, 'No permission sets yet'),
    );
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Assign');
    const form = h(
      'form',
      { novalidate: true, 'data-testid': 'create-assignment-form' },
      alert,
      h(
        'div',
        { class: 'grid-form' },
        field('assign-kind', 'Principal type', kind),
        field('assign-principal', 'User or group', principal),
        field('assign-account', 'AWS account', account),
        field('assign-permission-set', 'Permission set', permissionSet),
      ),
      submit,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!principal.value || !account.value || !permissionSet.value) {
        showAlert(alert, 'Choose a user or group, an account and a permission set.');
        return;
      }
      const body = {
        principalType: kind.value as PrincipalKind,
        principalId: principal.value,
        accountId: account.value,
        permissionSet: permissionSet.value,
      };
      void whileBusy(submit, async () => {
        try {
          await postJson('/api/admin/assignments', body);
          showAlert(alert, '');
          await this.loadAssignments();
          this.renderList();
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
    return h(
      'section',
      { class: 'card' },
      h('h2', null, 'Assign access'),
      h('p', { class: 'muted' }, 'Members of a group get everything assigned to the group.'),
      form,
    );
  }

  private renderList(): void {
    const rows = this.assignments.map((a) => {
      const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger' }, 'Remove');
      remove.addEventListener('click', () => {
        void (async () => {
          const ok = await confirmDialog(
            'Remove assignment',
            `Remove ${a.permissionSet} on ${a.accountName} from ${a.principalType} ${a.principalName}?`,
            'Remove',
          );
          if (!ok) return;
          await whileBusy(remove, async () => {
            try {
              await deleteJson(`/api/admin/assignments/${encodeURIComponent(a.id)}`);
              showAlert(this.alert, '');
            } catch (error) {
              showAlert(this.alert, errorMessage(error));
            }
            await this.loadAssignments();
            this.renderList();
          });
        })();
      });
      return h(
        'tr',
        { 'data-testid': 'assignment-row' },
        cell(badge(a.principalType === 'group' ? 'Group' : 'User'), ' ', h('strong', null, a.principalName)),
        cell(a.accountName, h('div', { class: 'hint mono' }, a.accountId)),
        cell(a.permissionSet),
        h('td', { class: 'actions' }, remove),
      );
    });
    replaceChildren(
      this.list,
      table(['Principal', 'AWS account', 'Permission set', ''], rows, 'Nothing is assigned yet.'),
    );
  }
}
