/**
 * The shell page (`/shell/<region>?account=…&permissionSet=…`): tabs of terminals in one
 * environment and a status line. On load it reattaches the user's detached terminals for the same
 * binding (a reload or a return within the grace period gets the same shells back), otherwise it
 * opens a new one.
 */
import '@xterm/xterm/css/xterm.css';
import '../lib/style.css';
import './shell.css';
import { deleteJson, errorMessage, getJson, postJson } from '../lib/api.js';
import { mountHeader } from '../lib/header.js';
import { environmentActions, HomeStatus } from './home-status.js';
import { identityLabel, pageShortcut } from './shell-logic.js';
import { ShellTab, type ConnectAttempt, type ConnectionState, type TabBinding } from './shell-tab.js';
import { TransferActions } from './transfer-actions.js';
import { visibleText } from '../lib/visible-text.js';
import { copyText } from '../lib/clipboard.js';
import { shellUrl } from '../portal/shell-links.js';
import { confirmLink, type LinkPlan } from './link-card.js';
import { atPrompt, openLinkFromQuery, type OpenLink } from './open-link.js';

interface TerminalInfo {
  readonly terminalId: string;
  readonly accountId?: string;
  readonly permissionSet?: string;
  readonly attached: boolean;
  /** The session is recorded (output, or output and input): the page must say so. */
  readonly recorded?: string;
}

