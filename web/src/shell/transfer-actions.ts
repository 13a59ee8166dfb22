/**
 * File transfers in the shell page: the progress panel over the terminal, the Actions menu's
 * Upload file and Download file, and drag-and-drop of files onto the terminal (with an overlay
 * that says where they go). The page creates one and passes it to the Actions menu.
 */
import './transfer.css';
import { h } from '../lib/dom.js';
import { openDownloadDialog } from './transfer-download.js';
import { TransferPanel, type TransferContext } from './transfer-panel.js';
import { openUploadDialog } from './transfer-upload.js';

export interface TransferHooks {
  onFinished(): void;
  focusTerminal(): void;
}

export class TransferActions {
  private readonly ctx: TransferContext;

  /** `host` is the terminal area: the panel floats in its corner and files can be dropped on it. */
  constructor(region: string, host: HTMLElement, hooks: TransferHooks) {
    const panel = new TransferPanel(() => hooks.focusTerminal());
    host.append(panel.element);
    this.ctx = {
      region,
      base: `/api/environments/${encodeURIComponent(region)}`,
      panel,
      onFinished: () => hooks.onFinished(),
      focusTerminal: () => hooks.focusTerminal(),
    };
    this.acceptDrops(host);
  }

  upload(files: readonly File[] = []): void {
    openUploadDialog(this.ctx, files);
  }

  download(): void {
    openDownloadDialog(this.ctx);
  }

  private acceptDrops(host: HTMLElement): void {
    const overlay = h(
      'div',
      { class: 'transfer-drop', hidden: true, 'data-testid': 'drop-overlay' },
      h('div', { class: 'transfer-drop-box' }, 'Drop files to upload them to your home'),
    );
    host.append(overlay);
    const carriesFiles = (event: DragEvent) => event.dataTransfer?.types.includes('Files') ?? false;
    // dragenter/dragleave fire for every child crossed; count them so the overlay does not flicker.
    let depth = 0;
    host.addEventListener('dragenter', (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      depth++;
      overlay.hidden = false;
    });
    host.addEventListener('dragover', (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
    });
    host.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) overlay.hidden = true;
    });
    host.addEventListener('drop', (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      depth = 0;
      overlay.hidden = true;
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length > 0) this.upload(files);
    });
  }
}
