/** The admin console: one tab per part of the directory, the open tab kept in the URL hash. */
import type { Me } from '../../../server/protocol/api.js';
import { errorMessage } from '../lib/api.js';
import { h, replaceChildren, showAlert } from '../lib/dom.js';
import { AccountsTab } from './accounts-tab.js';
import { AdminData } from './admin-data.js';
import type { AdminTab } from './admin-ui.js';
import { AssignmentsTab } from './assignments-tab.js';
import { AuditTab } from './audit-tab.js';
import { GroupsTab } from './groups-tab.js';
import { HomesTab } from './homes-tab.js';
import { IdentityProvidersTab } from './identity-providers-tab.js';
import { PermissionSetsTab } from './permission-sets-tab.js';
import { RecordingsTab } from './recordings-tab.js';
import { ProvisioningTab } from './provisioning-tab.js';
import { ServerHealth } from './server-health.js';
import { UsersTab } from './users-tab.js';

export class AdminPage {
  private readonly tabs: AdminTab[];
  private readonly buttons = new Map<string, HTMLButtonElement>();
  private readonly panel = h('div', { role: 'tabpanel', id: 'admin-panel', tabindex: '-1' });
  private readonly health = new ServerHealth();
  /** Guards against a slow tab finishing after the user moved on. */
  private showing = 0;

  constructor(
    private readonly root: HTMLElement,
    me: Me,
  ) {
    const data = new AdminData();
    this.tabs = [
      new UsersTab(data, me),
      new GroupsTab(data),
      new AccountsTab(data),
      new PermissionSetsTab(data),
      new AssignmentsTab(data),
      new HomesTab(),
      new RecordingsTab(),
      new IdentityProvidersTab(),
      new ProvisioningTab(),
      new AuditTab(data),
    ];
  }

  start(): void {
    const list = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Administration' });
    for (const tab of this.tabs) {
      const button = h(
        'button',
        {
          type: 'button',
          class: 'tab',
          role: 'tab',
          id: `tab-${tab.id}`,
          'aria-controls': 'admin-panel',
          'aria-selected': 'false',
        },
        tab.label,
      );
      button.addEventListener('click', () => {
        history.replaceState(null, '', `#${tab.id}`);
        void this.show(tab);
      });
      button.addEventListener('keydown', (event) => this.arrowKeys(event, tab));
      this.buttons.set(tab.id, button);
      list.append(button);
    }
    replaceChildren(
      this.root,
      h(
        'div',
        { class: 'page-header' },
        h(
          'div',
          null,
          h('h1', null, 'Administration'),
          h('p', null, 'Users, groups and who can open shells in which AWS accounts.'),
        ),
      ),
      this.health.element,
      list,
      this.panel,
    );
    const wanted = this.tabs.find((t) => `#${t.id}` === location.hash) ?? this.tabs[0];
    if (wanted) void this.show(wanted);
    // Links and the back button change the hash without a reload.
    window.addEventListener('hashchange', () => {
      const tab = this.tabs.find((t) => `#${t.id}` === location.hash);
      if (tab) void this.show(tab);
    });
  }

  private async show(tab: AdminTab): Promise<void> {
    const ticket = ++this.showing;
    // Every tab switch reads it again: an admin fixing the config sees the warning go.
    void this.health.refresh();
    for (const [id, button] of this.buttons) {
      button.setAttribute('aria-selected', String(id === tab.id));
      button.tabIndex = id === tab.id ? 0 : -1;
    }
    this.panel.setAttribute('aria-labelledby', `tab-${tab.id}`);
    replaceChildren(this.panel, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const content = await tab.render();
      if (ticket === this.showing) replaceChildren(this.panel, content);
    } catch (error) {
      if (ticket !== this.showing) return;
      const alert = h('div');
      showAlert(alert, errorMessage(error));
      replaceChildren(this.panel, alert);
    }
  }

  /** Left/right arrows move between tabs, as the ARIA tabs pattern expects. */
  private arrowKeys(event: KeyboardEvent, tab: AdminTab): void {
    if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
    const index = this.tabs.indexOf(tab);
    const next =
      this.tabs[(index + (event.key === 'ArrowRight' ? 1 : this.tabs.length - 1)) % this.tabs.length];
    if (!next) return;
    this.buttons.get(next.id)?.focus();
    history.replaceState(null, '', `#${next.id}`);
    void this.show(next);
  }
}
