import { describe, expect, it } from 'vitest';
import {
  accountIdPattern,
  formatHomeBytes,
  normalizeName,
  regionIdPattern,
} from '../../../../server/protocol/api.js';

describe('normalizeName', () => {
  it.each([
    ['Alice', 'alice'],
    ['  alice  ', 'alice'],
    ['ALICE', 'alice'],
    ['Ａｌｉｃｅ', 'alice'], // full-width letters fold under NFKC
    ['data   team', 'data team'],
    ['data\tteam', 'data team'],
  ])('%j → %j', (input, expected) => {
    expect(normalizeName(input)).toBe(expected);
  });
});

describe('id patterns', () => {
  it('accepts only 12-digit account ids', () => {
    expect(accountIdPattern.test('123456789012')).toBe(true);
    for (const bad of ['12345678901', '1234567890123', '12345678901a', ' 123456789012'])
      expect(accountIdPattern.test(bad)).toBe(false);
  });
  it('accepts region ids and refuses traversal', () => {
    for (const good of ['us-east-1', 'ap-northeast-2', 'us-gov-west-1'])
      expect(regionIdPattern.test(good)).toBe(true);
    for (const bad of ['xx', 'us-east-1/../x', '', 'US-EAST-1'])
      expect(regionIdPattern.test(bad)).toBe(false);
  });
});

describe('formatHomeBytes: binary units, labelled, as df -h counts', () => {
  const KiB = 1024;
  const MiB = 1024 ** 2;
  const GiB = 1024 ** 3;
  it.each([
    [0, '0 B'],
    [812, '812 B'],
    [1536, '1.5 KiB'],
    [212 * MiB, '212 MiB'],
    // A 1 GiB home, and what ext4 leaves usable of it (df's 974M).
    [GiB, '1 GiB'],
    [974 * MiB + 300 * KiB, '974 MiB'],
    [1.5 * GiB, '1.5 GiB'],
    [10 * GiB, '10 GiB'],
  ])('%d → %s', (bytes, expected) => {
    expect(formatHomeBytes(bytes)).toBe(expected);
  });
});
