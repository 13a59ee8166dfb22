/**
 * Identity providers (auth.oidc): each with its users, last sign-in and a status that comes from
 * fetching its discovery document (on opening the tab and with the Test button).
 */
import type { AdminIdentityProvider, IdentityProviderTest } from '../../../server/protocol/api.js';
import { errorMessage, getJson, listOf, postJson } from '../lib/api.js';
import { formatTime, h, replaceChildren, whileBusy } from '../lib/dom.js';
import { badge, cell, table, type AdminTab } from './admin-ui.js';

export class IdentityProvidersTab implements AdminTab {
  readonly id = 'identity-providers';
  readonly label = 'Identity providers';
  private readonly root = h('div', { 'data-testid': 'identity-providers-tab' });

  async render(): Promise<HTMLElement> {
    const providers = listOf<AdminIdentityProvider>(await getJson<unknown>('/api/admin/identity-providers'));
    const rows = providers.map((p) => this.row(p));
    replaceChildren(
      this.root,
      h(
        'section',
        { class: 'card' },
        h('h2', null, 'Identity providers'),
        h(
          'p',
          { class: 'muted' },
          'Providers come from auth.oidc in the configuration. Their users sign in there; Cove keeps no password for them.',
        ),
        table(
          ['Name', 'Issuer', 'Users', 'Last sign-in', 'Status', ''],
          rows,
          'No identity provider is configured (auth.oidc). See "Sign in with your IdP" in the README.',
        ),
      ),
    );
    return this.root;
  }

  private row(p: AdminIdentityProvider): HTMLTableRowElement {
    const status = h('span', { 'data-testid': 'provider-status', 'aria-live': 'polite' }, badge('Checking…'));
    const test = h('button', { type: 'button', class: 'btn btn-small' }, 'Test');
    const run = () =>
      whileBusy(
        test,
        async () => {
          try {
            const result = await postJson<IdentityProviderTest>(
              `/api/admin/identity-providers/${encodeURIComponent(p.id)}/test`,
              {},
            );
            replaceChildren(
              status,
              badge(result.ok ? 'Working' : 'Not working', result.ok ? 'ok' : 'warn'),
              h('span', { class: 'hint', style: 'display:block' }, result.message),
            );
          } catch (error) {
            replaceChildren(
              status,
              badge('Not checked', 'off'),
              h('span', { class: 'hint' }, errorMessage(error)),
            );
          }
        },
        'Testing…',
      );
    test.addEventListener('click', () => void run());
    void run();
    return h(
      'tr',
      { 'data-provider': p.id, 'data-testid': 'provider-row' },
      cell(h('strong', null, p.name), h('span', { class: 'hint', style: 'display:block' }, p.id)),
      cell(h('span', { class: 'mono' }, p.issuer)),
      cell(String(p.users)),
      cell(formatTime(p.lastSignInAt)),
      cell(status),
      h('td', { class: 'actions' }, test),
    );
  }
}
