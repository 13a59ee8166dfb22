/**
 * Groups: create, edit members and the weekly shell time, delete. Assign accounts to groups in
 * the Assignments tab.
 */
import {
  formatHomeBytes,
  formatUsageDuration,
  maxWeeklyUsageLimitS,
  type AdminGroup,
  type PortalResponse,
  type PrestartProgress,
} from '../../../server/protocol/api.js';
import { deleteJson, errorMessage, getJson, patchJson, postJson, putJson } from '../lib/api.js';
import { confirmDialog, openDialog } from '../lib/dialog.js';
import { h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import type { AdminData } from './admin-data.js';
import { alertRegion, cell, field, recordSelect, table, type AdminTab, actThenRefresh } from './admin-ui.js';

const hoursInput = (value = ''): HTMLInputElement =>
  h('input', { type: 'number', min: '0', max: String(maxWeeklyUsageLimitS / 3600), step: '0.5', value });

/** Hours typed by the administrator → the API's seconds; empty: unlimited (null). Throws on text. */
function weeklyLimitFrom(input: HTMLInputElement): number | null {
  const text = input.value.trim();
  // A number field reads as empty when it holds something that is not a number: not "unlimited".
  if (input.validity.badInput || (text !== '' && !Number.isFinite(Number(text))))
    throw new Error('Enter the shell time as a number of hours, or leave it empty for unlimited.');
  return text === '' ? null : Math.round(Number(text) * 3600);
}

const problem = (error: unknown): string =>
  error instanceof Error && error.name === 'Error' ? error.message : errorMessage(error);

export class GroupsTab implements AdminTab {
  readonly id = 'groups';
  readonly label = 'Groups';
  private readonly root = h('div', { 'data-testid': 'groups-tab' });
  private readonly alert = alertRegion();
  private readonly list = h('div');

  constructor(private readonly data: AdminData) {}

  async render(): Promise<HTMLElement> {
    await this.data.reload('users', 'groups');
    replaceChildren(
      this.root,
      this.alert,
      this.createCard(),
      h('section', { class: 'card' }, h('h2', null, 'Groups'), this.list),
    );
    this.renderList();
    return this.root;
  }

  private createCard(): HTMLElement {
    const alert = alertRegion();
    const name = h('input', { type: 'text', autocomplete: 'off', required: true });
    const description = h('input', { type: 'text', autocomplete: 'off' });
    const homeSize = h('input', { type: 'number', min: '0.0625', step: '0.25', inputmode: 'decimal' });
    const weeklyHours = hoursInput();
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create group');
    const form = h(
      'form',
      { novalidate: true, 'data-testid': 'create-group-form' },
      alert,
      h(
        'div',
        { class: 'grid-form' },
        field('group-name', 'Name', name),
        field('group-description', 'Description (optional)', description),
        field(
          'group-home-size',
          'Home size in GiB (optional)',
          homeSize,
          "Members' new homes get this size; empty: the server's default.",
        ),
        field(
          'group-weekly-hours',
          'Shell hours per week (optional)',
          weeklyHours,
          'Counts while a member’s environment runs; the most generous of their groups applies. Empty: unlimited.',
        ),
      ),
      submit,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void whileBusy(submit, async () => {
        try {
          const weeklyUsageLimitS = weeklyLimitFrom(weeklyHours);
          await postJson('/api/admin/groups', {
            name: name.value.trim(),
            ...(description.value.trim() ? { description: description.value.trim() } : {}),
            ...(homeSize.value.trim()
              ? { homeSizeBytes: Math.round(Number(homeSize.value) * 1024 ** 3) }
              : {}),
            ...(weeklyUsageLimitS !== null ? { weeklyUsageLimitS } : {}),
          });
          showAlert(alert, '');
          form.reset();
          await this.data.reload('groups');
          this.renderList();
        } catch (error) {
          showAlert(alert, problem(error));
        }
      });
    });
    return h('section', { class: 'card' }, h('h2', null, 'Create a group'), form);
  }

  private renderList(): void {
    const rows = this.data.groups.map((group) => {
      const members = h('button', { type: 'button', class: 'btn btn-small' }, 'Edit members');
      members.addEventListener('click', () => this.editMembers(group));
      const time = h('button', { type: 'button', class: 'btn btn-small' }, 'Edit shell time');
      time.addEventListener('click', () => this.editShellTime(group));
      const prestart = h('button', { type: 'button', class: 'btn btn-small' }, 'Start environments');
      prestart.addEventListener('click', () => void this.prestart(group));
      const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger' }, 'Delete');
      remove.addEventListener('click', () => {
        void (async () => {
          const ok = await confirmDialog(
            'Delete group',
            `Delete the group ${group.name}? Its members lose the access assigned through it.`,
            'Delete group',
          );
          if (ok)
            await whileBusy(remove, () =>
              this.act(() => deleteJson(`/api/admin/groups/${encodeURIComponent(group.id)}`)),
            );
        })();
      });
      const names = group.members.map((m) => m.username);
      return h(
        'tr',
        { 'data-group': group.name },
        // Names such as class-101 must not break at their hyphen.
        h('td', { class: 'nowrap' }, h('strong', null, group.name)),
        cell(group.description || '—'),
        cell(
          `${names.length} member${names.length === 1 ? '' : 's'}`,
          names.length > 0
            ? h('div', { class: 'hint' }, names.slice(0, 8).join(', ') + (names.length > 8 ? ', …' : ''))
            : null,
        ),
        cell(
          group.homeSizeBytes === null
            ? h('span', { class: 'muted' }, 'default')
            : formatHomeBytes(group.homeSizeBytes),
        ),
        h(
          'td',
          { 'data-testid': 'weekly-limit' },
          group.weeklyUsageLimitS === null
            ? h('span', { class: 'muted' }, 'unlimited')
            : formatUsageDuration(group.weeklyUsageLimitS),
        ),
        cell(
          recordSelect(`Recording for ${group.name}`, group.record, (record) =>
            this.act(() => patchJson(`/api/admin/groups/${encodeURIComponent(group.id)}`, { record })),
          ),
        ),
        h('td', { class: 'actions' }, members, time, prestart, remove),
      );
    });
    replaceChildren(
      this.list,
      table(
        ['Name', 'Description', 'Members', 'Home size', 'Shell time / week', 'Recording', ''],
        rows,
        'No groups yet.',
      ),
    );
  }

  private editMembers(group: AdminGroup): void {
    const alert = alertRegion();
    const current = new Set(group.members.map((m) => m.id));
    const boxes = this.data.users.map((user) =>
      h('input', {
        type: 'checkbox',
        value: user.id,
        checked: current.has(user.id),
        'data-username': user.username,
      }),
    );
    const filter = h('input', { type: 'search', placeholder: 'Filter users', 'aria-label': 'Filter users' });
    const labels = boxes.map((box) => h('label', { class: 'checkbox' }, box, box.dataset.username ?? ''));
    filter.addEventListener('input', () => {
      const q = filter.value.trim().toLowerCase();
      labels.forEach(
        (label, i) =>
          (label.hidden = q !== '' && !(boxes[i]?.dataset.username ?? '').toLowerCase().includes(q)),
      );
    });
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const save = h('button', { type: 'button', class: 'btn btn-primary' }, 'Save members');
    const dialog = openDialog(
      `Members of ${group.name}`,
      alert,
      this.data.users.length > 10 ? filter : null,
      h('div', { class: 'members', 'data-testid': 'members' }, labels),
      h('div', { class: 'dialog-actions' }, cancel, save),
    );
    cancel.addEventListener('click', () => dialog.close());
    save.addEventListener('click', () => {
      const userIds = boxes.filter((b) => b.checked).map((b) => b.value);
      void whileBusy(save, async () => {
        try {
          await putJson(`/api/admin/groups/${encodeURIComponent(group.id)}/members`, { userIds });
          dialog.close();
          await this.data.reload('groups', 'users');
          this.renderList();
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
  }

  private editShellTime(group: AdminGroup): void {
    const alert = alertRegion();
    const hours = hoursInput(group.weeklyUsageLimitS === null ? '' : String(group.weeklyUsageLimitS / 3600));
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const save = h('button', { type: 'button', class: 'btn btn-primary' }, 'Save');
    const dialog = openDialog(
      `Shell time of ${group.name}`,
      alert,
      field(
        'group-weekly-hours-edit',
        'Hours per week',
        hours,
        'Empty: unlimited. Members who used it up cannot open new shells until Monday 00:00 UTC; open ones keep running.',
      ),
      h('div', { class: 'dialog-actions' }, cancel, save),
    );
    cancel.addEventListener('click', () => dialog.close());
    save.addEventListener('click', () => {
      void whileBusy(save, async () => {
        try {
          await patchJson(`/api/admin/groups/${encodeURIComponent(group.id)}`, {
            weeklyUsageLimitS: weeklyLimitFrom(hours),
          });
          dialog.close();
          await this.data.reload('groups');
          this.renderList();
        } catch (error) {
          showAlert(alert, problem(error));
        }
      });
    });
  }

  /**
   * Starts the members' environments ahead of a lesson: pick the region (when there are several),
   * then a live count until every start has ended.
   */
  private async prestart(group: AdminGroup): Promise<void> {
    const alert = alertRegion();
    const region = h('select', { 'data-testid': 'prestart-region' });
    const status = h('p', { role: 'status', 'data-testid': 'prestart-status' });
    const failures = h('ul', { class: 'hint', 'data-testid': 'prestart-failures' });
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const start = h('button', { type: 'button', class: 'btn btn-primary' }, 'Start now');
    const dialog = openDialog(
      `Start the environments of ${group.name}`,
      alert,
      h(
        'p',
        null,
        `Starts the environment of each of the group's ${group.members.length} members now, so their shells open at once. ` +
          'People already working go first. An environment nobody opens a terminal in stops again after the idle time.',
      ),
      field('prestart-region', 'Region', region),
      status,
      failures,
      h('div', { class: 'dialog-actions' }, cancel, start),
    );
    cancel.addEventListener('click', () => dialog.close());
    try {
      const { regions, defaultRegion } = await getJson<PortalResponse>('/api/portal');
      for (const r of regions)
        region.append(h('option', { value: r.id, selected: r.id === defaultRegion }, `${r.name} (${r.id})`));
    } catch (error) {
      showAlert(alert, errorMessage(error));
    }
    start.focus();
    start.addEventListener('click', () => {
      void whileBusy(start, async () => {
        try {
          let progress = await postJson<PrestartProgress>(
            `/api/admin/groups/${encodeURIComponent(group.id)}/prestart`,
            { region: region.value },
          );
          region.disabled = true;
          start.hidden = true;
          cancel.textContent = 'Close';
          cancel.focus();
          // Until every start has ended or the dialog is closed (the starts go on without it).
          while (dialog.element.isConnected) {
            status.textContent = prestartSummary(progress);
            replaceChildren(
              failures,
              progress.failures.map((f) => h('li', null, `${f.username}: ${f.message}`)),
            );
            if (progress.done) break;
            await new Promise((resolve) => setTimeout(resolve, 1000));
            progress = await getJson<PrestartProgress>(
              `/api/admin/prestarts/${encodeURIComponent(progress.id)}`,
            );
          }
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
  }

  private act(task: () => Promise<unknown>): Promise<void> {
    return actThenRefresh(this.alert, task, async () => {
      await this.data.reload('groups');
      this.renderList();
    });
  }
}

/** "Started 12 of 30…", then what happened to each member, in words. */
export function prestartSummary(p: PrestartProgress): string {
  if (p.total === 0) return `${p.groupName} has no enabled members: nothing to start.`;
  const parts = [`${p.started} of ${p.total} started`];
  if (p.skipped > 0) parts.push(`${p.skipped} skipped (no shell time left this week)`);
  if (p.failed > 0) parts.push(`${p.failed} could not start`);
  return p.done ? `Done: ${parts.join(', ')}.` : `Starting… ${parts.join(', ')}.`;
}
