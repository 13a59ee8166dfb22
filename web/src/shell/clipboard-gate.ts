/**
 * Who decides when a program in the terminal sets the clipboard (OSC 52): the person, never the
 * output. `cat` of a hostile file, a log or a cloned repository can carry an OSC 52 that would put
 * `curl … | sh` on the clipboard, so the first write of a terminal asks: Allow once, Always for
 * this terminal, or Deny (which stops asking and drops every later write of this terminal).
 * A write that comes while the question is open replaces the pending one: what is asked about is
 * always what would be copied. Closing the prompt without a choice (Escape) drops that write and
 * asks again next time. Pure state, no DOM: the tab shows the prompt and writes the clipboard.
 */

export type ClipboardPolicy = 'ask' | 'always' | 'deny';
export type ClipboardChoice = 'allow-once' | 'always' | 'deny' | 'dismiss';

/** What the tab does with one OSC 52 write. */
export type ClipboardStep =
  /** Copy now (the person chose Always for this terminal). */
  | { readonly kind: 'write'; readonly text: string }
  /** Open the prompt for this text. */
  | { readonly kind: 'ask'; readonly text: string }
  /** The prompt is open: show this text in it instead. */
  | { readonly kind: 'replace'; readonly text: string; readonly replaced: number }
  /** Dropped: this terminal was denied. */
  | { readonly kind: 'drop' };

export class ClipboardGate {
  private current: ClipboardPolicy = 'ask';
  private waiting: string | undefined;
  private replacedCount = 0;

  get policy(): ClipboardPolicy {
    return this.current;
  }

  /** The text the open prompt is about, if one is open. */
  get pending(): string | undefined {
    return this.waiting;
  }

  request(text: string): ClipboardStep {
    if (this.current === 'deny') return { kind: 'drop' };
    if (this.current === 'always') return { kind: 'write', text };
    if (this.waiting !== undefined) {
      this.waiting = text;
      this.replacedCount += 1;
      return { kind: 'replace', text, replaced: this.replacedCount };
    }
    this.waiting = text;
    this.replacedCount = 0;
    return { kind: 'ask', text };
  }

  /** The person answered the open prompt; returns the text to copy, if any. */
  decide(choice: ClipboardChoice): string | undefined {
    const text = this.waiting;
    this.waiting = undefined;
    this.replacedCount = 0;
    if (text === undefined) return undefined;
    switch (choice) {
      case 'allow-once':
        return text;
      case 'always':
        this.current = 'always';
        return text;
      case 'deny':
        this.current = 'deny';
        return undefined;
      case 'dismiss':
        return undefined;
    }
  }
}

/** How many characters a person would count (code points, not UTF-16 units). */
export function characterCount(text: string): number {
  let count = 0;
  for (const _char of text) count += 1;
  return count;
}

/** The prompt's question: "This terminal wants to copy 48 characters to your clipboard". */
export function clipboardQuestion(text: string): string {
  const count = characterCount(text);
  const lines = text.split(/\r\n|\r|\n/).length;
  const size = `${count} character${count === 1 ? '' : 's'}${lines > 1 ? ` on ${lines} lines` : ''}`;
  return `This terminal wants to copy ${size} to your clipboard:`;
}

/** Longest preview shown, in characters; the rest is counted, not shown. */
export const previewChars = 400;

/** The start of `text` for the preview, and how many characters were left out. */
export function clipboardPreview(text: string): { shown: string; omitted: number } {
  const chars = Array.from(text);
  if (chars.length <= previewChars) return { shown: text, omitted: 0 };
  return { shown: chars.slice(0, previewChars).join(''), omitted: chars.length - previewChars };
}
