/** Page object for /device ("Authorize request", the AWS CLI's verification page). */
import type { Page } from 'playwright-core';

export class DevicePage {
  constructor(private readonly page: Page) {}

  /** The request as shown, once it is. */
  async request(): Promise<{ title: string; client: string; code: string | null }> {
    await this.page.locator('[data-testid=device-request]').waitFor();
    const code = this.page.locator('[data-testid=device-code]');
    return {
      title: await this.page.locator('[data-testid=device-title]').innerText(),
      client: await this.page.locator('[data-testid=device-client]').innerText(),
      code: (await code.count()) > 0 ? await code.innerText() : null,
    };
  }

  /** The data-testid (or tag) of the focused element. */
  focused(): Promise<string> {
    return this.page.evaluate(
      () => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.tagName ?? '',
    );
  }

  /** Waits for the outcome and returns its heading and text. */
  async outcome(): Promise<{ title: string; text: string }> {
    const done = this.page.locator('[data-testid=device-done]');
    await done.waitFor();
    return {
      title: await done.locator('[data-testid=device-title]').innerText(),
      text: await done.innerText(),
    };
  }

  async alertText(): Promise<string> {
    const alert = this.page.locator('[data-testid=device-alert]:not([hidden])');
    await alert.waitFor();
    return alert.innerText();
  }
}
