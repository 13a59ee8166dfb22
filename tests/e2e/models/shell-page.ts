/**
 * Page object for the shell page. Reads the terminal through the page's read-only
 * `window.coveShell` view and polls it (xterm.js `pollFor` style): the WebGL renderer draws on a
 * canvas, so the DOM does not hold the text.
 */
import type { Page } from 'playwright-core';

/** One socket the active tab opened (Date.now() times), as web/src/shell/shell-tab.ts records it. */
export interface ConnectAttempt {
  readonly startedAt: number;
  readonly openedAt?: number;
  readonly failedAt?: number;
  /** The backoff delay the page scheduled after this attempt ended. */
  readonly retryInMs?: number;
}

/** What web/src/shell/main.ts exposes (tests cannot import the front end). */
declare global {
  interface Window {
    coveShell?: {
      activeText(): string;
      tabCount(): number;
      activeSize(): { cols: number; rows: number } | undefined;
      activeAttempts(): ConnectAttempt[];
    };
  }
}

export class ShellPage {
  constructor(
    readonly page: Page,
    readonly origin: string,
  ) {}

  async goto(region: string, binding?: { account: string; permissionSet: string }): Promise<void> {
    const query = binding ? `?${new URLSearchParams(binding).toString()}` : '';
    await this.page.goto(`${this.origin}/shell/${region}${query}`);
  }

  /** The active terminal's buffer as text, without the blank rows below the cursor. */
  async text(): Promise<string> {
    return (await this.page.evaluate(() => window.coveShell?.activeText() ?? '')).trimEnd();
  }

  tabCount(): Promise<number> {
    return this.page.evaluate(() => window.coveShell?.tabCount() ?? 0);
  }

  size(): Promise<{ cols: number; rows: number } | undefined> {
    return this.page.evaluate(() => window.coveShell?.activeSize());
  }

  /** Polls until `check` holds for the active terminal's text. */
  async waitForText(check: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let text = '';
    while (Date.now() < deadline) {
      text = await this.text();
      if (check.test(text)) return text;
      await this.page.waitForTimeout(50);
    }
    throw new Error(`terminal never showed ${String(check)}; it shows:\n${text.slice(-1000)}`);
  }

  waitForPrompt(timeoutMs?: number): Promise<string> {
    return this.waitForText(/\$$/, timeoutMs);
  }

  /** Types a command line into the active terminal and presses Enter. */
  async run(command: string): Promise<void> {
    await this.page.locator('.shell-tab-panel:not([hidden]) .xterm').click();
    await this.page.keyboard.type(command);
    await this.page.keyboard.press('Enter');
  }

  async newTab(): Promise<void> {
    const before = await this.tabCount();
    await this.page.getByTestId('new-tab').click();
    const deadline = Date.now() + 10_000;
    while ((await this.tabCount()) === before && Date.now() < deadline) await this.page.waitForTimeout(50);
  }

  /** Pastes through the page's paste handler, as the browser would for Ctrl+V. */
  async paste(text: string): Promise<void> {
    await this.page.evaluate((value) => {
      const data = new DataTransfer();
      data.setData('text/plain', value);
      const target = document.querySelector('.shell-tab-panel:not([hidden]) textarea') as HTMLElement;
      target.dispatchEvent(
        new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }),
      );
    }, text);
  }

  /** The active tab's socket attempts, oldest first. */
  attempts(): Promise<ConnectAttempt[]> {
    return this.page.evaluate(() => window.coveShell?.activeAttempts() ?? []);
  }

  /** The status line's notice (what the page says happened last). */
  async notice(): Promise<string> {
    return (await this.page.getByTestId('shell-notice').textContent()) ?? '';
  }

  /** Polls the status line's notice until `check` holds. */
  async waitForNotice(check: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let text = '';
    while (Date.now() < deadline) {
      text = await this.notice();
      if (check.test(text)) return text;
      await this.page.waitForTimeout(50);
    }
    throw new Error(`the notice never said ${String(check)}; it says: ${text}`);
  }

  /** Actions ▸ Copy link to this shell. */
  async copyLinkFromActions(): Promise<void> {
    await this.page.getByTestId('actions').click();
    await this.page.getByTestId('copy-shell-link').click();
    await this.waitForNotice(/link/i, 5_000);
  }

  statusText(): Promise<string> {
    return this.page.getByTestId('shell-status').innerText();
  }

  /** Types into whatever has the keyboard focus, as a person does without clicking first. */
  async typeLine(command: string): Promise<void> {
    await this.page.keyboard.type(command);
    await this.page.keyboard.press('Enter');
  }

  /** The terminal id of the visible tab (the panel carries it; the page shows no ids). */
  activeTerminalId(): Promise<string | null> {
    return this.page.locator('.shell-tab-panel:not([hidden])').getAttribute('data-terminal-id');
  }

  /** Whether the visible terminal has the keyboard focus (xterm's input textarea). */
  terminalHasFocus(): Promise<boolean> {
    return this.page.evaluate(() => {
      const panel = document.querySelector('.shell-tab-panel:not([hidden])');
      return !!panel && !!document.activeElement && panel.contains(document.activeElement);
    });
  }

  /** What has the keyboard focus, as a short description (test messages). */
  focusDescription(): Promise<string> {
    return this.page.evaluate(() => {
      const active = document.activeElement;
      if (!active || active === document.body) return 'body';
      return `${active.tagName.toLowerCase()}${active.className ? `.${String(active.className).split(' ').join('.')}` : ''} "${(active.textContent ?? '').slice(0, 40)}"`;
    });
  }

  /** Polls until the visible terminal has the keyboard focus. */
  async waitForTerminalFocus(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.terminalHasFocus()) return;
      await this.page.waitForTimeout(50);
    }
    throw new Error(`the terminal never got the keyboard focus; it is on ${await this.focusDescription()}`);
  }

  tabLabels(): Promise<string[]> {
    return this.page.getByTestId('shell-tab').allInnerTexts();
  }

  async switchTab(index: number): Promise<void> {
    await this.page.getByTestId('shell-tab').nth(index).click();
  }

  async closeTab(index: number): Promise<void> {
    const before = await this.tabCount();
    await this.page.getByTestId('shell-tab').nth(index).getByTitle('Close this terminal').click();
    const deadline = Date.now() + 5_000;
    while ((await this.tabCount()) === before && Date.now() < deadline) await this.page.waitForTimeout(50);
  }

  /** Runs `echo $$` style probes: the shell's PID, read back from the screen. */
  async shellPid(marker: string): Promise<string> {
    await this.typeLine(`echo ${marker}-$$`);
    const text = await this.waitForText(new RegExp(`^${marker}-(\\d+)$`, 'm'));
    return new RegExp(`^${marker}-(\\d+)$`, 'm').exec(text)?.[1] ?? '';
  }
}
