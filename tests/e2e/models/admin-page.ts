/** Page object for /admin: drives the real forms, the way an administrator would. */
import type { Page } from 'playwright-core';

export type AdminTabId =
  | 'users'
  | 'groups'
  | 'accounts'
  | 'permission-sets'
  | 'assignments'
  | 'homes'
  | 'recordings'
  | 'identity-providers'
  | 'provisioning'
  | 'audit';

export class AdminPage {
  constructor(
    private readonly page: Page,
    private readonly origin: string,
  ) {}

  async goto(tab: AdminTabId = 'users'): Promise<void> {
    await this.page.goto(`${this.origin}/admin#${tab}`);
    await this.page.locator(`[data-testid=${tab}-tab]`).waitFor();
  }

  async openTab(tab: AdminTabId): Promise<void> {
    await this.page.click(`#tab-${tab}`);
    await this.page.locator(`[data-testid=${tab}-tab]`).waitFor();
  }

  /** Creates a user without a password; returns the one-time invite link the page shows. */
  async createUser(
    username: string,
    options: { mfaRequired?: boolean; email?: string } = {},
  ): Promise<string> {
    await this.openTab('users');
    await this.page.fill('#new-user-name', username);
    if (options.email) await this.page.fill('#new-user-email', options.email);
    if (options.mfaRequired) await this.page.check('#new-user-mfa');
    await this.page.click('[data-testid=create-user-form] button[type=submit]');
    const invite = this.page.locator('[data-testid=invite-url]');
    await invite.waitFor();
    await this.page.locator(`[data-testid=user-row][data-username="${username}"]`).waitFor();
    return invite.inputValue();
  }

  /** Pastes CSV into the bulk form; returns the CSV the server answered with. */
  async bulkCreate(csv: string): Promise<string> {
    await this.openTab('users');
    await this.page.fill('[data-testid=bulk-form] textarea', csv);
    await this.page.click('[data-testid=bulk-form] button[type=submit]');
    const result = this.page.locator('[data-testid=bulk-csv]');
    await result.waitFor();
    return (await result.textContent()) ?? '';
  }

  async userRowText(username: string): Promise<string> {
    return (await this.page.textContent(`[data-testid=user-row][data-username="${username}"]`)) ?? '';
  }

  async createAccount(accountId: string, name: string): Promise<void> {
    await this.openTab('accounts');
    await this.page.fill('#account-id', accountId);
    await this.page.fill('#account-name', name);
    await this.page.click('[data-testid=create-account-form] button[type=submit]');
    await this.page.locator(`tr[data-account-id="${accountId}"]`).waitFor();
  }

  async createPermissionSet(name: string, hours: number, policy?: string): Promise<void> {
    await this.openTab('permission-sets');
    await this.page.fill('#ps-name', name);
    await this.page.fill('#ps-description', `${name} for e2e`);
    await this.page.fill('#ps-hours', String(hours));
    if (policy) await this.page.fill('#ps-policy', policy);
    await this.page.click('[data-testid=permission-set-form] button[type=submit]');
    await this.page.locator(`tr[data-permission-set="${name}"]`).waitFor();
  }

  async assign(
    principalType: 'user' | 'group',
    principalName: string,
    accountId: string,
    permissionSet: string,
  ) {
    await this.openTab('assignments');
    await this.page.selectOption('#assign-kind', principalType);
    await this.page.selectOption('#assign-principal', { label: principalName });
    await this.page.selectOption('#assign-account', accountId);
    await this.page.selectOption('#assign-permission-set', permissionSet);
    const before = await this.page.locator('[data-testid=assignment-row]').count();
    await this.page.click('[data-testid=create-assignment-form] button[type=submit]');
    await this.page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid=assignment-row]').length > n,
      before,
    );
  }

  /** The error shown in the open tab's form, once one appears. */
  async formError(): Promise<string> {
    const alert = this.page.locator('[role=tabpanel] [data-testid=admin-alert]:not([hidden])').first();
    await alert.waitFor();
    return (await alert.textContent()) ?? '';
  }

  async auditActions(): Promise<string[]> {
    await this.openTab('audit');
    await this.page.locator('[data-testid=audit-row]').first().waitFor();
    return this.page.$$eval('[data-testid=audit-row]', (rows) =>
      rows.map((r) => r.getAttribute('data-action') ?? ''),
    );
  }

  /** The user's row in the Users tab. */
  userRow(username: string) {
    return this.page.locator(`[data-testid=user-row][data-username="${username}"]`);
  }

  /** Waits until the user's row shows `text` (the list redraws after each action). */
  async waitForUserRowText(username: string, text: string): Promise<string> {
    await this.page.waitForFunction(
      ([name, wanted]) =>
        document
          .querySelector(`[data-testid=user-row][data-username="${name}"]`)
          ?.textContent?.includes(wanted),
      [username, text] as const,
    );
    return this.userRowText(username);
  }

  /** The alert above the tabs about what only an administrator can fix (STS), once shown. */
  async serverHealthText(): Promise<string> {
    const alert = this.page.locator('[data-testid=server-health] [role=alert]');
    await alert.waitFor();
    return (await alert.innerText()).trim();
  }
}
