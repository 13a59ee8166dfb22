/**
 * Upload: the dialog (files and a target folder), then for each file the PUTs straight to the
 * presigned S3 URLs the server hands out (parts in parallel, each retried with backoff, each
 * reported once stored so the server can start writing into the home), then `complete`, after
 * which the server finishes moving the parts into the home. The bytes never pass through
 * Cove. The server checks names, the size limit and the home's free space before any URL exists,
 * so a refusal shows in the dialog before anything moves. When `complete` fails because S3 or the
 * environment was unavailable (503), the server keeps the parts: Retry only calls `complete` again.
 */
import {
  isMultipartUpload,
  type CompletedPart,
  type CompleteUploadRequest,
  type CompleteUploadResponse,
  type PartStoredRequest,
  type UploadRequest,
  type UploadResponse,
  type UploadTicket,
} from '../../../server/protocol/files.js';
import { ApiError, deleteJson, errorMessage, postJson } from '../lib/api.js';
import { openDialog } from '../lib/dialog.js';
import { h, replaceChildren, showAlert, visibleName, whileBusy } from '../lib/dom.js';
import { visibleText } from '../lib/visible-text.js';
import { FileBrowser } from './transfer-browser.js';
import {
  formatSize,
  isRetryableStatus,
  joinPath,
  maxPartAttempts,
  partConcurrency,
  partRanges,
  progressLine,
  retryDelayMs,
  runLimited,
  targetDir,
  ThroughputMeter,
} from './transfer-logic.js';
import type { TransferContext, TransferRow } from './transfer-panel.js';

/** A PUT to S3 answered with a non-2xx status (0: no answer at all). */
class PutFailed extends Error {
  constructor(readonly status: number) {
    super(`PUT failed with HTTP ${status}`);
  }
}

class MissingEtag extends Error {}

const aborted = () => new DOMException('The transfer was cancelled.', 'AbortError');

/** Attempts at `complete` when its answer is lost on the way (Cove finishes it and answers again). */
const maxCompleteAttempts = 6;

/** `complete` failed but the server kept the staged parts: it can simply be called again. */
const completeRetryable = (error: unknown): boolean =>
  error instanceof ApiError &&
  (error.code === 'COVE_ERR_FILES_UNAVAILABLE' || error.code === 'COVE_ERR_FILES_ENVIRONMENT_UNAVAILABLE');

/** XMLHttpRequest rather than fetch: only it reports upload progress. Resolves with the ETag. */
function putBytes(
  url: string,
  body: Blob,
  onProgress: (loaded: number) => void,
  signal: AbortSignal,
): Promise<string | null> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(aborted());
    const xhr = new XMLHttpRequest();
    const abort = () => xhr.abort();
    signal.addEventListener('abort', abort, { once: true });
    const settle = <T>(then: (value: T) => void, value: T) => {
      signal.removeEventListener('abort', abort);
      then(value);
    };
    xhr.upload.addEventListener('progress', (event) => onProgress(event.loaded));
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) settle(resolve, xhr.getResponseHeader('ETag'));
      else settle(reject, new PutFailed(xhr.status));
    });
    xhr.addEventListener('error', () => settle(reject, new PutFailed(0)));
    xhr.addEventListener('abort', () => settle(reject, aborted()));
    xhr.open('PUT', url);
    xhr.send(body);
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(aborted());
    const timer = window.setTimeout(() => {
      signal.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      window.clearTimeout(timer);
      reject(aborted());
    };
    signal.addEventListener('abort', stop, { once: true });
  });
}

async function putWithRetries(
  url: string,
  body: Blob,
  onProgress: (loaded: number) => void,
  signal: AbortSignal,
): Promise<string | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await putBytes(url, body, onProgress, signal);
    } catch (error) {
      const retryable = error instanceof PutFailed && isRetryableStatus(error.status);
      if (!retryable || attempt >= maxPartAttempts || signal.aborted) throw error;
      onProgress(0);
      await sleep(retryDelayMs(attempt), signal);
    }
  }
}

/** What the user reads when a transfer fails; S3's own answers are not shown (they may hold keys). */
function failureReason(error: unknown): string {
  if (error instanceof PutFailed) {
    if (error.status === 0)
      return 'The connection to the file storage was lost. Check your connection and retry.';
    if (error.status === 403)
      return 'The file storage refused the upload link (it may have expired). Retry to get a new one.';
    return `The file storage refused the upload (HTTP ${error.status}). Retry; if it keeps failing, tell your administrator.`;
  }
  if (error instanceof MissingEtag) {
    return "The file storage did not return the part's ETag, so the upload cannot be finished. Its CORS rules must expose the ETag header: tell your administrator.";
  }
  return errorMessage(error);
}

