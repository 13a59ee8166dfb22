/**
 * Chromium as this machine runs it for browser tests and the bench: Debian's /usr/bin/chromium
 * through playwright-core (no downloaded browser), headless, with the flags it needs here.
 */
import { chromium, type Browser } from 'playwright-core';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
