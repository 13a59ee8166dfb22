/**
 * The access portal, shaped like IAM Identity Center's: one collapsible row per AWS account,
 * its permission sets underneath with "Open shell" and "Command line access"; a shell without
 * credentials; and the user's own security settings.
 */
import {
  formatUsageDuration,
  formatUtcTime,
  type Me,
  type PortalAssignment,
  type PortalResponse,
  type RegionInfo,
  type UsageView,
} from '../../../server/protocol/api.js';
import { errorMessage, getJson } from '../lib/api.js';
import { formatDuration, h, replaceChildren, showAlert } from '../lib/dom.js';
import { SecuritySection } from './security-section.js';
import { shellUrl } from './shell-links.js';
import { copyText } from '../lib/clipboard.js';
import { openCliAccess } from './cli-access.js';
import { LaptopSection } from './laptop-section.js';

const regionKey = 'cove.region';

interface AccountGroup {
  readonly accountId: string;
  readonly accountName: string;
  readonly sets: PortalAssignment[];
}

export class PortalPage {
  private region = '';
  private regions: readonly RegionInfo[] = [];
  /** Open-shell links to retarget when the region changes. */
  private readonly shellLinks: {
    link: HTMLAnchorElement;
    binding: { accountId: string; permissionSet: string };
  }[] = [];

  constructor(
    private readonly root: HTMLElement,
    private readonly me: Me,
  ) {}

  async load(): Promise<void> {
    let portal: PortalResponse;
    try {
      portal = await getJson<PortalResponse>('/api/portal');
    } catch (error) {
      const alert = h('div', { role: 'alert' });
      showAlert(alert, errorMessage(error));
      replaceChildren(this.root, alert);
      return;
    }
    this.regions = portal.regions;
    const saved = localStorage.getItem(regionKey);
    const ids = portal.regions.map((r) => r.id);
    this.region =
      saved && ids.includes(saved) ? saved : (portal.defaultRegion ?? ids[0] ?? '') || (ids[0] ?? '');
    replaceChildren(
      this.root,
      this.renderHeading(portal.usage),
      this.renderAccounts(groupByAccount(portal.assignments)),
      this.renderNoCredentials(),
      new LaptopSection().render(),
      new SecuritySection(this.me).render(),
    );
  }

  private renderHeading(usage: UsageView | undefined): HTMLElement {
    const select = h(
      'select',
      { id: 'region', class: 'region-select', 'aria-label': 'Region for new shells' },
      this.regions.map((r) =>
        h('option', { value: r.id, selected: r.id === this.region }, `${r.name} (${r.id})`),
      ),
    );
    select.addEventListener('change', () => {
      this.region = select.value;
      localStorage.setItem(regionKey, this.region);
      for (const { link, binding } of this.shellLinks) link.href = shellUrl(this.region, binding);
    });
    return h(
      'div',
      { class: 'page-header' },
      h(
        'div',
        null,
        h('h1', null, 'AWS access portal'),
        h('p', null, 'Open a shell in an account you have access to.'),
        renderShellTime(usage),
      ),
      h('label', { class: 'row', for: 'region' }, h('span', { class: 'label' }, 'Region'), select),
    );
  }

  private renderAccounts(groups: AccountGroup[]): HTMLElement {
    const card = h('section', { class: 'card', 'aria-labelledby': 'accounts-title' });
    const title = h('h2', { id: 'accounts-title' }, `AWS accounts (${groups.length})`);
    if (groups.length === 0) {
      replaceChildren(
        card,
        title,
        h(
          'p',
          { class: 'empty', 'data-testid': 'no-accounts' },
          'No AWS accounts are assigned to you yet. Ask your administrator.',
        ),
      );
      return card;
    }
    const list = h('div', { class: 'accounts', 'data-testid': 'accounts' });
    const rows = groups.map((group) => this.renderAccount(group, groups.length === 1));
    list.append(...rows.map((r) => r.element));
    const filter = h('input', {
      type: 'search',
      placeholder: 'Filter accounts by name or id',
      'aria-label': 'Filter accounts',
      style: 'max-width:22rem',
    });
    filter.addEventListener('input', () => {
      const q = filter.value.trim().toLowerCase();
      for (const row of rows) row.element.hidden = q !== '' && !row.text.includes(q);
    });
    replaceChildren(
      card,
      h('div', { class: 'row' }, title, h('span', { class: 'spacer' }), groups.length > 5 ? filter : null),
      list,
    );
    return card;
  }

