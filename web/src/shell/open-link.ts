/**
 * The "Open in Cove" part of a shell URL (`/shell/<region>?…&git=https://…&cmd=…`): which repository
 * to clone and which command to type at the prompt once the user confirmed. Pure, so its limits are
 * unit-tested: a command is typed, never run, so it may hold no character that would run it or
 * change what the screen shows (line breaks, escape sequences, NUL, bidi overrides, zero-width
 * characters), and it is at most `maxCommandBytes` long.
 */
import { hasHiddenCharacters } from '../lib/visible-text.js';

export interface OpenLink {
  /** The repository as the link names it (the server checks it and names the folder). */
  readonly git?: string;
  readonly cmd?: string;
}

/** About a dozen lines of a terminal: a command, not a script. */
export const maxCommandBytes = 1024;

/** The link part of the query, or undefined for a plain shell URL (which opens at once as before). */
export function openLinkFromQuery(query: URLSearchParams): OpenLink | undefined {
  const git = query.get('git') ?? '';
  const cmd = query.get('cmd') ?? '';
  if (git === '' && cmd === '') return undefined;
  return { ...(git !== '' ? { git } : {}), ...(cmd !== '' ? { cmd } : {}) };
}

/** Why a link's command is refused, in words for the card; undefined when it may be typed. */
export function commandProblem(cmd: string): string | undefined {
  const bytes = new TextEncoder().encode(cmd).length;
  if (bytes > maxCommandBytes)
    return `The command is ${bytes} bytes long; a link may type at most ${maxCommandBytes}. Nothing was done.`;
  if (hasHiddenCharacters(cmd))
    return 'The command holds characters a link may not type: line breaks, escape or other control characters, or characters that change the direction or hide text (marked below). Nothing was done.';
  return undefined;
}

/** The start of a long command for the card, so 10 KB do not fill the page. */
export function commandPreview(cmd: string, maxChars = 300): string {
  const chars = [...cmd];
  return chars.length <= maxChars ? cmd : `${chars.slice(0, maxChars).join('')}…`;
}

/** A prompt is on the cursor's line: bash's `$`/`#` (or a `>`) at its end. */
export function atPrompt(cursorLine: string): boolean {
  return /[$#>]$/.test(cursorLine.trimEnd());
}
