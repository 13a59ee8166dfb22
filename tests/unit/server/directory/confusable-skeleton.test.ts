import { describe, expect, it } from 'vitest';
import {
  confusableSkeleton,
  LookalikeIndex,
  looksAlike,
  unusualCodePoints,
} from '../../../../server/directory/confusable-skeleton.js';

describe('confusableSkeleton (Unicode TR39)', () => {
  it.each([
    ['admin', 'adm\u0131n', 'dotless ı'],
    ['paypal', 'p\u0430ypal', 'Cyrillic а'],
    ['rn', 'm', 'r + n drawn like m (in confusables.txt)'],
    ['scope', '\u0455\u0441\u043e\u0440\u0435', 'all Cyrillic'],
    ['Apple', '\u0391pple', 'Greek Alpha'],
    ['admin', 'a\u0064\u200bmin', 'a zero-width space inside'],
    ['cafe\u0301', 'caf\u00e9', 'composed and decomposed é (the NFD steps)'],
    ['l', 'I', 'capital I and small l'],
    ['O', '0', 'digit zero and capital O'],
  ])('gives %j and %j one skeleton (%s)', (a, b) => {
    expect(confusableSkeleton(a)).toBe(confusableSkeleton(b));
  });

  it.each([
    ['admin', 'admins'],
    ['alice', 'bob'],
    ['user01', 'user02'],
    ['group a', 'group b'],
  ])('keeps %j and %j apart', (a, b) => {
    expect(confusableSkeleton(a)).not.toBe(confusableSkeleton(b));
    expect(looksAlike(a, b)).toBe(false);
  });

  it('maps through the real table, not the identity: the skeleton of m is rn', () => {
    expect(confusableSkeleton('m')).toBe('rn');
    expect(confusableSkeleton('adm\u0131n')).toBe('adrnin');
  });
});

describe('looksAlike', () => {
  it('compares names as shown and case-folded', () => {
    expect(looksAlike('Iogin', 'login')).toBe(true);
    expect(looksAlike('ADMIN', 'adm\u0131n')).toBe(true);
    expect(looksAlike('Students', '\u0405tudents')).toBe(true);
    expect(looksAlike('Prod  account', 'Pr\u043ed account')).toBe(true);
  });
});

describe('LookalikeIndex', () => {
  it('finds the taken name a new one resembles, and nothing for a different one', () => {
    const index = new LookalikeIndex(['admin', 'alice']);
    expect(index.find('adm\u0131n')).toBe('admin');
    expect(index.find('\u0430lice')).toBe('alice');
    expect(index.find('bob')).toBeUndefined();
    index.add('bob');
    expect(index.find('b\u043eb')).toBe('bob');
  });
});

describe('unusualCodePoints', () => {
  it('lists each character outside printable ASCII once', () => {
    expect(unusualCodePoints('adm\u0131n\u0131')).toEqual(['U+0131']);
    expect(unusualCodePoints('p\u0430yp\u0430l\u202e')).toEqual(['U+0430', 'U+202E']);
    expect(unusualCodePoints('plain-name')).toEqual([]);
  });
});
