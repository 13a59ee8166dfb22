/**
 * Session recordings: search by user, time and identity (account, permission set), newest first,
 * and replay one in the page with asciinema-player (bundled, no CDN): play, pause, seek on its
 * bar or with the arrow keys. The file is fetched from Cove (each fetch is audited).
 */
import 'asciinema-player/dist/bundle/asciinema-player.css';
import { errorMessage, getJson } from '../lib/api.js';
import { formatTime, h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import { alertRegion, badge, cell, field, table, type AdminTab } from './admin-ui.js';

export interface RecordingView {
  readonly id: string;
  readonly terminalId: string;
  readonly userId: string;
  readonly username: string;
  readonly region: string;
  readonly accountId: string | null;
  readonly permissionSet: string | null;
  readonly mode: string;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly bytes: number;
  readonly complete: boolean;
}

interface Player {
  dispose(): void;
}

const sizeText = (bytes: number): string =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 ** 2
      ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** A `datetime-local` value (local time) as an ISO instant, or undefined when empty. */
const isoFrom = (value: string): string | undefined =>
  value === '' || Number.isNaN(Date.parse(value)) ? undefined : new Date(value).toISOString();

export class RecordingsTab implements AdminTab {
  readonly id = 'recordings';
  readonly label = 'Recordings';
  private readonly root = h('div', { 'data-testid': 'recordings-tab' });
  private readonly alert = alertRegion();
  private readonly results = h('div');
  private readonly viewer = h('section', { class: 'card', hidden: true, 'data-testid': 'recording-viewer' });
  private readonly user = h('input', { type: 'text', autocomplete: 'off', 'data-testid': 'recordings-user' });
  private readonly account = h('input', { type: 'text', inputmode: 'numeric', autocomplete: 'off' });
  private readonly permissionSet = h('input', { type: 'text', autocomplete: 'off' });
  private readonly from = h('input', { type: 'datetime-local' });
  private readonly to = h('input', { type: 'datetime-local' });
  private player: Player | undefined;

  render(): HTMLElement {
    this.closePlayer();
    const search = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', 'data-testid': 'recordings-search' },
      'Search',
    );
    const form = h(
      'form',
      { class: 'form-grid', 'aria-label': 'Search recordings' },
      field('rec-user', 'User', this.user, 'Username, exactly'),
      field('rec-account', 'Account', this.account, '12-digit account id'),
      field('rec-set', 'Permission set', this.permissionSet),
      field('rec-from', 'Started after', this.from),
      field('rec-to', 'Started before', this.to),
      h('div', { class: 'field' }, search),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void whileBusy(search, () => this.search());
    });
    replaceChildren(
      this.root,
      this.alert,
      h(
        'section',
        { class: 'card' },
        h('h2', { style: 'margin-top:0' }, 'Session recordings'),
        h(
          'p',
          { class: 'muted' },
          'Terminals of groups and permission sets with recording on. Each replay is written to the audit log.',
        ),
        form,
        this.results,
      ),
      this.viewer,
    );
    void this.search();
    return this.root;
  }

  private async search(): Promise<void> {
    const query = new URLSearchParams();
    const set = (key: string, value: string | undefined) => {
      if (value !== undefined && value.trim() !== '') query.set(key, value.trim());
    };
    set('user', this.user.value);
    set('accountId', this.account.value);
    set('permissionSet', this.permissionSet.value);
    set('from', isoFrom(this.from.value));
    set('to', isoFrom(this.to.value));
    try {
      const { recordings } = await getJson<{ recordings: RecordingView[] }>(
        `/api/admin/recordings?${query.toString()}`,
      );
      showAlert(this.alert, '');
      replaceChildren(
        this.results,
        table(
          ['Started', 'User', 'Region', 'Identity', 'Length', 'Size', 'State', ''],
          recordings.map((r) => this.row(r)),
          'No recordings match.',
        ),
      );
    } catch (error) {
      showAlert(this.alert, errorMessage(error));
    }
  }

  private row(r: RecordingView): HTMLTableRowElement {
    const play = h(
      'button',
      { type: 'button', class: 'btn btn-small', 'data-testid': 'recording-play' },
      'Replay',
    );
    play.addEventListener('click', () => void whileBusy(play, () => this.replay(r)));
    const seconds = r.endedAt === null ? undefined : (Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000;
    return h(
      'tr',
      { 'data-testid': 'recording-row', 'data-id': r.id },
      cell(formatTime(r.startedAt)),
      cell(r.username),
      cell(r.region),
      cell(r.accountId ? `${r.permissionSet ?? ''} on ${r.accountId}` : 'shell'),
      cell(seconds === undefined ? 'running' : `${Math.round(seconds)} s`),
      cell(sizeText(r.bytes)),
      cell(
        r.complete
          ? badge(r.mode === 'output+input' ? 'output + input' : 'output', 'ok')
          : badge('incomplete', 'warn'),
      ),
      cell(play),
    );
  }

  private async replay(r: RecordingView): Promise<void> {
    this.closePlayer();
    let data: string;
    try {
      const response = await fetch(`/api/admin/recordings/${encodeURIComponent(r.id)}/cast`, {
        credentials: 'same-origin',
      });
      if (!response.ok) {
        const body = (await response.json().catch(() => ({}))) as { message?: string };
        throw new Error(body.message ?? `The recording could not be loaded (HTTP ${response.status}).`);
      }
      data = await response.text();
    } catch (error) {
      showAlert(this.alert, errorMessage(error));
      return;
    }
    showAlert(this.alert, '');
    // Loaded on first use: the player (and its WebAssembly) only for admins who replay.
    const AsciinemaPlayer = await import('asciinema-player');
    const screen = h('div', { class: 'recording-player', 'data-testid': 'recording-player' });
    const close = h('button', { type: 'button', class: 'btn btn-small' }, 'Close');
    close.addEventListener('click', () => this.closePlayer());
    replaceChildren(
      this.viewer,
      h(
        'div',
        { class: 'row' },
        h('h2', { style: 'margin:0' }, `${r.username} · ${formatTime(r.startedAt)}`),
        h('span', { class: 'spacer' }),
        close,
      ),
      r.complete ? null : h('p', { class: 'muted' }, 'This recording is incomplete (see the audit log).'),
      screen,
    );
    this.viewer.hidden = false;
    this.player = AsciinemaPlayer.create({ data }, screen, {
      fit: 'width',
      idleTimeLimit: 2,
      autoPlay: true,
    }) as Player;
    screen.scrollIntoView({ block: 'nearest' });
  }

  private closePlayer(): void {
    this.player?.dispose();
    this.player = undefined;
    this.viewer.hidden = true;
    this.viewer.replaceChildren();
  }
}
