/** Users: create (invite link shown once), disable/enable, reset password or MFA, require MFA, delete, bulk CSV. */
import type { AdminUser, CreateUserResponse, InviteResponse, Me } from '../../../server/protocol/api.js';
import { deleteJson, errorMessage, patchJson, postJson, request } from '../lib/api.js';
import { confirmDialog } from '../lib/dialog.js';
import { formatTime, h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import type { AdminData } from './admin-data.js';
import {
  alertRegion,
  badge,
  cell,
  field,
  inviteBox,
  table,
  type AdminTab,
  actThenRefresh,
} from './admin-ui.js';

export class UsersTab implements AdminTab {
  readonly id = 'users';
  readonly label = 'Users';
  private readonly root = h('div', { 'data-testid': 'users-tab' });
  private readonly notice = h('div', { 'aria-live': 'polite' });
  private readonly alert = alertRegion();
  private readonly list = h('div');

  constructor(
    private readonly data: AdminData,
    private readonly me: Me,
  ) {}

  async render(): Promise<HTMLElement> {
    await this.data.reload('users', 'groups');
    replaceChildren(
      this.root,
      this.notice,
      this.alert,
      this.createCard(),
      h('section', { class: 'card' }, h('h2', null, 'Users'), this.list),
      this.bulkCard(),
    );
    this.renderList();
    return this.root;
  }

  private createCard(): HTMLElement {
    const username = h('input', {
      type: 'text',
      autocomplete: 'off',
      autocapitalize: 'none',
      spellcheck: 'false',
      required: true,
    });
    const email = h('input', { type: 'email', autocomplete: 'off' });
    const password = h('input', { type: 'password', autocomplete: 'new-password' });
    const mfa = h('input', { type: 'checkbox', id: 'new-user-mfa' });
    const groupBoxes = this.data.groups.map((g) =>
      h(
        'label',
        { class: 'checkbox' },
        h('input', { type: 'checkbox', value: g.name, 'data-group': g.name }),
        g.name,
      ),
    );
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create user');
    const alert = alertRegion();
    const form = h(
      'form',
      { novalidate: true, 'data-testid': 'create-user-form' },
      alert,
      h(
        'div',
        { class: 'grid-form' },
        field('new-user-name', 'User name', username),
        field('new-user-email', 'Email (optional)', email),
        field(
          'new-user-password',
          'Password (optional)',
          password,
          'Leave empty to get an invite link instead.',
        ),
      ),
      groupBoxes.length > 0
        ? h(
            'fieldset',
            { class: 'field', style: 'border:none;padding:0' },
            h('legend', { class: 'label' }, 'Groups'),
            h('div', { class: 'row' }, groupBoxes),
          )
        : null,
      h(
        'div',
        { class: 'row', style: 'margin-bottom:1rem' },
        h('label', { class: 'checkbox', for: 'new-user-mfa' }, mfa, 'Require MFA'),
      ),
      submit,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!username.value.trim()) {
        showAlert(alert, 'Enter a user name.');
        return;
      }
      const groups = groupBoxes
        .map((label) => label.querySelector('input'))
        .filter((box): box is HTMLInputElement => box !== null && box.checked)
        .map((box) => box.value);
      const body = {
        username: username.value.trim(),
        ...(email.value.trim() ? { email: email.value.trim() } : {}),
        ...(password.value ? { password: password.value } : {}),
        ...(groups.length > 0 ? { groups } : {}),
        mfaRequired: mfa.checked,
      };
      void whileBusy(submit, async () => {
        try {
          const created = await postJson<CreateUserResponse>('/api/admin/users', body);
          showAlert(alert, '');
          form.reset();
          replaceChildren(
            this.notice,
            created.inviteUrl
              ? inviteBox(created.username, created.inviteUrl)
              : success(`User ${created.username} was created with the password you set.`),
          );
          await this.data.reload('users');
          this.renderList();
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
    return h('section', { class: 'card' }, h('h2', null, 'Create a user'), form);
  }

  private renderList(): void {
    const rows = this.data.users.map((user) => this.row(user));
    replaceChildren(
      this.list,
      table(
        ['User name', 'Source', 'Email', 'Groups', 'MFA', 'Status', 'Last sign-in', ''],
        rows,
        'No users yet.',
      ),
    );
  }

  private row(user: AdminUser): HTMLTableRowElement {
    const self = user.id === this.me.id;
    const requireMfa = h('input', {
      type: 'checkbox',
      checked: user.mfaRequired,
      'aria-label': `Require MFA for ${user.username}`,
      'data-testid': 'require-mfa',
    });
    requireMfa.addEventListener('change', () => {
      requireMfa.disabled = true;
      void this.act(() =>
        patchJson(`/api/admin/users/${enc(user.id)}`, { mfaRequired: requireMfa.checked }),
      ).finally(() => (requireMfa.disabled = false));
    });
    const toggle = button(user.disabled ? 'Enable' : 'Disable', self);
    toggle.addEventListener(
      'click',
      () =>
        void whileBusy(toggle, () =>
          this.act(() => patchJson(`/api/admin/users/${enc(user.id)}`, { disabled: !user.disabled })),
        ),
    );
    // An identity provider's user has no Cove password: none to reset (the server refuses too).
    const federated = user.source !== 'local';
    // An invited user has no password to reset: the same call makes them a new link.
    const invited = user.invite !== null;
    const resetPassword = button(invited ? 'New invite link' : 'Reset password');
    resetPassword.addEventListener('click', () => {
      void (async () => {
        const ok = invited
          ? await confirmDialog(
              'New invite link',
              `${user.username}'s current invite link stops working. Send them the new link you get next.`,
              'Make a new link',
              false,
            )
          : await confirmDialog(
              'Reset password',
              `${user.username} will be signed out everywhere and must set a new password with the link you get next.`,
              'Reset password',
            );
        if (!ok) return;
        await whileBusy(resetPassword, () =>
          this.act(async () => {
            const reply = await postJson<InviteResponse>(
              `/api/admin/users/${enc(user.id)}/reset-password`,
              {},
            );
            replaceChildren(
              this.notice,
              inviteBox(user.username, reply.inviteUrl, invited ? 'New invite link' : 'Password reset link'),
            );
          }),
        );
      })();
    });
    const resetMfa = button('Reset MFA', !user.mfaEnrolled);
    resetMfa.addEventListener('click', () => {
      void (async () => {
        const ok = await confirmDialog(
          'Reset MFA',
          `${user.username}'s authenticator app will stop working for Cove. If MFA is required, they set it up again at their next sign-in.`,
          'Reset MFA',
        );
        if (ok)
          await whileBusy(resetMfa, () =>
            this.act(async () => {
              await postJson(`/api/admin/users/${enc(user.id)}/reset-mfa`, {});
              replaceChildren(this.notice, success(`MFA was reset for ${user.username}.`));
            }),
          );
      })();
    });
    const remove = button('Delete', self, 'btn btn-small btn-danger');
    remove.addEventListener('click', () => {
      void (async () => {
        const ok = await confirmDialog(
          'Delete user',
          `Delete ${user.username}? They lose access at once. This cannot be undone.`,
          'Delete user',
        );
        if (ok)
          await whileBusy(remove, () =>
            this.act(async () => {
              await deleteJson(`/api/admin/users/${enc(user.id)}`);
              replaceChildren(this.notice, success(`User ${user.username} was deleted.`));
            }),
          );
      })();
    });
    return h(
      'tr',
      { 'data-username': user.username, 'data-testid': 'user-row' },
      h(
        'td',
        { class: 'nowrap' },
        h('strong', null, user.username),
        self ? h('span', { class: 'hint' }, ' (you)') : null,
      ),
      cell(sourceOf(user)),
      cell(user.email ?? '—'),
      cell(user.groups.join(', ') || '—'),
      cell(
        user.mfaEnrolled ? badge('Enrolled', 'ok') : badge('Not set up', user.mfaRequired ? 'warn' : ''),
        h(
          'label',
          { class: 'checkbox hint', style: 'display:flex;margin-top:0.3rem' },
          requireMfa,
          'Required',
        ),
      ),
      cell(statusOf(user)),
      cell(formatTime(user.lastLoginAt)),
      h('td', { class: 'actions' }, toggle, federated ? null : resetPassword, resetMfa, remove),
    );
  }

  /** Runs a change, shows its error inline, and re-reads the list either way. */
  private act(task: () => Promise<unknown>): Promise<void> {
    return actThenRefresh(this.alert, task, async () => {
      await this.data.reload('users');
      this.renderList();
    });
  }

  private bulkCard(): HTMLElement {
    const alert = alertRegion();
    const text = h('textarea', {
      class: 'mono',
      spellcheck: 'false',
      placeholder: 'name,email,group\nalice,alice@example.com,students\nbob,,students',
    });
    const file = h('input', { type: 'file', accept: '.csv,text/csv' });
    file.addEventListener('change', () => {
      const chosen = file.files?.[0];
      if (chosen) void chosen.text().then((content) => (text.value = content));
    });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create users');
    const result = h('div', { 'data-testid': 'bulk-result' });
    const form = h(
      'form',
      { novalidate: true, 'data-testid': 'bulk-form' },
      alert,
      field('bulk-csv', 'CSV (columns: name, email, group; header row first)', text),
      field('bulk-file', 'Or choose a .csv file', file),
      submit,
      result,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!text.value.trim()) {
        showAlert(alert, 'Paste CSV text or choose a file first.');
        return;
      }
      void whileBusy(submit, async () => {
        try {
          const csv = await request<string>('/api/admin/users/bulk', {
            method: 'POST',
            text: { contentType: 'text/csv', value: text.value },
            asText: true,
          });
          showAlert(alert, '');
          replaceChildren(result, bulkResult(csv));
          await this.data.reload('users', 'groups');
          this.renderList();
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
    return h(
      'section',
      { class: 'card' },
      h('h2', null, 'Create users from a CSV file'),
      h(
        'p',
        { class: 'muted' },
        'For a class or a team: every row becomes a user with an invite link. If any row is wrong, nothing is created.',
      ),
      form,
    );
  }
}

function bulkResult(csv: string): HTMLElement {
  const download = h(
    'a',
    { class: 'btn btn-small', download: 'cove-invites.csv', 'data-testid': 'bulk-download' },
    'Download CSV',
  );
  download.href = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
  const lines = csv.trim().split(/\r?\n/).length - 1;
  return h(
    'div',
    { class: 'alert alert-success', role: 'status', style: 'margin-top:1rem' },
    h(
      'p',
      { style: 'margin:0 0 0.5rem' },
      h('strong', null, `Created ${lines} user${lines === 1 ? '' : 's'}. `),
      'The invite links are shown only now: download them.',
    ),
    h('pre', { class: 'output', 'data-testid': 'bulk-csv' }, csv),
    download,
  );
}

/** Active only once the password is set: until then the user is Invited, with the link's expiry. */
function statusOf(user: AdminUser): HTMLElement {
  if (user.disabled) return badge('Disabled', 'off');
  if (!user.invite) return badge('Active', 'ok');
  const expired = Date.parse(user.invite.expiresAt) <= Date.now();
  return h(
    'span',
    { 'data-testid': 'invite-status' },
    expired ? badge('Invite expired', 'off') : badge('Invited', 'warn'),
    h(
      'span',
      { class: 'hint', style: 'display:block;margin-top:0.3rem' },
      `${expired ? 'Link expired' : 'Link expires'} ${formatTime(user.invite.expiresAt)}`,
    ),
  );
}

/** Local, an identity provider's, or provisioned by SCIM (and which token). */
function sourceOf(user: AdminUser): HTMLElement {
  if (user.source === 'local') return h('span', { 'data-testid': 'user-source' }, 'Local');
  const provider = user.source.replace(/^oidc:/, '');
  return h(
    'span',
    { 'data-testid': 'user-source' },
    user.provisionedBy === null ? `IdP: ${provider}` : `SCIM: ${user.provisionedBy}`,
    h('span', { class: 'hint', style: 'display:block' }, `Signs in with ${provider}; password at the IdP`),
  );
}

function button(label: string, disabled = false, className = 'btn btn-small'): HTMLButtonElement {
  return h('button', { type: 'button', class: className, disabled }, label);
}

function success(message: string): HTMLElement {
  return h('div', { class: 'alert alert-success', role: 'status' }, message);
}

const enc = encodeURIComponent;
