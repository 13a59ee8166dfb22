/** Permission sets: name, description, session duration (1–12 h), role ARN template, inline session policy. */
import type { AdminPermissionSet } from '../../../server/protocol/api.js';
import { deleteJson, errorMessage, patchJson, postJson } from '../lib/api.js';
import { confirmDialog } from '../lib/dialog.js';
import { formatDuration, h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import type { AdminData } from './admin-data.js';
import { alertRegion, cell, field, recordSelect, table, type AdminTab, actThenRefresh } from './admin-ui.js';

const defaultTemplate = 'arn:aws:iam::{accountId}:role/Cove-{name}';

export class PermissionSetsTab implements AdminTab {
  readonly id = 'permission-sets';
  readonly label = 'Permission sets';
  private readonly root = h('div', { 'data-testid': 'permission-sets-tab' });
  private readonly alert = alertRegion();
  private readonly list = h('div');
  private readonly formCard = h('section', { class: 'card' });

  constructor(private readonly data: AdminData) {}

  async render(): Promise<HTMLElement> {
    await this.data.reload('permissionSets');
    replaceChildren(
      this.root,
      this.alert,
      this.formCard,
      h('section', { class: 'card' }, h('h2', null, 'Permission sets'), this.list),
    );
    this.renderForm();
    this.renderList();
    return this.root;
  }

  /** The create form, or the edit form for `editing`. */
  private renderForm(editing?: AdminPermissionSet): void {
    const alert = alertRegion();
    const name = h('input', { type: 'text', autocomplete: 'off', value: editing?.name ?? '' });
    const description = h('input', { type: 'text', autocomplete: 'off', value: editing?.description ?? '' });
    const hours = h('input', {
      type: 'number',
      min: 1,
      max: 12,
      step: 1,
      value: editing ? Math.max(1, Math.round(editing.sessionDurationS / 3600)) : 1,
    });
    const template = h('input', {
      type: 'text',
      class: 'mono',
      autocomplete: 'off',
      value: editing?.roleArnTemplate ?? '',
      placeholder: defaultTemplate,
    });
    const policy = h('textarea', {
      class: 'mono',
      spellcheck: 'false',
      placeholder: '{\n  "Version": "2012-10-17",\n  "Statement": [ … ]\n}',
    });
    policy.value = editing?.sessionPolicy ? prettyJson(editing.sessionPolicy) : '';
    const submit = h(
      'button',
      { type: 'submit', class: 'btn btn-primary' },
      editing ? 'Save changes' : 'Create permission set',
    );
    const cancel = editing ? h('button', { type: 'button', class: 'btn' }, 'Cancel') : null;
    cancel?.addEventListener('click', () => this.renderForm());
    const form = h(
      'form',
      { novalidate: true, 'data-testid': 'permission-set-form' },
      alert,
      h(
        'div',
        { class: 'grid-form' },
        field('ps-name', 'Name', name),
        field('ps-description', 'Description (optional)', description),
        field('ps-hours', 'Session duration (hours, 1–12)', hours),
      ),
      field(
        'ps-template',
        'IAM role ARN template (optional)',
        template,
        `{accountId} and {name} are filled in. Default: ${defaultTemplate}`,
      ),
      field(
        'ps-policy',
        'Inline session policy (optional JSON)',
        policy,
        'Further limits what the role can do in shells opened with this permission set.',
      ),
      h('div', { class: 'row' }, submit, cancel),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const h1 = Number(hours.value);
      if (!Number.isInteger(h1) || h1 < 1 || h1 > 12) {
        showAlert(alert, 'The session duration is a whole number of hours from 1 to 12.');
        return;
      }
      let sessionPolicy: string | null = null;
      if (policy.value.trim()) {
        try {
          sessionPolicy = JSON.stringify(JSON.parse(policy.value) as unknown);
        } catch {
          showAlert(alert, 'The session policy is not valid JSON. Check brackets, quotes and commas.');
          return;
        }
      }
      const body = {
        name: name.value.trim(),
        description: description.value.trim(),
        sessionDurationS: h1 * 3600,
        ...(template.value.trim() ? { roleArnTemplate: template.value.trim() } : {}),
        sessionPolicy,
      };
      void whileBusy(submit, async () => {
        try {
          if (editing) await patchJson(`/api/admin/permission-sets/${encodeURIComponent(editing.id)}`, body);
          else await postJson('/api/admin/permission-sets', body);
          await this.data.reload('permissionSets');
          this.renderForm();
          this.renderList();
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
    replaceChildren(
      this.formCard,
      h('h2', null, editing ? `Edit ${editing.name}` : 'Create a permission set'),
      form,
    );
    if (editing) {
      this.formCard.scrollIntoView({ behavior: 'smooth', block: 'start' });
      name.focus();
    }
  }

  private renderList(): void {
    const rows = this.data.permissionSets.map((set) => {
      const edit = h('button', { type: 'button', class: 'btn btn-small' }, 'Edit');
      edit.addEventListener('click', () => this.renderForm(set));
      const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger' }, 'Delete');
      remove.addEventListener('click', () => {
        void (async () => {
          const ok = await confirmDialog(
            'Delete permission set',
            `Delete ${set.name}? Assignments that use it are removed, and new shells cannot use it.`,
            'Delete',
          );
          if (ok)
            await whileBusy(remove, () =>
              this.act(() => deleteJson(`/api/admin/permission-sets/${encodeURIComponent(set.id)}`)),
            );
        })();
      });
      return h(
        'tr',
        { 'data-permission-set': set.name },
        cell(h('strong', null, set.name), h('div', { class: 'hint mono' }, set.roleArnTemplate)),
        cell(set.description || '—'),
        cell(formatDuration(set.sessionDurationS)),
        cell(set.sessionPolicy ? 'Inline policy' : '—'),
        cell(
          recordSelect(`Recording for ${set.name}`, set.record, (record) =>
            this.act(() => patchJson(`/api/admin/permission-sets/${encodeURIComponent(set.id)}`, { record })),
          ),
        ),
        h('td', { class: 'actions' }, edit, remove),
      );
    });
    replaceChildren(
      this.list,
      table(['Name', 'Description', 'Session', 'Policy', 'Recording', ''], rows, 'No permission sets yet.'),
    );
  }

  private act(task: () => Promise<unknown>): Promise<void> {
    return actThenRefresh(this.alert, task, async () => {
      await this.data.reload('permissionSets');
      this.renderList();
    });
  }
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text) as unknown, null, 2);
  } catch {
    return text;
  }
}
