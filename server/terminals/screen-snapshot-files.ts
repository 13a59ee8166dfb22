/**
 * Terminal screens kept on disk across a graceful restart: written at shutdown, read back (and
 * deleted) when the next start re-adopts the terminal. They are the user's own terminal output,
 * so they touch disk only between a graceful stop and the next start: owner-only files in an
 * owner-only directory, named by a hash of the terminal id (the id itself is a capability), and
 * whatever the next start does not claim is deleted.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SavedScreen } from './terminal.js';

/** One line of JSON (the size, how much output it shows) before the serialized screen. */
interface Header {
  readonly cols: number;
  readonly rows: number;
  readonly offset?: number;
}

const fileName = (terminalId: string): string => createHash('sha256').update(terminalId).digest('hex');

export class ScreenSnapshotFiles {
  constructor(private readonly dir: string) {}

  async save(terminalId: string, screen: SavedScreen): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const header: Header = {
      cols: screen.cols,
      rows: screen.rows,
      ...(screen.offset !== undefined ? { offset: screen.offset } : {}),
    };
    const path = join(this.dir, fileName(terminalId));
    // Whole or not at all: a half-written screen would repaint garbage.
    await writeFile(`${path}.tmp`, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), screen.data]), {
      mode: 0o600,
    });
    await rename(`${path}.tmp`, path);
  }

  /** The saved screen of `terminalId`, deleted on the way; undefined when none (or unreadable). */
  async take(terminalId: string): Promise<SavedScreen | undefined> {
    const path = join(this.dir, fileName(terminalId));
    let content: Buffer;
    try {
      content = await readFile(path);
    } catch {
      return undefined;
    }
    await rm(path, { force: true });
    const newline = content.indexOf(0x0a);
    if (newline < 0) return undefined;
    try {
      const header = JSON.parse(content.subarray(0, newline).toString('utf8')) as Partial<Header>;
      const { cols, rows, offset } = header;
      if (!Number.isInteger(cols) || !Number.isInteger(rows) || !cols || !rows || cols < 1 || rows < 1)
        return undefined;
      const data = content.subarray(newline + 1);
      return Number.isSafeInteger(offset) && (offset as number) >= 0
        ? { cols, rows, data, offset: offset as number }
        : { cols, rows, data };
    } catch {
      return undefined;
    }
  }

  /** Deletes every saved screen (after a start took what it adopted). */
  async clear(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    await Promise.all(names.map((name) => rm(join(this.dir, name), { force: true })));
  }
}