const region = decodeURIComponent(location.pathname.split('/')[2] ?? '');
const query = new URLSearchParams(location.search);
const account = query.get('account');
const permissionSet = query.get('permissionSet');
const firstBinding: TabBinding = account && permissionSet ? { accountId: account, permissionSet } : {};
const api = `/api/environments/${encodeURIComponent(region)}/terminals`;

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string) => {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

const root = document.getElementById('app') as HTMLElement;
root.textContent = '';
const tabBar = el('div', 'shell-tabs');
tabBar.setAttribute('role', 'tablist');
const addButton = el('button', 'shell-tab-add', '+');
addButton.title = 'Open another terminal in this environment (Alt+Shift+T)';
addButton.setAttribute('aria-label', 'New terminal');
addButton.dataset.testid = 'new-tab';
const panels = el('div', 'shell-panels');
const status = el('div', 'shell-status');
status.dataset.testid = 'shell-status';
const statusRegion = el('span', 'shell-status-item', `Region: ${region}`);
const statusIdentity = el('span', 'shell-status-item');
const statusConnection = el('span', 'shell-status-item');
statusConnection.dataset.testid = 'connection-state';
const statusNotice = el('span', 'shell-status-item shell-status-notice');
statusNotice.dataset.testid = 'shell-notice';
const statusRecorded = el('span', 'shell-status-item shell-status-recorded', 'This session is recorded');
statusRecorded.dataset.testid = 'recorded-status';
statusRecorded.hidden = true;
const homeStatus = new HomeStatus(region);
status.append(
  statusRegion,
  statusIdentity,
  statusRecorded,
  homeStatus.element,
  statusConnection,
  statusNotice,
);
// Said before anything is typed, for as long as the active terminal is recorded (issue 22).
const recordedBanner = el('div', 'shell-recorded-banner');
recordedBanner.dataset.testid = 'recorded-banner';
recordedBanner.setAttribute('role', 'note');
recordedBanner.hidden = true;
/** Recorded tabs and how (`output`, `output+input`). */
const recordedTabs = new WeakMap<ShellTab, string>();
const focusActive = () => active?.focus();
const transfers = new TransferActions(region, panels, {
  onFinished: () => void homeStatus.refresh(),
  focusTerminal: focusActive,
});
const actionsMenu = environmentActions(region, {
  transfers,
  // The server closed every terminal here: replace them with one fresh terminal.
  onReset: (message) => {
    const binding = active?.binding ?? firstBinding;
    for (const { tab } of [...tabs]) removeTab(tab);
    statusNotice.textContent = message;
    void openNew(binding).then(() => homeStatus.refresh());
  },
  onError: (message) => {
    statusNotice.textContent = message;
  },
  focusTerminal: focusActive,
  copyLink: () => {
    const binding = active?.binding ?? firstBinding;
    const url = new URL(shellUrl(region, toShellBinding(binding)), location.origin).href;
    void copyText(url).then((copied) => {
      statusNotice.textContent = copied ? `Copied the link to this shell: ${url}` : `Copy this link: ${url}`;
      focusActive();
    });
  },
});
tabBar.append(addButton, actionsMenu.element);
root.append(recordedBanner, tabBar, panels, status);

const tabs: { tab: ShellTab; button: HTMLButtonElement }[] = [];
let active: ShellTab | undefined;

const stateLabels: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

function renderStatus(): void {
  const recorded = active ? recordedTabs.get(active) : undefined;
  statusRecorded.hidden = recorded === undefined;
  recordedBanner.hidden = recorded === undefined;
  recordedBanner.textContent =
    recorded === 'output+input'
      ? 'This session is recorded, what you type included. Administrators can replay it.'
      : 'This session is recorded. Administrators can replay it.';
  statusIdentity.textContent = active ? identityLabel(active.binding) : '';
  statusConnection.textContent = active ? stateLabels[active.state] : '';
}

function activate(tab: ShellTab): void {
  active = tab;
  for (const t of tabs) {
    const selected = t.tab === tab;
    t.tab.element.hidden = !selected;
    t.button.setAttribute('aria-selected', String(selected));
  }
  tab.fitNow();
  tab.focus();
  renderStatus();
}

function removeTab(tab: ShellTab): void {
  const index = tabs.findIndex((t) => t.tab === tab);
  if (index < 0) return;
  tabs[index]?.button.remove();
  tabs.splice(index, 1);
  tab.dispose();
  const next = tabs[Math.max(0, index - 1)];
  if (next) activate(next.tab);
  else {
    active = undefined;
    renderStatus();
    showEmpty();
  }
}

/** No tab left: say so and offer the two ways on, instead of a blank dark page. */
const empty = el('div', 'shell-empty');
empty.dataset.testid = 'shell-empty';
empty.hidden = true;
{
  const openButton = el('button', 'btn btn-primary', 'Open a terminal');
  openButton.dataset.testid = 'empty-open';
  openButton.addEventListener('click', () => void openNew(firstBinding));
  const back = el('a', 'btn', 'Back to the portal');
  back.setAttribute('href', '/');
  const actions = el('div', 'shell-empty-actions');
  actions.append(openButton, back);
  empty.append(
    el('h2', '', 'No open terminals'),
    el('p', '', 'Your environment keeps running until it is idle, and your home is kept.'),
    actions,
  );
}
panels.append(empty);

function showEmpty(): void {
  empty.hidden = false;
  empty.querySelector('button')?.focus();
}

function showGone(tab: ShellTab, message: string, stopped = false): void {
  const box = el('div', 'shell-gone');
  box.dataset.testid = 'shell-gone';
  box.append(el('span', '', `${message} `));
  // A stopped environment took every tab with it: Restart starts it again (the home is kept).
  const again = el('button', 'btn btn-primary', stopped ? 'Restart' : 'Open a new terminal');
  again.dataset.testid = stopped ? 'restart-stopped' : 'open-new';
  again.addEventListener('click', () => {
    if (stopped) for (const { tab: other } of [...tabs]) if (other.state === 'closed') removeTab(other);
    removeTab(tab);
    void openNew(tab.binding);
  });
  box.append(again);
  tab.element.append(box);
}

function addTab(info: { terminalId: string; recorded?: string | undefined } & TabBinding): ShellTab {
  // Only the binding: a tab's binding is reused for "+", so it must never carry this terminal's id.
  const binding: TabBinding =
    info.accountId && info.permissionSet
      ? { accountId: info.accountId, permissionSet: info.permissionSet }
      : {};
  const tab = new ShellTab(region, info.terminalId, binding, {
    onState: (t) => {
      if (t === active) renderStatus();
    },
    onIdleWarning: (_t, message) => {
      statusNotice.textContent = message ?? '';
      statusNotice.classList.toggle('warning', message !== undefined);
    },
    onNotice: (_t, message) => {
      // Notices name files: a bidi override in a name must not turn the line around.
      statusNotice.textContent = visibleText(message);
      // A notice may be about the home filling up: show the usage behind it now.
      void homeStatus.refresh();
    },
    onGone: showGone,
  });
  if (info.recorded) recordedTabs.set(tab, info.recorded);
  const button = el('button', 'shell-tab');
  button.setAttribute('role', 'tab');
  button.dataset.testid = 'shell-tab';
  const label = el('span', '', `${binding.permissionSet ?? 'shell'} ${tabs.length + 1}`);
  const close = el('span', 'shell-tab-close', '×');
  close.title = 'Close this terminal';
  close.addEventListener('click', (event) => {
    event.stopPropagation();
    void deleteJson(`${api}/${tab.terminalId}`).catch(() => {});
    removeTab(tab);
  });
  button.append(label, close);
  button.addEventListener('click', () => activate(tab));
  tabBar.insertBefore(button, addButton);
  panels.append(tab.element);
  tabs.push({ tab, button });
  empty.hidden = true;
  activate(tab);
  tab.open();
  // The terminal can take the keyboard only once it is open: after "+" the focus would stay on
  // the button, and the next Enter would open yet another terminal.
  if (active === tab) tab.focus();
  return tab;
}

async function openNew(binding: TabBinding): Promise<ShellTab | undefined> {
  try {
    const { terminalId, recorded } = await postJson<{ terminalId: string; recorded?: string }>(api, binding);
    return addTab({ ...binding, terminalId, recorded });
  } catch (error) {
    statusNotice.textContent = errorMessage(error);
    return undefined;
  }
}

function toShellBinding(binding: TabBinding): { accountId: string; permissionSet: string } | undefined {
  return binding.accountId && binding.permissionSet
    ? { accountId: binding.accountId, permissionSet: binding.permissionSet }
    : undefined;
}

/** Polls until the tab shows a prompt; false when it did not within `timeoutMs` or the tab ended. */
async function promptIn(tab: ShellTab, timeoutMs = 90_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && tabs.some((t) => t.tab === tab)) {
    if (tab.state === 'connected' && atPrompt(tab.cursorLineText())) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

function showCancelled(): void {
  const back = el('a', 'btn btn-primary', 'Back to the portal');
  back.setAttribute('href', '/');
  const box = el('div', 'shell-empty');
  box.dataset.testid = 'link-cancelled';
  const actions = el('div', 'shell-empty-actions');
  actions.append(back);
  box.append(
    el('h2', '', 'Nothing was done'),
    el('p', '', 'No terminal was opened; nothing was cloned or typed.'),
    actions,
  );
  panels.append(box);
  back.focus();
}

/**
 * Carries out a confirmed link: a new terminal for the link's identity, then (at its first prompt,
 * so the environment runs) the clone, then the command typed but not run. A failed clone types
 * nothing: the command most likely needs the repository.
 */
async function openFromLink(link: OpenLink, detached: readonly TerminalInfo[]): Promise<boolean> {
  const plan: LinkPlan | undefined = await confirmLink(panels, {
    region,
    identity: identityLabel(firstBinding),
    link,
  });
  if (!plan) {
    showCancelled();
    return false;
  }
  // A reload now reattaches this shell instead of asking again.
  history.replaceState(null, '', shellUrl(region, toShellBinding(firstBinding)));
  for (const t of detached) addTab(t);
  const tab = await openNew(firstBinding);
  if (tab) void carryOut(tab, plan);
  return true;
}

async function carryOut(tab: ShellTab, plan: LinkPlan): Promise<void> {
  const notice = (text: string, warning = false) => {
    statusNotice.textContent = visibleText(text);
    statusNotice.classList.toggle('warning', warning);
  };
  if (plan.repository === undefined && plan.cmd === undefined) return;
  if (!(await promptIn(tab))) {
    notice(
      'The link was not carried out: the shell showed no prompt within 90 s. Nothing was cloned or typed.',
      true,
    );
    return;
  }
  let done = '';
  if (plan.repository) {
    const { url, folder } = plan.repository;
    notice(`Cloning ${url} into ~/${folder}…`);
    try {
      const clone = await postJson<{ outcome: 'cloned' | 'reused' }>(
        `/api/environments/${encodeURIComponent(region)}/clones`,
        { git: url },
      );
      done =
        clone.outcome === 'cloned'
          ? `Cloned ${url} into ~/${folder}.`
          : `~/${folder} already exists: used as it is (not updated).`;
      notice(done);
    } catch (error) {
      notice(errorMessage(error), true);
      return;
    }
  }
  if (plan.cmd === undefined) return;
  if (!(await promptIn(tab))) {
    notice(`${done} The command was not typed: the shell showed no prompt.`.trim(), true);
    return;
  }
  tab.typeText(plan.cmd);
  if (active === tab) tab.focus();
  notice(`${done} The link's command is typed at the prompt: read it, then press Enter to run it.`.trim());
}

addButton.addEventListener('click', () => void openNew(active?.binding ?? firstBinding));
// Keyboard users: the terminal keeps Tab for the shell, so the tabs and Actions have keys of their own.
document.addEventListener('keydown', (event) => {
  const shortcut = pageShortcut(event);
  if (shortcut === undefined || document.querySelector('dialog[open]')) return;
  event.preventDefault();
  const index = tabs.findIndex((t) => t.tab === active);
  switch (shortcut) {
    case 'new-tab':
      void openNew(active?.binding ?? firstBinding);
      break;
    case 'previous-tab':
    case 'next-tab': {
      const step = shortcut === 'next-tab' ? 1 : -1;
      const next = tabs[(index + step + tabs.length) % Math.max(1, tabs.length)];
      if (next) activate(next.tab);
      break;
    }
    case 'actions':
      actionsMenu.open();
      break;
  }
});
window.addEventListener('resize', () => active?.fitNow());

async function start(): Promise<void> {
  await mountHeader('shell');
  document.title = `Cove shell · ${region}`;
  const { terminals } = await getJson<{ terminals: TerminalInfo[] }>(api);
  const sameBinding = (t: TerminalInfo) =>
    (t.accountId ?? null) === (firstBinding.accountId ?? null) &&
    (t.permissionSet ?? null) === (firstBinding.permissionSet ?? null);
  const detached = terminals.filter((t) => !t.attached && sameBinding(t));
  const link = openLinkFromQuery(query);
  if (link) {
    if (!(await openFromLink(link, detached))) return;
  } else if (detached.length > 0) for (const t of detached) addTab(t);
  else await openNew(firstBinding);
  // After the first terminal: creating it created the home, so there is usage to show.
  homeStatus.start();
}

declare global {
  interface Window {
    /** Read-only view for browser tests and debugging: no input, no ids beyond the page's own. */
    coveShell?: {
      activeText(): string;
      /** The active terminal's cursor line (benchmarks poll it every frame). */
      activeCursorLine(): string;
      tabCount(): number;
      activeSize(): { cols: number; rows: number } | undefined;
      /** The active tab's socket attempts, oldest first (reconnect tests read the backoff). */
      activeAttempts(): ConnectAttempt[];
    };
  }
}
window.coveShell = {
  activeText: () => active?.bufferText() ?? '',
  activeCursorLine: () => active?.cursorLineText() ?? '',
  tabCount: () => tabs.length,
  activeSize: () => (active ? { cols: active.term.cols, rows: active.term.rows } : undefined),
  activeAttempts: () => active?.attempts.map((a) => ({ ...a })) ?? [],
};

void start();
