/**
 * A small browser of the home for the transfer dialogs, on the listing route: folders open on
 * click, Up goes one level back, "Use this folder" picks the folder shown, and (for downloads) a
 * file picks that file. It fills the dialog's path field and nothing else; the server checks the
 * path again when it is used.
 */
import type { FileEntry, FileListing } from '../../../server/protocol/files.js';
import { errorMessage, getJson } from '../lib/api.js';
import { h, replaceChildren, visibleName } from '../lib/dom.js';
import { visibleText } from '../lib/visible-text.js';
import { formatSize, joinPath, parentDir } from './transfer-logic.js';

export type BrowserMode = 'folders' | 'files';

export class FileBrowser {
  readonly element: HTMLElement;
  private readonly heading: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly note: HTMLElement;
  private readonly up: HTMLButtonElement;
  private dir = '~';
  /** Answers to an older request are dropped when the user has moved on. */
  private generation = 0;

  constructor(
    private readonly base: string,
    private readonly mode: BrowserMode,
    private readonly choose: (path: string, entry?: FileEntry) => void,
  ) {
    this.heading = h('span', { class: 'transfer-browser-dir mono', 'data-testid': 'browser-dir' });
    this.up = h('button', { type: 'button', class: 'btn transfer-button', onclick: () => this.goUp() }, 'Up');
    const useFolder = h(
      'button',
      { type: 'button', class: 'btn transfer-button', onclick: () => this.choose(this.dir) },
      mode === 'folders' ? 'Use this folder' : 'Download this folder',
    );
    this.list = h('ul', { class: 'transfer-browser-list', 'data-testid': 'browser-list' });
    this.note = h('p', { class: 'hint', role: 'status' });
    this.element = h(
      'div',
      { class: 'transfer-browser', hidden: true, 'data-testid': 'file-browser' },
      h('div', { class: 'transfer-browser-bar' }, this.heading, this.up, useFolder),
      this.list,
      this.note,
    );
  }

  async show(dir: string): Promise<void> {
    const generation = ++this.generation;
    this.note.textContent = 'Loading…';
    try {
      const listing = await getJson<FileListing>(`${this.base}/files?dir=${encodeURIComponent(dir)}`);
      if (generation !== this.generation) return;
      this.render(listing);
    } catch (error) {
      if (generation !== this.generation) return;
      this.note.textContent = errorMessage(error);
    }
  }

  private goUp(): void {
    const parent = parentDir(this.dir);
    if (parent) void this.show(parent);
  }

  private render(listing: FileListing): void {
    this.dir = listing.dir;
    this.heading.textContent = visibleText(listing.dir);
    this.up.disabled = parentDir(listing.dir) === undefined;
    const dirs = listing.entries.filter((e) => e.type === 'dir');
    const files = this.mode === 'files' ? listing.entries.filter((e) => e.type === 'file') : [];
    const byName = (a: FileEntry, b: FileEntry) => a.name.localeCompare(b.name);
    replaceChildren(this.list, [
      ...dirs
        .sort(byName)
        .map((entry) =>
          this.item(`${entry.name}/`, '', () => void this.show(joinPath(listing.dir, entry.name))),
        ),
      ...files
        .sort(byName)
        .map((entry) =>
          this.item(entry.name, formatSize(entry.size), () =>
            this.choose(joinPath(listing.dir, entry.name), entry),
          ),
        ),
    ]);
    const empty = dirs.length + files.length === 0;
    this.note.textContent = listing.truncated
      ? 'Only the first entries are shown; type the path for the others.'
      : empty
        ? this.mode === 'folders'
          ? 'No folders here.'
          : 'Nothing to download here.'
        : '';
  }

  private item(label: string, detail: string, onClick: () => void): HTMLLIElement {
    return h(
      'li',
      null,
      h(
        'button',
        { type: 'button', class: 'transfer-browser-entry', 'data-testid': 'browser-entry', onclick: onClick },
        h('span', { class: 'transfer-browser-name' }, visibleName(label)),
        detail ? h('span', { class: 'hint' }, detail) : null,
      ),
    );
  }
}
