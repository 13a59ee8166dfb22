/**
 * Provisioning: SCIM tokens, one per identity provider connector (Okta, Entra ID). A new token is
 * shown once with a copy button (Cove keeps only its hash); tokens can be revoked at once.
 */
import type { AdminIdentityProvider, ScimTokenCreated, ScimTokenView } from '../../../server/protocol/api.js';
import { errorMessage, getJson, listOf, postJson } from '../lib/api.js';
import { copyText } from '../lib/clipboard.js';
import { confirmDialog } from '../lib/dialog.js';
import { formatTime, h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import { alertRegion, badge, cell, field, table, actThenRefresh, type AdminTab } from './admin-ui.js';

export class ProvisioningTab implements AdminTab {
  readonly id = 'provisioning';
  readonly label = 'Provisioning';
  private readonly root = h('div', { 'data-testid': 'provisioning-tab' });
  private readonly notice = h('div', { 'aria-live': 'polite' });
  private readonly alert = alertRegion();
  private readonly list = h('div');
  private tokens: ScimTokenView[] = [];
  private providers: AdminIdentityProvider[] = [];

  async render(): Promise<HTMLElement> {
    await this.reload();
    this.providers = listOf<AdminIdentityProvider>(await getJson<unknown>('/api/admin/identity-providers'));
    replaceChildren(
      this.root,
      this.notice,
      this.alert,
      this.createCard(),
      h(
        'section',
        { class: 'card' },
        h('h2', null, 'SCIM tokens'),
        h(
          'p',
          { class: 'muted' },
          `SCIM endpoint: ${location.origin}/scim/v2. Each identity provider's provisioning connector gets its own token.`,
        ),
        this.list,
      ),
    );
    this.renderList();
    return this.root;
  }

  private async reload(): Promise<void> {
    this.tokens = listOf<ScimTokenView>(await getJson<unknown>('/api/admin/scim-tokens'));
  }

  private createCard(): HTMLElement {
    const alert = alertRegion();
    const name = h('input', {
      type: 'text',
      autocomplete: 'off',
      placeholder: 'Okta production',
      maxlength: 64,
    });
    const provider = h(
      'select',
      null,
      this.providers.map((p) => h('option', { value: p.id }, `${p.name} (${p.id})`)),
    );
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create token');
    const form = h(
      'form',
      { novalidate: true, 'data-testid': 'create-scim-token-form' },
      alert,
      h(
        'div',
        { class: 'grid-form' },
        field('scim-token-name', 'Name', name, 'What the token is for.'),
        field(
          'scim-token-provider',
          'Users sign in with',
          provider,
          'Provisioned users sign in through this provider.',
        ),
      ),
      submit,
    );
    if (this.providers.length === 0) {
      showAlert(
        alert,
        'SCIM users sign in through an identity provider, and none is configured. Add one under auth.oidc first.',
        'info',
      );
      submit.disabled = true;
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (name.value.trim() === '') {
        showAlert(alert, 'Give the token a name, for example "Okta production".');
        name.focus();
        return;
      }
      void whileBusy(submit, async () => {
        try {
          const created = await postJson<ScimTokenCreated>('/api/admin/scim-tokens', {
            name: name.value.trim(),
            providerId: provider.value,
          });
          showAlert(alert, '');
          form.reset();
          replaceChildren(this.notice, tokenBox(created));
          this.notice.querySelector<HTMLButtonElement>('[data-testid=copy-scim-token]')?.focus();
          await this.reload();
          this.renderList();
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
    return h('section', { class: 'card' }, h('h2', null, 'Create a SCIM token'), form);
  }

  private renderList(): void {
    const rows = this.tokens.map((t) => {
      const revoke = h(
        'button',
        { type: 'button', class: 'btn btn-small btn-danger', disabled: t.revokedAt !== null },
        'Revoke',
      );
      revoke.setAttribute('aria-label', `Revoke ${t.name}`);
      revoke.addEventListener('click', () => {
        void (async () => {
          const ok = await confirmDialog(
            'Revoke SCIM token',
            `${t.name} stops working at once: its identity provider can no longer create, change or disable Cove users until you give it a new token.`,
            'Revoke token',
          );
          if (ok)
            await whileBusy(revoke, () =>
              actThenRefresh(
                this.alert,
                async () => {
                  await postJson(`/api/admin/scim-tokens/${encodeURIComponent(t.id)}/revoke`, {});
                  replaceChildren(
                    this.notice,
                    h('div', { class: 'alert alert-success', role: 'status' }, `${t.name} was revoked.`),
                  );
                },
                async () => {
                  await this.reload();
                  this.renderList();
                },
              ),
            );
        })();
      });
      return h(
        'tr',
        { 'data-token': t.name, 'data-testid': 'scim-token-row' },
        cell(h('strong', null, t.name)),
        cell(t.providerId),
        cell(formatTime(t.createdAt)),
        cell(formatTime(t.lastUsedAt)),
        cell(
          t.revokedAt === null ? badge('Active', 'ok') : badge(`Revoked ${formatTime(t.revokedAt)}`, 'off'),
        ),
        h('td', { class: 'actions' }, revoke),
      );
    });
    replaceChildren(
      this.list,
      table(['Name', 'Sign-in provider', 'Created', 'Last used', 'Status', ''], rows, 'No SCIM tokens yet.'),
    );
  }
}

/** The new token, once: Cove keeps only its hash. */
function tokenBox(created: ScimTokenCreated): HTMLElement {
  const input = h('input', {
    type: 'text',
    class: 'mono',
    readonly: true,
    value: created.secret,
    'aria-label': `SCIM token ${created.token.name}`,
    'data-testid': 'scim-token-value',
  });
  const copy = h(
    'button',
    { type: 'button', class: 'btn btn-small', 'data-testid': 'copy-scim-token' },
    'Copy',
  );
  copy.addEventListener('click', () => {
    void copyText(created.secret, input).then((ok) => (copy.textContent = ok ? 'Copied' : 'Press Ctrl+C'));
  });
  input.addEventListener('focus', () => input.select());
  return h(
    'div',
    { class: 'alert alert-success', role: 'status', 'data-testid': 'scim-token-box' },
    h(
      'p',
      { style: 'margin:0 0 0.5rem' },
      h('strong', null, `SCIM token ${created.token.name}. `),
      'It is shown only once: copy it now into your identity provider’s provisioning settings (API token / Secret Token).',
    ),
    h('div', { class: 'invite-box' }, input, copy),
  );
}
