/**
 * Download: the dialog (a path, typed or picked in the browser), then the server copies the file
 * (a folder as `.tar.gz`) out of the home into S3 while the panel shows "Preparing…" with a bar
 * (the page asks how far the copy got every half second), and the
 * browser saves it from the presigned URL through an `<a download>` click: the URL answers with
 * `Content-Disposition: attachment`, so the shell page never navigates away.
 */
import type {
  DownloadProgressResponse,
  DownloadRequest,
  DownloadResponse,
  FileEntry,
} from '../../../server/protocol/files.js';
import { errorMessage, getJson, postJson } from '../lib/api.js';
import { openDialog } from '../lib/dialog.js';
import { h, showAlert } from '../lib/dom.js';
import { FileBrowser } from './transfer-browser.js';
import { formatSize, percent, ThroughputMeter, formatSpeed } from './transfer-logic.js';
import type { TransferContext } from './transfer-panel.js';

/** Hands a presigned URL to the browser's download manager. */
function saveFromUrl(url: string, name: string): void {
  const link = h('a', { href: url, download: name, rel: 'noopener', hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
}

/** How often the page asks how far the copy into S3 got. */
const progressPollMs = 500;

/** A fresh id for following one download's preparation. */
function newProgressId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** One download in the panel; `size` is known when the file was picked in the browser. */
export async function startDownload(ctx: TransferContext, path: string, size?: number): Promise<void> {
  const row = ctx.panel.add(path);
  const run = async (): Promise<void> => {
    const preparing = `Preparing ${path}`;
    row.busy(`${preparing}${size === undefined ? '' : ` (${formatSize(size)})`}…`);
    const progressId = newProgressId();
    const meter = new ThroughputMeter();
    let polling = true;
    // Until the copy has started the answer is a 404: the row stays "Preparing…".
    const poll = window.setInterval(() => {
      void getJson<DownloadProgressResponse>(`${ctx.base}/downloads/progress/${progressId}`, {
        redirectOnAuth: false,
      }).then(
        ({ bytes, size: total }) => {
          if (!polling) return;
          meter.add(bytes, performance.now());
          const speed = meter.bytesPerSecond();
          const rate = speed === undefined ? '' : ` · ${formatSpeed(speed)}`;
          if (total === undefined) row.busy(`${preparing}: ${formatSize(bytes)}${rate}`);
          else row.progress(bytes, total, `${preparing}: ${percent(bytes, total)} %${rate}`);
        },
        () => undefined,
      );
    }, progressPollMs);
    try {
      const request: DownloadRequest = { path, progressId };
      const file = await postJson<DownloadResponse>(`${ctx.base}/downloads`, request);
      polling = false;
      saveFromUrl(file.url, file.name);
      row.succeed(`Downloaded ${file.name} (${formatSize(file.size)}): your browser saves it`);
      ctx.onFinished();
    } catch (error) {
      polling = false;
      row.fail(errorMessage(error), () => void run());
    } finally {
      window.clearInterval(poll);
    }
  };
  await run();
}

/** The Download file dialog. */
export function openDownloadDialog(ctx: TransferContext): void {
  let picked: FileEntry | undefined;
  const alert = h('div', {
    class: 'alert alert-error',
    role: 'alert',
    hidden: true,
    'data-testid': 'download-error',
  });
  const pathInput = h('input', {
    type: 'text',
    id: 'download-path',
    class: 'mono',
    placeholder: '~/notes.txt',
    autocomplete: 'off',
    spellcheck: false,
    'data-testid': 'download-path',
  });
  const browser = new FileBrowser(ctx.base, 'files', (path, entry) => {
    pathInput.value = path;
    picked = entry;
    showAlert(alert, '');
  });
  const browse = h('button', { type: 'button', class: 'btn', 'aria-expanded': 'false' }, 'Browse…');
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const ok = h(
    'button',
    { type: 'submit', class: 'btn btn-primary', form: 'download-form', 'data-testid': 'download-start' },
    'Download',
  );
  pathInput.addEventListener('input', () => (picked = undefined));
  browse.addEventListener('click', () => {
    const open = browser.element.hidden;
    browser.element.hidden = !open;
    browse.setAttribute('aria-expanded', String(open));
    if (open) void browser.show('~');
  });
  const form = h(
    'form',
    { id: 'download-form', novalidate: true },
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'download-path' }, 'File or folder'),
      h('div', { class: 'transfer-path-row' }, pathInput, browse),
      h(
        'span',
        { class: 'hint' },
        'A path in your home: relative to ~ or starting with /home/cloudshell-user. A folder comes as a .tar.gz.',
      ),
      browser.element,
    ),
  );
  const dialog = openDialog('Download file', alert, form, h('div', { class: 'dialog-actions' }, cancel, ok));
  dialog.element.classList.add('transfer-dialog');
  dialog.element.addEventListener('close', () => ctx.focusTerminal());
  cancel.addEventListener('click', () => dialog.close());
  pathInput.focus();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const path = pathInput.value.trim();
    if (path === '') {
      showAlert(alert, 'Type the path of a file in your home, or pick one with Browse.');
      pathInput.focus();
      return;
    }
    // Preparing a large file takes a while: it goes on in the panel, not in a modal.
    dialog.close();
    void startDownload(ctx, path, picked?.size);
  });
}