/** One file on its way into the home, from presigned URLs to `complete`; owns its requests. */
class UploadJob {
  private controller = new AbortController();
  private readonly row: TransferRow;
  private readonly target: string;

  constructor(
    private readonly ctx: TransferContext,
    private readonly file: File,
    private readonly dir: string,
    private ticket: UploadTicket,
  ) {
    this.target = joinPath(dir, file.name);
    this.row = ctx.panel.add(this.target);
    this.row.onCancel(() => void this.cancel());
  }

  start(): void {
    void this.run();
  }

  private get url(): string {
    return `${this.ctx.base}/uploads/${encodeURIComponent(this.ticket.id)}`;
  }

  private async run(): Promise<void> {
    const { file, row, ticket } = this;
    const { signal } = this.controller;
    const loaded = new Map<number, number>();
    const meter = new ThroughputMeter();
    const report = (partNumber: number, bytes: number) => {
      loaded.set(partNumber, bytes);
      let done = 0;
      for (const n of loaded.values()) done += n;
      meter.add(done, performance.now());
      row.progress(done, file.size, progressLine(done, file.size, meter));
    };
    report(1, 0);
    try {
      let body: CompleteUploadRequest = {};
      if (isMultipartUpload(ticket)) {
        const parts: CompletedPart[] = [];
        await runLimited(partRanges(ticket, file.size), partConcurrency, async (part) => {
          const etag = await putWithRetries(
            part.url,
            file.slice(part.start, part.end),
            (bytes) => report(part.partNumber, bytes),
            signal,
          );
          if (!etag) throw new MissingEtag();
          parts.push({ partNumber: part.partNumber, etag });
          // Lets the server start writing into the home now; only a head start, so a failed
          // report changes nothing (`complete` checks every part anyway).
          const stored: PartStoredRequest = { etag };
          void postJson(`${this.url}/parts/${part.partNumber}`, stored, { redirectOnAuth: false }).catch(
            () => undefined,
          );
        });
        body = { parts: parts.sort((a, b) => a.partNumber - b.partNumber) };
      } else {
        // A slice has no type, so no Content-Type header the presigned URL did not sign.
        await putWithRetries(ticket.url, file.slice(0, file.size), (bytes) => report(1, bytes), signal);
      }
      await this.complete(body);
    } catch (error) {
      if (signal.aborted) return;
      // Stop the parts still in flight and let the server drop what was staged.
      this.controller.abort();
      void deleteJson(this.url).catch(() => undefined);
      row.fail(failureReason(error), () => void this.retry());
    }
  }

  /**
   * `complete`, asked again when the answer did not arrive (the network dropped): Cove gives a
   * finished upload's answer again, and says "busy" while the first call still saves.
   */
  private async requestComplete(body: CompleteUploadRequest): Promise<CompleteUploadResponse> {
    const { signal } = this.controller;
    for (let attempt = 1; ; attempt++) {
      try {
        return await postJson<CompleteUploadResponse>(`${this.url}/complete`, body);
      } catch (error) {
        const lost =
          error instanceof ApiError &&
          (error.code === 'COVE_ERR_NETWORK' || (attempt > 1 && error.code === 'COVE_ERR_FILES_UPLOAD_BUSY'));
        if (!lost || attempt >= maxCompleteAttempts || signal.aborted) throw error;
        this.row.busy(`Saving ${this.target}… (the connection dropped; asking Cove again)`);
        await sleep(retryDelayMs(attempt + 1), signal);
      }
    }
  }

  /** Asks the server to move the staged parts into the home. */
  private async complete(body: CompleteUploadRequest): Promise<void> {
    this.row.busy(`Saving ${this.target}…`);
    try {
      const saved = await this.requestComplete(body);
      this.row.succeed(`Uploaded ${saved.path} (${formatSize(saved.size)})`);
      this.ctx.onFinished();
    } catch (error) {
      if (this.controller.signal.aborted) return;
      if (!completeRetryable(error)) throw error;
      this.row.fail(failureReason(error), () => {
        void this.complete(body).catch((again: unknown) => {
          // The parts are gone after all (swept, or another failure): start over.
          this.controller.abort();
          void deleteJson(this.url).catch(() => undefined);
          this.row.fail(failureReason(again), () => void this.retry());
        });
      });
    }
  }

