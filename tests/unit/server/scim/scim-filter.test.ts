import { describe, expect, it } from 'vitest';
import { parseFilter } from '../../../../server/scim/scim-filter.js';
import { ScimError } from '../../../../server/scim/scim-error.js';

const users = ['userName', 'externalId', 'id'];

function refusal(text: string): ScimError {
  try {
    parseFilter(text, users);
  } catch (error) {
    if (error instanceof ScimError) return error;
    throw error;
  }
  throw new Error(`accepted: ${text}`);
}

describe('parseFilter', () => {
  it('reads one eq comparison, any case of attribute and operator, the value as a JSON string', () => {
    expect(parseFilter('userName eq "bjensen"', users)).toEqual({ attribute: 'userName', value: 'bjensen' });
    expect(parseFilter('  USERNAME EQ "a@b.c"  ', users)).toEqual({ attribute: 'userName', value: 'a@b.c' });
    expect(parseFilter('externalId eq "00ujl29u0le5T6Aj10h7"', users)).toEqual({
      attribute: 'externalId',
      value: '00ujl29u0le5T6Aj10h7',
    });
    expect(parseFilter('userName eq "say \\"hi\\" \\\\ \\u00e9"', users).value).toBe('say "hi" \\ é');
    expect(parseFilter('userName eq ""', users).value).toBe('');
  });

  it('refuses everything else as invalidFilter, naming what is supported', () => {
    for (const text of [
      '',
      'userName',
      'userName eq',
      'userName eq bjensen',
      "userName eq 'bjensen'",
      'userName ne "x"',
      'userName co "x"',
      'userName pr',
      'displayName eq "x"',
      'userName eq "x" or userName eq "y"',
      'userName eq "x"]',
      'userName eq "x',
      'userName eq "\\x41"',
      '(userName eq "x")',
      'not (userName eq "x")',
      'emails[type eq "work"] eq "x"',
      `userName eq "${'a'.repeat(1000)}"`,
    ]) {
      const error = refusal(text);
      expect(error.status, text).toBe(400);
      expect(error.scimType, text).toBe('invalidFilter');
    }
    expect(refusal('userName ne "x"').detail).toContain('userName eq "…", externalId eq "…", id eq "…"');
  });
});
