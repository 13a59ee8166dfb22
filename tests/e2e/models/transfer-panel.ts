/**
 * Page object for file transfers in the shell page: the Upload file and Download file dialogs
 * (opened from the Actions menu) and the progress panel with one row per file.
 */
import type { Download, Locator, Page } from 'playwright-core';

declare global {
  interface Window {
    /** Every text a transfer row's status line showed, in order (see recordProgress). */
    coveTransferLog?: string[];
  }
}

export class TransferPanel {
  constructor(readonly page: Page) {}

  get panel(): Locator {
    return this.page.getByTestId('transfer-panel');
  }

  get uploadError(): Locator {
    return this.page.getByTestId('upload-error');
  }

  /** The row whose title (the target path) matches. */
  row(title: string | RegExp): Locator {
    return this.page
      .getByTestId('transfer-row')
      .filter({ has: this.page.getByTestId('transfer-name').getByText(title, { exact: true }) });
  }

  async openUpload(): Promise<void> {
    await this.page.getByTestId('actions').click();
    await this.page.getByTestId('upload-file').click();
    await this.page.getByTestId('upload-files').waitFor();
  }

  /**
   * Picks files (paths on this machine: Playwright passes a path to the browser, where a buffer
   * would be copied through the protocol) in the open Upload dialog, and presses Upload.
   */
  async upload(paths: readonly string[], dir?: string): Promise<void> {
    await this.page.getByTestId('upload-files').setInputFiles([...paths]);
    if (dir !== undefined) await this.page.getByTestId('upload-dir').fill(dir);
    await this.page.getByTestId('upload-start').click();
  }

  async closeDialog(): Promise<void> {
    await this.page.keyboard.press('Escape');
    await this.page.locator('dialog').waitFor({ state: 'detached' });
  }

  /** Downloads `path` through the Download dialog; resolves with what the browser saved. */
  async download(path: string): Promise<Download> {
    await this.page.getByTestId('actions').click();
    await this.page.getByTestId('download-file').click();
    await this.page.getByTestId('download-path').fill(path);
    const saved = this.page.waitForEvent('download', { timeout: 60_000 });
    await this.page.getByTestId('download-start').click();
    return saved;
  }

  /** Starts keeping every status line the rows show, so a fast transfer's progress is still seen. */
  async recordProgress(): Promise<void> {
    await this.page.evaluate(() => {
      const log: string[] = [];
      window.coveTransferLog = log;
      new MutationObserver(() => {
        for (const status of Array.from(document.querySelectorAll('[data-testid="transfer-status"]'))) {
          const text = status.textContent ?? '';
          if (log[log.length - 1] !== text) log.push(text);
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
  }

  progressLog(): Promise<string[]> {
    return this.page.evaluate(() => window.coveTransferLog ?? []);
  }

  /** Waits until the row is over (done, failed or cancelled): its state and status line. */
  async finished(row: Locator, timeoutMs = 60_000): Promise<{ state: string; text: string }> {
    const over = ['done', 'failed', 'cancelled'].map((state) => `[data-state="${state}"]`).join(', ');
    await row.and(this.page.locator(over)).waitFor({ timeout: timeoutMs });
    return {
      state: (await row.getAttribute('data-state')) ?? '',
      text: (await row.getByTestId('transfer-status').textContent()) ?? '',
    };
  }

  /** The row's bar as value/max (1 when full). */
  async barFraction(row: Locator): Promise<number> {
    return row
      .getByTestId('transfer-bar')
      .evaluate((bar) => (bar as HTMLProgressElement).value / (bar as HTMLProgressElement).max);
  }
}