  private async cancel(): Promise<void> {
    this.controller.abort();
    this.row.cancelled(`Cancelled: ${this.target}`);
    await deleteJson(this.url).catch(() => undefined);
  }

  /** Starts over with fresh URLs: the old ones may have expired, and the old upload was dropped. */
  private async retry(): Promise<void> {
    this.row.busy(`Asking Cove to upload ${this.target} again…`);
    try {
      const request: UploadRequest = {
        dir: this.dir,
        files: [{ name: this.file.name, size: this.file.size }],
      };
      const { uploads } = await postJson<UploadResponse>(`${this.ctx.base}/uploads`, request);
      const ticket = uploads[0];
      if (!ticket) throw new Error('no upload ticket');
      this.ticket = ticket;
      this.controller = new AbortController();
      await this.run();
    } catch (error) {
      this.row.fail(failureReason(error), () => void this.retry());
    }
  }
}

/** Asks for URLs for every file at once, so a refusal comes before any byte moves. */
async function startUploads(ctx: TransferContext, dir: string, files: readonly File[]): Promise<void> {
  const request: UploadRequest = { dir, files: files.map((f) => ({ name: f.name, size: f.size })) };
  const { uploads } = await postJson<UploadResponse>(`${ctx.base}/uploads`, request);
  files.forEach((file, i) => {
    const ticket = uploads[i];
    if (ticket) new UploadJob(ctx, file, dir, ticket).start();
  });
}

/** The Upload file dialog, with `files` already chosen when they were dropped on the terminal. */
export function openUploadDialog(ctx: TransferContext, files: readonly File[] = []): void {
  let chosen = [...files];
  const alert = h('div', {
    class: 'alert alert-error',
    role: 'alert',
    hidden: true,
    'data-testid': 'upload-error',
  });
  const picker = h('input', {
    type: 'file',
    multiple: true,
    id: 'upload-files',
    'data-testid': 'upload-files',
  });
  const list = h('ul', { class: 'transfer-chosen', 'data-testid': 'upload-chosen' });
  const dirInput = h('input', {
    type: 'text',
    id: 'upload-dir',
    class: 'mono',
    value: '~',
    autocomplete: 'off',
    spellcheck: false,
    'data-testid': 'upload-dir',
  });
  const browser = new FileBrowser(ctx.base, 'folders', (path) => (dirInput.value = path));
  const browse = h('button', { type: 'button', class: 'btn', 'aria-expanded': 'false' }, 'Browse…');
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const ok = h(
    'button',
    { type: 'submit', class: 'btn btn-primary', form: 'upload-form', 'data-testid': 'upload-start' },
    'Upload',
  );
  const render = () => {
    replaceChildren(
      list,
      chosen.map((f) =>
        h(
          'li',
          null,
          h('span', { class: 'transfer-chosen-name' }, visibleName(f.name)),
          ` ${formatSize(f.size)}`,
        ),
      ),
    );
    ok.disabled = chosen.length === 0;
  };
  picker.addEventListener('change', () => {
    chosen = [...(picker.files ?? [])];
    showAlert(alert, '');
    render();
  });
  browse.addEventListener('click', () => {
    const open = browser.element.hidden;
    browser.element.hidden = !open;
    browse.setAttribute('aria-expanded', String(open));
    if (open) void browser.show(targetDir(dirInput.value));
  });
  const form = h(
    'form',
    { id: 'upload-form', novalidate: true },
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'upload-files' }, 'Files'),
      picker,
      h('span', { class: 'hint' }, 'Or drop files on the terminal.'),
      list,
    ),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'upload-dir' }, 'Into folder'),
      h('div', { class: 'transfer-path-row' }, dirInput, browse),
      h(
        'span',
        { class: 'hint' },
        '~ is your home. A file with the same name is kept; the new one gets a number.',
      ),
      browser.element,
    ),
  );
  const dialog = openDialog('Upload file', alert, form, h('div', { class: 'dialog-actions' }, cancel, ok));
  dialog.element.classList.add('transfer-dialog');
  dialog.element.addEventListener('close', () => ctx.focusTerminal());
  cancel.addEventListener('click', () => dialog.close());
  render();
  (chosen.length > 0 ? ok : picker).focus();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (chosen.length === 0) return;
    void whileBusy(
      ok,
      async () => {
        try {
          await startUploads(ctx, targetDir(dirInput.value), chosen);
          dialog.close();
        } catch (error) {
          showAlert(alert, visibleText(errorMessage(error)));
        }
      },
      'Checking…',
    );
  });
}
