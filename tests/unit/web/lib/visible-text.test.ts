/**
 * H01 / issue 26 item 5: hidden characters in names and copied text become visible markers
 * (web/src/lib/visible-text.ts); the page renders them in tests/e2e/file-names.test.ts and
 * tests/e2e/clipboard-osc52.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  codePointLabel,
  hasHiddenCharacters,
  visibleSegments,
  visibleText,
} from '../../../../web/src/lib/visible-text.js';

describe('visibleText', () => {
  it.each([
    ['invoice-\u202egpj.exe', 'invoice-⟨U+202E⟩gpj.exe', 'right-to-left override'],
    ['a\u2066b\u2069c', 'a⟨U+2066⟩b⟨U+2069⟩c', 'isolates'],
    ['\u200eleft\u200f', '⟨U+200E⟩left⟨U+200F⟩', 'direction marks'],
    ['ad\u200bmin', 'ad⟨U+200B⟩min', 'zero-width space'],
    ['\ufeffbom', '⟨U+FEFF⟩bom', 'byte order mark'],
    ['osc\u001b]0;pwn\u0007.txt', 'osc⟨U+001B⟩]0;pwn⟨U+0007⟩.txt', 'ESC and BEL'],
    ['two\nlines', 'two⟨U+000A⟩lines', 'a newline in a name'],
    ['del\u007f', 'del⟨U+007F⟩', 'DEL'],
    ['c1\u009b', 'c1⟨U+009B⟩', 'C1 CSI'],
    ['line\u2028sep', 'line⟨U+2028⟩sep', 'line separator'],
  ])('marks %j as %j (%s)', (input, shown) => {
    expect(visibleText(input)).toBe(shown);
    expect(hasHiddenCharacters(input)).toBe(true);
  });

  it.each([
    'plain.txt',
    'é'.repeat(5),
    'שלום.txt',
    '日本語',
    '<img src=x>',
    '%2e%2e%2fx',
    '..\\..\\x',
    '😀.png',
  ])('leaves %j as it is', (input) => {
    expect(visibleText(input)).toBe(input);
    expect(hasHiddenCharacters(input)).toBe(false);
  });

  it('in block mode keeps line breaks and tabs working, and still shows them', () => {
    expect(visibleText('echo hi\ncurl x | sh\r\n\tend', 'block')).toBe('echo hi⏎\ncurl x | sh⟨CR⟩⏎\n⇥\tend');
    expect(visibleText('a\u202eb', 'block')).toBe('a⟨U+202E⟩b');
  });

  it('labels astral code points with all their digits', () => {
    expect(codePointLabel('\u{E0001}')).toBe('U+E0001');
    expect(visibleText('tag\u{E0041}')).toBe('tag⟨U+E0041⟩');
  });
});

describe('visibleSegments', () => {
  it('cuts text into plain runs and markers that join to visibleText', () => {
    const text = 'invoice-\u202egpj\u200b.exe';
    expect(visibleSegments(text)).toEqual([
      { text: 'invoice-', marker: false },
      { text: '⟨U+202E⟩', marker: true },
      { text: 'gpj', marker: false },
      { text: '⟨U+200B⟩', marker: true },
      { text: '.exe', marker: false },
    ]);
    expect(
      visibleSegments(text)
        .map((s) => s.text)
        .join(''),
    ).toBe(visibleText(text));
    expect(visibleSegments('')).toEqual([]);
  });
});