  private renderAccount(group: AccountGroup, expanded: boolean): { element: HTMLElement; text: string } {
    const panelId = `account-${group.accountId}`;
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'account-toggle',
        'aria-expanded': String(expanded),
        'aria-controls': panelId,
      },
      h('span', { class: 'account-caret', 'aria-hidden': 'true' }, '▸'),
      h('span', { class: 'account-icon', 'aria-hidden': 'true' }, initials(group.accountName)),
      h(
        'span',
        null,
        h('span', { class: 'account-name' }, group.accountName),
        h(
          'span',
          { class: 'account-meta' },
          `${group.accountId} · ${group.sets.length} permission set${group.sets.length === 1 ? '' : 's'}`,
        ),
      ),
    );
    const panel = h(
      'ul',
      { class: 'permission-sets', id: panelId, hidden: !expanded },
      group.sets.map((set) => this.renderPermissionSet(set)),
    );
    toggle.addEventListener('click', () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      panel.hidden = !open;
    });
    const element = h(
      'div',
      { class: 'account', 'data-account-id': group.accountId, 'data-testid': 'account' },
      toggle,
      panel,
    );
    return { element, text: `${group.accountName} ${group.accountId}`.toLowerCase() };
  }

  private renderPermissionSet(set: PortalAssignment): HTMLElement {
    const binding = { accountId: set.accountId, permissionSet: set.permissionSet };
    const open = h(
      'a',
      {
        class: 'btn btn-primary btn-small',
        href: shellUrl(this.region, binding),
        target: '_blank',
        rel: 'noopener noreferrer',
        'data-testid': 'open-shell',
      },
      'Open shell',
    );
    this.shellLinks.push({ link: open, binding });
    const cli = h(
      'button',
      { type: 'button', class: 'btn btn-small', 'data-testid': 'cli-access' },
      'Command line access',
    );
    cli.addEventListener('click', () => void openCliAccess(set, this.region));
    const copy = h(
      'button',
      { type: 'button', class: 'btn btn-small', 'data-testid': 'copy-shell-link' },
      'Copy link to this shell',
    );
    copy.addEventListener('click', () => {
      const url = new URL(shellUrl(this.region, binding), location.origin).href;
      void copyText(url).then((copied) => {
        if (copied) {
          copy.textContent = 'Link copied';
          window.setTimeout(() => (copy.textContent = 'Copy link to this shell'), 3000);
          return;
        }
        // The browser refused the clipboard: show the link selected, for Ctrl+C.
        const field = h('input', {
          type: 'text',
          readonly: true,
          value: url,
          class: 'shell-link-field',
          'aria-label': 'Link to this shell (the browser did not allow copying: press Ctrl+C)',
          'data-testid': 'shell-link-field',
        });
        copy.after(field);
        field.focus();
        field.select();
      });
    });
    return h(
      'li',
      { class: 'permission-set', 'data-permission-set': set.permissionSet, 'data-testid': 'permission-set' },
      h(
        'div',
        { class: 'permission-set-info' },
        h('div', { class: 'permission-set-name' }, set.permissionSet),
        h(
          'div',
          { class: 'permission-set-desc' },
          [set.permissionSetDescription, `Session ${formatDuration(set.sessionDurationS)}`]
            .filter(Boolean)
            .join(' · '),
        ),
      ),
      h('div', { class: 'permission-set-actions' }, open, cli, copy),
    );
  }

  private renderNoCredentials(): HTMLElement {
    return h(
      'section',
      { class: 'card', 'aria-labelledby': 'plain-shell-title' },
      h('h2', { id: 'plain-shell-title' }, 'Shell without AWS credentials'),
      h('p', { class: 'muted' }, 'A shell with your home directory and tools, but no AWS identity.'),
      h(
        'div',
        { class: 'row' },
        this.regions.map((r) =>
          h(
            'a',
            {
              class: 'btn btn-small',
              href: shellUrl(r.id),
              target: '_blank',
              rel: 'noopener noreferrer',
              'data-testid': 'open-plain-shell',
              'data-region': r.id,
            },
            `Open shell in ${r.name}`,
          ),
        ),
      ),
    );
  }
}

/** Nothing when unlimited: most servers have no quota and the line would only be noise. */
function renderShellTime(usage: UsageView | undefined): HTMLElement | null {
  if (!usage || usage.limitS === null) return null;
  const exhausted = usage.usedS >= usage.limitS;
  const text = `Shell time this week: ${formatUsageDuration(usage.usedS)} of ${formatUsageDuration(usage.limitS)}`;
  return h(
    'p',
    {
      class: 'shell-time',
      style: exhausted ? 'margin-top:0.35rem;color:var(--danger)' : 'margin-top:0.35rem',
      'data-testid': 'shell-time',
      'data-exhausted': exhausted,
      title: `Counts while your environments run; resets ${formatUtcTime(usage.resetsAt)}.`,
    },
    exhausted
      ? `${text}. New shells can be opened again after ${formatUtcTime(usage.resetsAt)}; open ones keep running.`
      : text,
  );
}

function groupByAccount(assignments: readonly PortalAssignment[]): AccountGroup[] {
  const byId = new Map<string, AccountGroup>();
  for (const a of assignments) {
    let group = byId.get(a.accountId);
    if (!group) {
      group = { accountId: a.accountId, accountName: a.accountName, sets: [] };
      byId.set(a.accountId, group);
    }
    if (!group.sets.some((s) => s.permissionSet === a.permissionSet)) group.sets.push(a);
  }
  const groups = [...byId.values()].sort((x, y) => x.accountName.localeCompare(y.accountName));
  for (const g of groups) g.sets.sort((x, y) => x.permissionSet.localeCompare(y.permissionSet));
  return groups;
}

function initials(name: string): string {
  const words = name
    .trim()
    .split(/[\s_-]+/)
    .filter(Boolean);
  return ((words[0]?.[0] ?? '') + (words[1]?.[0] ?? '')).toUpperCase() || '#';
}
