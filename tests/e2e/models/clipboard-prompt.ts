/**
 * Page object for the shell page's OSC 52 question (web/src/shell/clipboard-prompt.ts): the
 * modal a program's clipboard write opens, and the clipboard itself as the page sees it (the
 * context must have clipboard-read and clipboard-write granted).
 */
import type { Locator, Page } from 'playwright-core';

export type ClipboardAnswer = 'allow-once' | 'always' | 'deny';

export class ClipboardPrompt {
  constructor(readonly page: Page) {}

  get dialog(): Locator {
    return this.page.getByTestId('clipboard-prompt');
  }

  get question(): Locator {
    return this.page.getByTestId('clipboard-question');
  }

  get preview(): Locator {
    return this.page.getByTestId('clipboard-preview');
  }

  get replacedNote(): Locator {
    return this.page.getByTestId('clipboard-replaced');
  }

  waitOpen(): Promise<void> {
    return this.dialog.waitFor();
  }

  waitClosed(): Promise<void> {
    return this.dialog.waitFor({ state: 'detached' });
  }

  isOpen(): Promise<boolean> {
    return this.dialog.count().then((n) => n > 0);
  }

  /** Clicks one of the answers and waits for the prompt to go. */
  async answer(choice: ClipboardAnswer): Promise<void> {
    await this.page.getByTestId(`clipboard-${choice}`).click();
    await this.waitClosed();
  }

  /** The text on the clipboard now. */
  read(): Promise<string> {
    return this.page.evaluate(() => navigator.clipboard.readText());
  }

  write(text: string): Promise<void> {
    return this.page.evaluate((value) => navigator.clipboard.writeText(value), text);
  }

  /** The `data-testid` or, failing that, the text of the element holding the focus. */
  focused(): Promise<string | null | undefined> {
    return this.page.evaluate(
      () => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.textContent,
    );
  }
}
