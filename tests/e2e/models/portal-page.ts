/** Page object for the access portal (/). */
import type { Page } from 'playwright-core';

export interface PortalAccount {
  readonly accountId: string;
  readonly text: string;
}

export class PortalPage {
  constructor(
    private readonly page: Page,
    private readonly origin: string,
  ) {}

  async goto(): Promise<void> {
    await this.page.goto(`${this.origin}/`);
    await this.waitLoaded();
  }

  async waitLoaded(): Promise<void> {
    await this.page.locator('[data-testid=accounts], [data-testid=no-accounts]').first().waitFor();
  }

  async accounts(): Promise<PortalAccount[]> {
    await this.waitLoaded();
    return this.page.$$eval('[data-testid=account]', (els) =>
      els.map((el) => ({ accountId: el.getAttribute('data-account-id') ?? '', text: el.textContent ?? '' })),
    );
  }

  async emptyMessage(): Promise<string | null> {
    await this.waitLoaded();
    const empty = this.page.locator('[data-testid=no-accounts]');
    return (await empty.count()) > 0 ? empty.textContent() : null;
  }

  /** Expands the account if needed and lists its permission set names. */
  async permissionSets(accountId: string): Promise<string[]> {
    const account = this.page.locator(`[data-account-id="${accountId}"]`);
    const toggle = account.locator('.account-toggle');
    if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
    return account
      .locator('[data-testid=permission-set]')
      .evaluateAll((els) => els.map((el) => el.getAttribute('data-permission-set') ?? ''));
  }

  async openShellLink(
    accountId: string,
    permissionSet: string,
  ): Promise<{ href: string; target: string; rel: string }> {
    const link = this.page.locator(
      `[data-account-id="${accountId}"] [data-permission-set="${permissionSet}"] [data-testid=open-shell]`,
    );
    return {
      href: (await link.getAttribute('href')) ?? '',
      target: (await link.getAttribute('target')) ?? '',
      rel: (await link.getAttribute('rel')) ?? '',
    };
  }

  /** Clicks "Copy link to this shell" of an assignment (expanding its account first). */
  async copyShellLink(accountId: string, permissionSet: string): Promise<void> {
    await this.permissionSets(accountId);
    const button = this.page.locator(
      `[data-account-id="${accountId}"] [data-permission-set="${permissionSet}"] [data-testid=copy-shell-link]`,
    );
    await button.click();
    await this.page.waitForFunction(
      (el) => el?.textContent !== 'Copy link to this shell',
      await button.elementHandle(),
    );
  }

  async chooseRegion(region: string): Promise<void> {
    await this.page.selectOption('#region', region);
  }

  /** Opens Command line access for an assignment and returns what the panel says once loaded. */
  async openCliDialog(accountId: string, permissionSet: string): Promise<string> {
    await this.page.click(
      `[data-account-id="${accountId}"] [data-permission-set="${permissionSet}"] [data-testid=cli-access]`,
    );
    const dialog = this.page.locator('[data-testid=cli-dialog]');
    await dialog.locator('[data-testid=cli-expiry], [data-testid=cli-error]').first().waitFor();
    const text = (await dialog.textContent()) ?? '';
    await dialog.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
    return text;
  }

  async currentUser(): Promise<string> {
    return ((await this.page.textContent('[data-testid=current-user]')) ?? '').trim();
  }

  async signOut(): Promise<void> {
    await this.page.click('[data-testid=sign-out]');
    await this.page.waitForURL(/\/login(\?signed-out=1)?$/);
  }
}
