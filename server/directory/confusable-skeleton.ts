/**
 * The confusable skeleton of Unicode TR39 (section 4): two strings that a reader cannot tell apart
 * (`admin` and `admın` with a dotless ı, `paypal` with a Cyrillic а) have the same skeleton.
 * skeleton(X) = NFD(map every code point of NFD(X) through confusables.txt). The mapping is
 * Unicode's own confusables.txt as the `unhomoglyph` package ships it (a plain JSON object of
 * source code point → prototype string); its own replace function skips the NFD steps, so only
 * its data is used here.
 */
import { createRequire } from 'node:module';

const table = createRequire(import.meta.url)('unhomoglyph/data.json') as Readonly<Record<string, string>>;
const prototypes = new Map<string, string>(Object.entries(table));

/** Characters that draw nothing: TR39 leaves them to the identifier profile; here they vanish. */
const invisible = /[\p{Default_Ignorable_Code_Point}]/gu;

export function confusableSkeleton(text: string): string {
  let mapped = '';
  for (const char of text.normalize('NFD').replace(invisible, '')) mapped += prototypes.get(char) ?? char;
  return mapped.normalize('NFD');
}

/**
 * The key two names of one kind must not share: the skeleton of the name as shown and of its
 * case-folded form (names are unique ignoring case, and `I` and `l` look alike only uppercase).
 */
export function lookAlikeKeys(name: string): string[] {
  const shown = name.normalize('NFKC').trim().replace(/\s+/g, ' ');
  const keys = new Set([confusableSkeleton(shown), confusableSkeleton(shown.toLowerCase())]);
  return [...keys];
}

/** True when `a` and `b` could be taken for one another (the same skeleton either way). */
export function looksAlike(a: string, b: string): boolean {
  const keys = new Set(lookAlikeKeys(a));
  return lookAlikeKeys(b).some((key) => keys.has(key));
}

/** The code points outside printable ASCII in `name`, as `U+0131`, to say where it differs. */
export function unusualCodePoints(name: string): string[] {
  const found: string[] = [];
  for (const char of name) {
    const point = char.codePointAt(0) ?? 0;
    if (point >= 0x20 && point < 0x7f) continue;
    const label = `U+${point.toString(16).toUpperCase().padStart(4, '0')}`;
    if (!found.includes(label)) found.push(label);
  }
  return found;
}

/** Names already taken, found by look-alike key; `find` gives the first taken name a new one resembles. */
export class LookalikeIndex {
  private readonly byKey = new Map<string, string>();

  constructor(names: Iterable<string> = []) {
    for (const name of names) this.add(name);
  }

  add(name: string): void {
    for (const key of lookAlikeKeys(name)) if (!this.byKey.has(key)) this.byKey.set(key, name);
  }

  find(name: string): string | undefined {
    for (const key of lookAlikeKeys(name)) {
      const taken = this.byKey.get(key);
      if (taken !== undefined) return taken;
    }
    return undefined;
  }
}
