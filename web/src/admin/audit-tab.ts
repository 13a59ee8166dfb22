/** The audit log, newest first, a page at a time. */
import type { AuditEntry, AuditResponse } from '../../../server/protocol/api.js';
import { errorMessage, getJson } from '../lib/api.js';
import { formatTime, h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import { alertRegion, type AdminTab } from './admin-ui.js';

const pageSize = 50;

export class AuditTab implements AdminTab {
  readonly id = 'audit';
  readonly label = 'Audit log';
  private readonly root = h('div', { 'data-testid': 'audit-tab' });
  private readonly alert = alertRegion();
  private readonly body = h('tbody');
  private readonly more = h('button', { type: 'button', class: 'btn' }, 'Load more');
  private oldestId: number | undefined;

  async render(): Promise<HTMLElement> {
    this.oldestId = undefined;
    this.body.replaceChildren();
    const refresh = h('button', { type: 'button', class: 'btn btn-small' }, 'Refresh');
    refresh.addEventListener('click', () => void whileBusy(refresh, () => this.render()));
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
    for (const entry of sorted) this.body.append(row(entry));
    const last = sorted[sorted.length - 1];
    if (last) this.oldestId = last.id;
    this.more.hidden = entries.length < pageSize;
    if (this.body.childElementCount === 0)
      this.body.append(h('tr', null, h('td', { colspan: 6, class: 'empty' }, 'Nothing recorded yet.')));
  }
}

function row(entry: AuditEntry): HTMLTableRowElement {
  const details = Object.entries(entry.details).map(([key, value]) =>
    h('li', null, h('strong', null, `${key}: `), typeof value === 'string' ? value : JSON.stringify(value)),
  );
  return h(
    'tr',
    { 'data-testid': 'audit-row', 'data-action': entry.action },
    h('td', { style: 'white-space:nowrap' }, formatTime(entry.at)),
    h('td', null, entry.actor ?? 'system'),
    h('td', null, h('code', null, entry.action)),
    h('td', null, entry.target ?? '—'),
    h('td', { class: 'mono' }, entry.ip ?? '—'),
    h('td', { style: 'min-width:14rem' }, h('ul', { class: 'details-list' }, details)),
  );
}
