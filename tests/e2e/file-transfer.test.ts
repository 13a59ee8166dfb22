/**
 * Upload and download in the shell page, in a real Chromium against a real Cove with a real
 * container and the embedded S3 on loopback: files chosen in the Upload dialog go through
 * presigned PUTs (a 12 MiB file in 5 MiB parts, a small one in one PUT) into the home, where the
 * terminal sees them with the same SHA-256; Download gives back the same bytes; refusals (a path
 * outside the home, a file over the limit) show the server's message before anything moves.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, signedInContext, startCove, type CoveServer } from './cove-server.js';
import { ShellPage } from './models/shell-page.js';
import { TransferPanel } from './models/transfer-panel.js';

const region = 'us-east-1';
const MiB = 1024 ** 2;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('file transfer in the shell page', () => {
  let cove: CoveServer;
  let browser: Browser;
  let context: BrowserContext;
  let shell: ShellPage;
  let transfers: TransferPanel;
  let ownerId: string;
  let files: string;
  /** A file on disk for the file picker (in `folder` when the same name is needed twice). */
  const file = (name: string, buffer: Buffer, folder = '') => {
    mkdirSync(join(files, folder), { recursive: true });
    const path = join(files, folder, name);
    writeFileSync(path, buffer);
    return { name, buffer, path };
  };
  let big: ReturnType<typeof file>;
  let small: ReturnType<typeof file>;
  /** The page's reports of stored parts (`…/uploads/:id/parts/:n`): part number and HTTP status. */
  const partReports: { partNumber: number; status: number }[] = [];

  beforeAll(async () => {
    files = mkdtempSync(join(tmpdir(), 'cove-e2e-files-'));
    big = file(`data-${process.pid}.bin`, randomBytes(12 * MiB));
    small = file('notes.txt', Buffer.from('first line\nsecond line\n'));
    cove = await startCove({
      logLevel: 'warn',
      // Low enough that 12 MiB goes in three parts and 17 MiB is over the limit.
      files: { multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB, maxFileBytes: 16 * MiB },
    });
    browser = await launchChromium();
    ({ userId: ownerId, context } = await signedInContext(cove, browser, `files-e2e-${process.pid}`));
    const page = await context.newPage();
    page.on('response', (response) => {
      const match = /\/uploads\/[^/]+\/parts\/(\d+)$/.exec(new URL(response.url()).pathname);
      if (match) partReports.push({ partNumber: Number(match[1]), status: response.status() });
    });
    shell = new ShellPage(page, cove.origin);
    transfers = new TransferPanel(page);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    const driver = cove?.app.environments.driver(region);
    await cove?.close();
    await driver?.remove({ ownerId, region }).catch(() => undefined);
    if (files) rmSync(files, { recursive: true, force: true });
  });

  it('uploads two files from the Actions menu with a progress bar to 100 %; the terminal sees the same bytes', async () => {
    await shell.goto(region);
    await shell.waitForPrompt(30_000);
    await transfers.recordProgress();
    await transfers.openUpload();
    await transfers.upload([big.path, small.path]);

    const bigRow = transfers.row(`~/${big.name}`);
    const smallRow = transfers.row(`~/${small.name}`);
    await transfers.panel.waitFor();
    expect(await transfers.finished(bigRow)).toEqual({
      state: 'done',
      text: `Uploaded ~/${big.name} (12.6 MB)`,
    });
    expect(await transfers.finished(smallRow)).toEqual({
      state: 'done',
      text: `Uploaded ~/${small.name} (23 B)`,
    });
    expect(await transfers.barFraction(bigRow)).toBe(1);
    expect(await bigRow.getByTestId('transfer-bar').isVisible()).toBe(true);
    // The bar moved through the upload rather than jumping to done.
    const log = await transfers.progressLog();
    expect(log.some((line) => /^\d+ %/.test(line) && !line.startsWith('100 %'))).toBe(true);
    expect(log).toContain(`Saving ~/${big.name}…`);
    // Each stored part was reported (so the server could start writing early) with the ETag the
    // server found: accepted, or too late because `complete` had already begun (409).
    expect(partReports.map((r) => r.partNumber).sort()).toEqual([1, 2, 3]);
    for (const report of partReports) expect([204, 409]).toContain(report.status);

    await shell.run(`clear; ls -l; sha256sum ${big.name} ${small.name}`);
    const text = await shell.waitForText(new RegExp(`${sha256(small.buffer)}  ${small.name}`));
    expect(text).toContain(`${sha256(big.buffer)}  ${big.name}`);
    expect(text).toMatch(new RegExp(`${12 * MiB} \\w+ +\\d+ +[\\d:]+ ${big.name.replace('.', '\\.')}`));
  });

  it('keeps the existing file when the same name comes again, and shows where the new one went', async () => {
    await transfers.openUpload();
    await transfers.upload([file(small.name, Buffer.from('a newer version\n'), 'newer').path]);
    // The new row appears once the server has answered the upload request (an exec in the
    // container and an S3 call: more than the default second on a busy machine).
    await expect.poll(() => transfers.row(`~/${small.name}`).count(), { timeout: 15_000 }).toBe(2);
    const row = transfers.row(`~/${small.name}`).nth(1);
    expect(await transfers.finished(row)).toEqual({ state: 'done', text: 'Uploaded ~/notes (1).txt (16 B)' });
    await shell.run("clear; cat notes.txt 'notes (1).txt'");
    await shell.waitForText(/^second line\na newer version$/m);
  });

  it('asks again when the answer to complete is lost: one file, shown as uploaded', async () => {
    const lost = file('lost-answer.txt', Buffer.from('saved once\n'));
    const completes: string[] = [];
    // The first complete reaches Cove and is carried out; its answer never reaches the page.
    await shell.page.route('**/uploads/*/complete', async (route) => {
      completes.push(route.request().url());
      if (completes.length > 1) return route.continue();
      await route.fetch();
      await route.abort('connectionreset');
    });
    try {
      await transfers.openUpload();
      await transfers.upload([lost.path]);
      expect(await transfers.finished(transfers.row(`~/${lost.name}`))).toEqual({
        state: 'done',
        text: `Uploaded ~/${lost.name} (11 B)`,
      });
    } finally {
      await shell.page.unroute('**/uploads/*/complete');
    }
    expect(completes).toHaveLength(2);
    expect(completes[1]).toBe(completes[0]);
    // Saved once: no "(1)" copy from a second upload.
    await shell.run("clear; ls lost-answer* | wc -l; cat 'lost-answer.txt'");
    await shell.waitForText(/^1\nsaved once$/m);
  });

  it('downloads the file back with the same bytes, without leaving the shell page', async () => {
    const saved = await transfers.download(big.name);
    expect(saved.suggestedFilename()).toBe(big.name);
    const bytes = await readFile(await saved.path());
    expect(bytes.length).toBe(big.buffer.length);
    expect(sha256(bytes)).toBe(sha256(big.buffer));
    const row = transfers.row(big.name);
    expect(await transfers.finished(row)).toEqual({
      state: 'done',
      text: `Downloaded ${big.name} (12.6 MB): your browser saves it`,
    });
    expect(new URL(shell.page.url()).pathname).toBe(`/shell/${region}`);
  });

  it('shows the server’s refusal in the dialog for a folder outside the home and for a file over the limit', async () => {
    const rowsBefore = await shell.page.getByTestId('transfer-row').count();

    await transfers.openUpload();
    await transfers.upload([small.path], '../../etc');
    await transfers.uploadError.waitFor();
    expect(await transfers.uploadError.textContent()).toMatch(/home/i);
    await transfers.closeDialog();

    await transfers.openUpload();
    await transfers.upload([file('too-big.bin', Buffer.alloc(17 * MiB)).path]);
    await transfers.uploadError.waitFor();
    expect(await transfers.uploadError.textContent()).toMatch(/at most 17 MB\b/);
    await transfers.closeDialog();

    // Nothing started, nothing landed.
    expect(await shell.page.getByTestId('transfer-row').count()).toBe(rowsBefore);
    await shell.run('clear; ls /etc/notes.txt too-big.bin 2>&1 | wc -l; echo listed-$((1+1))');
    await shell.waitForText(/^2\nlisted-2$/m);
  });

  it('opens the Upload dialog with the files dropped on the terminal', async () => {
    await shell.page.evaluate(() => {
      const data = new DataTransfer();
      data.items.add(new File(['dropped\n'], 'dropped.txt', { type: 'text/plain' }));
      const target = document.querySelector('.shell-tab-panel:not([hidden]) .xterm') as HTMLElement;
      for (const type of ['dragenter', 'dragover']) {
        target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
      }
    });
    expect(await shell.page.getByTestId('drop-overlay').isVisible()).toBe(true);
    await shell.page.evaluate(() => {
      const data = new DataTransfer();
      data.items.add(new File(['dropped\n'], 'dropped.txt', { type: 'text/plain' }));
      const target = document.querySelector('.shell-tab-panel:not([hidden]) .xterm') as HTMLElement;
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    expect(await shell.page.getByTestId('drop-overlay').isVisible()).toBe(false);
    expect(await shell.page.getByTestId('upload-chosen').textContent()).toBe('dropped.txt 8 B');
    await shell.page.getByTestId('upload-start').click();
    expect(await transfers.finished(transfers.row('~/dropped.txt'))).toEqual({
      state: 'done',
      text: 'Uploaded ~/dropped.txt (8 B)',
    });
  });
});
