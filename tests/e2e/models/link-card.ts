/**
 * Page object for the "Open in Cove" confirmation card on the shell page (web/src/shell/link-card.ts):
 * what it says will happen, and its two buttons.
 */
import type { Page } from 'playwright-core';

export class LinkCard {
  constructor(readonly page: Page) {}

  async waitFor(): Promise<void> {
    await this.page.getByTestId('link-card').waitFor();
  }

  /** The card's whole text, as a person reads it. */
  text(): Promise<string> {
    return this.page.getByTestId('link-card').innerText();
  }

  async field(testId: 'link-repository' | 'link-folder' | 'link-command'): Promise<string> {
    return (await this.page.getByTestId(testId).textContent()) ?? '';
  }

  refusal(): Promise<string> {
    return this.page.getByTestId('link-refused').innerText();
  }

  hasConfirm(): Promise<boolean> {
    return this.page.getByTestId('link-confirm').isVisible();
  }

  confirm(): Promise<void> {
    return this.page.getByTestId('link-confirm').click();
  }

  cancel(): Promise<void> {
    return this.page.getByTestId('link-cancel').click();
  }

  /** The test id of the element with the keyboard focus. */
  focused(): Promise<string | undefined> {
    return this.page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.testid);
  }

  async isGone(): Promise<boolean> {
    return (await this.page.getByTestId('link-card').count()) === 0;
  }
}

/** An "Open in Cove" URL as a README would carry it. */
export function openInCoveUrl(
  origin: string,
  region: string,
  parts: { account?: string; permissionSet?: string; git?: string; cmd?: string },
): string {
  const query = new URLSearchParams();
  if (parts.account !== undefined) query.set('account', parts.account);
  if (parts.permissionSet !== undefined) query.set('permissionSet', parts.permissionSet);
  if (parts.git !== undefined) query.set('git', parts.git);
  if (parts.cmd !== undefined) query.set('cmd', parts.cmd);
  const search = query.toString();
  return `${origin}/shell/${encodeURIComponent(region)}${search ? `?${search}` : ''}`;
}
