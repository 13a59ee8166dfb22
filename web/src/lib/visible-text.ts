/**
 * Characters that change how text reads without being seen: bidi overrides and isolates (a file
 * named `invoice-<U+202E>gpj.exe` reads as `invoice-exe.jpg`), zero-width and other format
 * characters, control characters, line and paragraph separators. Wherever a name or copied text
 * is shown, each of them becomes a visible marker such as `⟨U+202E⟩`, so what a person reads is
 * what the bytes say. Pure: no DOM, so it is unit-tested on its own; the page puts the markers in
 * their own element (`.invisible-char`) and everything else as text.
 */

/** Control (Cc), format (Cf: bidi controls, zero-width characters), line and paragraph separators. */
const hidden = /[\p{Cc}\p{Cf}\u2028\u2029]/u;
const hiddenAll = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

export interface TextSegment {
  readonly text: string;
  /** A marker standing for a character that would otherwise not be seen. */
  readonly marker: boolean;
}

export type VisibleMode =
  /** Names: every hidden character becomes a marker, line breaks included. */
  | 'line'
  /** Copied text: a line break shows as `⏎` and still breaks the line; a tab as `⇥` and a tab. */
  | 'block';

export function codePointLabel(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

function markerFor(char: string, mode: VisibleMode): string {
  if (mode === 'block') {
    if (char === '\n') return '⏎\n';
    if (char === '\t') return '⇥\t';
    if (char === '\r') return '⟨CR⟩';
  }
  return `⟨${codePointLabel(char)}⟩`;
}

/** `text` cut into plain runs and markers, in order; joined they are `visibleText(text)`. */
export function visibleSegments(text: string, mode: VisibleMode = 'line'): TextSegment[] {
  const segments: TextSegment[] = [];
  let run = '';
  for (const char of text) {
    if (!hidden.test(char)) {
      run += char;
      continue;
    }
    if (run) segments.push({ text: run, marker: false });
    run = '';
    segments.push({ text: markerFor(char, mode), marker: true });
  }
  if (run) segments.push({ text: run, marker: false });
  return segments;
}

/** `text` with every hidden character shown as its marker. */
export function visibleText(text: string, mode: VisibleMode = 'line'): string {
  return text.replace(hiddenAll, (char) => markerFor(char, mode));
}

/** True when `text` has a character that `visibleText` would mark. */
export function hasHiddenCharacters(text: string): boolean {
  return hidden.test(text);
}
