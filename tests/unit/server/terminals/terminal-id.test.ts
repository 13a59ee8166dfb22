import { describe, expect, it } from 'vitest';
import { terminalId } from '../../../../server/terminals/terminal-id.js';

describe('terminalId', () => {
  it('generates 128-bit base64url ids that validate', () => {
    const id = terminalId.generate();
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Buffer.from(id, 'base64url')).toHaveLength(16);
    expect(terminalId.isValid(id)).toBe(true);
  });

  it('does not repeat', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => terminalId.generate()));
    expect(ids.size).toBe(10_000);
  });

  it.each([
    '/../../../foo',
    '%2e%2e%2f',
    '..',
    '',
    'a'.repeat(4096),
    'A'.repeat(21),
    'A'.repeat(23),
    'AAAAAAAAAAAAAAAAAAAA+/',
    'AAAAAAAAAAAAAAAAAAAAA=',
  ])('rejects malformed id %j', (value) => {
    expect(terminalId.isValid(value)).toBe(false);
  });

  it('rejects non-strings', () => {
    expect(terminalId.isValid(undefined)).toBe(false);
    expect(terminalId.isValid(1234)).toBe(false);
  });
});
