/** Page object for /login: password, TOTP, new password, MFA enrollment and invite steps. */
import type { Page } from 'playwright-core';

export class LoginPage {
  constructor(
    private readonly page: Page,
    private readonly origin: string,
  ) {}

  async goto(next?: string): Promise<void> {
    await this.page.goto(
      `${this.origin}/login${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`,
    );
    await this.page.locator('#login-form, #mfa-form, #change-password-form, #enroll-form').first().waitFor();
  }

  /** Submits user name and password; stays on whatever step comes next. */
  async submitPassword(username: string, password: string): Promise<void> {
    await this.page.locator('#login-form').waitFor();
    await this.page.fill('#username', username);
    await this.page.fill('#password', password);
    await this.page.click('#login-form button[type=submit]');
  }

  /** The "Sign in with <name>" links, as the page shows them. */
  async providerButtons(): Promise<string[]> {
    await this.page.locator('[data-testid=oidc-providers]').waitFor();
    return this.page.locator('[data-testid=oidc-providers] a').allTextContents();
  }

  async signInWith(name: string): Promise<void> {
    await this.page.getByRole('link', { name: `Sign in with ${name}` }).click();
  }

  async submitMfa(code: string): Promise<void> {
    await this.page.locator('#mfa-form').waitFor();
    await this.page.fill('#mfa-code', code);
    await this.page.click('#mfa-form button[type=submit]');
  }

  /** Opens an invite link and sets the password; returns the user name the page showed. */
  async acceptInvite(inviteUrl: string, password: string): Promise<string> {
    await this.page.goto(inviteUrl);
    await this.page.locator('#invite-form').waitFor();
    const username = (await this.page.textContent('[data-testid=invite-username]')) ?? '';
    await this.page.fill('#new-password', password);
    await this.page.fill('#confirm-password', password);
    await this.page.click('#invite-form button[type=submit]');
    return username;
  }

  /** On the enrollment step: returns the secret shown for manual entry. */
  async enrollmentSecret(): Promise<string> {
    await this.page.locator('#enroll-form').waitFor();
    await this.page.click('#enroll-form summary');
    return ((await this.page.textContent('[data-testid=mfa-secret]')) ?? '').trim();
  }

  async qrCodeShown(): Promise<boolean> {
    const img = this.page.locator('#enroll-form img.qr');
    await img.waitFor();
    return img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth > 0);
  }

  async submitEnrollment(code: string): Promise<void> {
    await this.page.fill('#enroll-code', code);
    await this.page.click('#enroll-form button[type=submit]');
  }

  async setNewPassword(password: string): Promise<void> {
    await this.page.locator('#change-password-form').waitFor();
    await this.page.fill('#new-password', password);
    await this.page.fill('#confirm-password', password);
    await this.page.click('#change-password-form button[type=submit]');
  }

  /** The visible error or notice text, once one appears. */
  async alertText(): Promise<string> {
    const alert = this.page.locator('#login-alert:not([hidden])');
    await alert.waitFor();
    return (await alert.textContent()) ?? '';
  }
}
