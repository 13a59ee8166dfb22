/**
 * The audit log, newest first, a page at a time. Ids read as names (users, groups, permission
 * sets; a group change also records the names it touched), the id on hover; Download gives the
 * entries exactly as recorded, ids included.
 */
import type { AuditEntry, AuditResponse } from '../../../server/protocol/api.js';
import { errorMessage, getJson } from '../lib/api.js';
import { formatTime, h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import type { AdminData } from './admin-data.js';
import { alertRegion, type AdminTab } from './admin-ui.js';

/** id → name, from the directory now and from what each entry recorded. */
type Names = ReadonlyMap<string, string>;

const pageSize = 50;

export class AuditTab implements AdminTab {
  readonly id = 'audit';
  readonly label = 'Audit log';
  private readonly root = h('div', { 'data-testid': 'audit-tab' });
  private readonly alert = alertRegion();
  private readonly body = h('tbody');
  private readonly more = h('button', { type: 'button', class: 'btn' }, 'Load more');
  private oldestId: number | undefined;
  private entries: AuditEntry[] = [];
  private names = new Map<string, string>();

  constructor(private readonly data: AdminData) {}

  async render(): Promise<HTMLElement> {
    this.oldestId = undefined;
    this.entries = [];
    this.body.replaceChildren();
    await this.data.reload('users', 'groups', 'permissionSets');
    this.names = new Map<string, string>([
      ...this.data.users.map((u) => [u.id, u.username] as const),
      ...this.data.groups.map((g) => [g.id, g.name] as const),
      ...this.data.permissionSets.map((p) => [p.id, p.name] as const),
    ]);
    const refresh = h('button', { type: 'button', class: 'btn btn-small' }, 'Refresh');
    refresh.addEventListener('click', () => void whileBusy(refresh, () => this.render()));
    const download = h(
      'button',
      { type: 'button', class: 'btn btn-small', 'data-testid': 'audit-download' },
      'Download JSON',
    );
    download.addEventListener('click', () => this.download());
    this.more.onclick = () => void whileBusy(this.more, () => this.loadPage());
    replaceChildren(
      this.root,
      this.alert,
      h(
        'section',
        { class: 'card' },
        h(
          'div',
          { class: 'row' },
          h('h2', { style: 'margin:0' }, 'Audit log'),
          h('span', { class: 'spacer' }),
          download,
          refresh,
        ),
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            null,
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                ['Time', 'Who', 'Action', 'Target', 'From', 'Details'].map((t) =>
                  h('th', { scope: 'col' }, t),
                ),
              ),
            ),
            this.body,
          ),
        ),
        h('div', { class: 'row', style: 'justify-content:center;margin-top:1rem' }, this.more),
      ),
    );
    await this.loadPage();
    return this.root;
  }

  private async loadPage(): Promise<void> {
    const query = new URLSearchParams({ limit: String(pageSize) });
    if (this.oldestId !== undefined) query.set('beforeId', String(this.oldestId));
    let entries: readonly AuditEntry[];
    try {
      entries = (await getJson<AuditResponse>(`/api/admin/audit?${query.toString()}`)).entries;
      showAlert(this.alert, '');
    } catch (error) {
      showAlert(this.alert, errorMessage(error));
      return;
    }
    // Newest first, whatever order the page arrives in.
    const sorted = [...entries].sort((a, b) => b.id - a.id);
    this.entries.push(...sorted);
    for (const entry of sorted) this.body.append(row(entry, this.namesFor(entry)));
    const last = sorted[sorted.length - 1];
    if (last) this.oldestId = last.id;
    this.more.hidden = entries.length < pageSize;
    if (this.body.childElementCount === 0)
      this.body.append(h('tr', null, h('td', { colspan: 6, class: 'empty' }, 'Nothing recorded yet.')));
  }

  /** The entry's own record of names wins: the user may be renamed or gone since. */
  private namesFor(entry: AuditEntry): Names {
    const recorded = entry.details.userNames;
    if (typeof recorded !== 'object' || recorded === null) return this.names;
    const names = new Map(this.names);
    for (const [id, name] of Object.entries(recorded)) if (typeof name === 'string') names.set(id, name);
    return names;
  }

  /** What is loaded, exactly as recorded (ids, not names), as a file. */
  private download(): void {
    const link = h('a', { download: 'cove-audit.json' });
    link.href = URL.createObjectURL(
      new Blob([JSON.stringify(this.entries, null, 2)], { type: 'application/json' }),
    );
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }
}

/** A name with its id on hover, or the text itself when it is no id we know. */
function named(text: string, names: Names): HTMLElement | string {
  const name = names.get(text);
  return name === undefined ? text : h('span', { class: 'audit-name', title: text, 'data-id': text }, name);
}

function detailValue(value: unknown, names: Names): (HTMLElement | string)[] {
  if (typeof value === 'string') return [named(value, names)];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    if (value.length === 0) return ['none'];
    return value.flatMap((v, i) => (i === 0 ? [named(v, names)] : [', ', named(v, names)]));
  }
  return [JSON.stringify(value)];
}

/** `group:<id>` reads `group operators`, the full target on hover. */
function targetCell(target: string | null, names: Names): HTMLElement | string {
  if (target === null) return '—';
  const colon = target.indexOf(':');
  const name = colon > 0 ? names.get(target.slice(colon + 1)) : undefined;
  return name === undefined
    ? target
    : h(
        'span',
        { class: 'audit-name', title: target },
        `${target.slice(0, colon).replace('_', ' ')} ${name}`,
      );
}

function row(entry: AuditEntry, names: Names): HTMLTableRowElement {
  const details = Object.entries(entry.details)
    .filter(([key]) => key !== 'userNames')
    .map(([key, value]) => h('li', null, h('strong', null, `${key}: `), detailValue(value, names)));
  return h(
    'tr',
    { 'data-testid': 'audit-row', 'data-action': entry.action },
    h('td', { style: 'white-space:nowrap' }, formatTime(entry.at)),
    h('td', null, entry.actor ?? 'system'),
    h('td', null, h('code', null, entry.action)),
    h('td', null, targetCell(entry.target, names)),
    h('td', { class: 'mono' }, entry.ip ?? '—'),
    h('td', { style: 'min-width:14rem' }, h('ul', { class: 'details-list' }, details)),
  );
}
