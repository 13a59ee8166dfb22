import { describe, expect, it } from 'vitest';
import {
  roleArnAccount,
  validateAccountId,
  validateAccountName,
  validateDescription,
  validateEmail,
  validateGroupName,
  validatePermissionSetName,
  validateRoleArnTemplate,
  validateRoleOverrides,
  validateSessionDuration,
  validateSessionPolicy,
  validateUsername,
} from '../../../../server/directory/directory-validation.js';

/** The field a validation error names, or 'ok'. */
function fieldOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (error) {
    const e = error as { statusCode?: number; details?: { field?: string } };
    expect(e.statusCode).toBe(400);
    return e.details?.field ?? '(none)';
  }
}

describe('names', () => {
  it.each([
    ['Alice', 'alice'],
    ['  ALICE ', 'alice'],
    ['ａｌｉｃｅ', 'alice'],
    ['first.last@example.com', 'first.last@example.com'],
    ['josé', 'josé'],
    ['a_b-c+d', 'a_b-c+d'],
  ])('username %j is stored as %j', (input, stored) => {
    expect(validateUsername(input)).toBe(stored);
  });

  it.each(['', '   ', 'two words', '-dash', '=1+1', '@at', 'x'.repeat(65), 'tab\there', 'semi;colon'])(
    'refuses username %j',
    (input) => {
      expect(fieldOf(() => validateUsername(input))).toBe('username');
    },
  );

  it('keeps the case of group and account names but collapses spacing', () => {
    expect(validateGroupName('  Class   of  2026 ')).toBe('Class of 2026');
    expect(validateGroupName('Ops, EU')).toBe('Ops, EU');
    expect(validateGroupName('line\nbreak')).toBe('line break');
    expect(validateAccountName(' Prod  (EU) ')).toBe('Prod (EU)');
  });

  it.each(['', ';x', 'a;b', '-x', 'bell\u0007', 'x'.repeat(129)])('refuses group name %j', (input) => {
    expect(fieldOf(() => validateGroupName(input))).toBe('name');
  });

  it.each(['AdministratorAccess', 'a', 'x+=,.@-y', 'x'.repeat(32)])(
    'accepts permission set name %j',
    (name) => {
      expect(validatePermissionSetName(name)).toBe(name);
    },
  );

  it.each(['', 'has space', 'x'.repeat(33), 'under_score', 'slash/x', 'ünï'])(
    'refuses permission set name %j',
    (name) => {
      expect(fieldOf(() => validatePermissionSetName(name))).toBe('name');
    },
  );
});

describe('descriptions', () => {
  it('keeps tabs and line breaks, trims, and refuses other control characters or too much text', () => {
    expect(validateDescription('  line one\nline\ttwo  ', 100)).toBe('line one\nline\ttwo');
    expect(fieldOf(() => validateDescription('bell\u0007', 100))).toBe('description');
    expect(fieldOf(() => validateDescription('x'.repeat(101), 100))).toBe('description');
  });
});

describe('account ids, emails, durations', () => {
  it.each([
    ['123456789012', 'ok'],
    [' 123456789012 ', 'ok'],
    ['12345678901', 'accountId'],
    ['1234567890123', 'accountId'],
    ['12345678901x', 'accountId'],
    ['１２３４５６７８９０１２', 'accountId'],
  ])('account id %j → %s', (input, result) => {
    expect(fieldOf(() => validateAccountId(input))).toBe(result);
  });

  it.each([
    ['a@example.com', 'a@example.com'],
    [' a@example.com ', 'a@example.com'],
    ['', null],
    [null, null],
    [undefined, null],
  ])('email %j → %j', (input, output) => {
    expect(validateEmail(input)).toBe(output);
  });

  it.each(['plain', 'a@b', 'a b@example.com', '<a@example.com>', 'a@example.com, b@example.com'])(
    'refuses email %j',
    (input) => {
      expect(fieldOf(() => validateEmail(input))).toBe('email');
    },
  );

  it.each([
    [3600, 'ok'],
    [43200, 'ok'],
    [3599, 'sessionDurationS'],
    [43201, 'sessionDurationS'],
    [7200.5, 'sessionDurationS'],
    [Number.NaN, 'sessionDurationS'],
  ])('session duration %s → %s', (input, result) => {
    expect(fieldOf(() => validateSessionDuration(input))).toBe(result);
  });
});

describe('role ARNs', () => {
  it.each([
    ['arn:aws:iam::123456789012:role/Admin', '123456789012'],
    ['arn:aws:iam::123456789012:role/path/to/Admin', '123456789012'],
    ['arn:aws-cn:iam::123456789012:role/Admin', '123456789012'],
    ['arn:aws-us-gov:iam::123456789012:role/Admin', '123456789012'],
    ['arn:aws:iam::123456789012:user/Admin', undefined],
    ['arn:aws:iam::12345678901:role/Admin', undefined],
    ['arn:aws:sts::123456789012:assumed-role/Admin/x', undefined],
    [`arn:aws:iam::123456789012:role/${'x'.repeat(65)}`, undefined],
    ['arn:aws:iam::123456789012:role/', undefined],
  ])('%s → %s', (arn, account) => {
    expect(roleArnAccount(arn)).toBe(account);
  });

  it.each([
    ['arn:aws:iam::{accountId}:role/Cove-{name}', 'ok'],
    ['arn:aws:iam::{accountId}:role/teams/{name}', 'ok'],
    ['arn:aws:iam::{accountId}:role/Fixed', 'ok'],
    ['arn:aws:iam::123456789012:role/{name}', 'roleArnTemplate'],
    ['arn:aws:iam::{accountId}:role/{name}{unknown}', 'roleArnTemplate'],
    ['Cove-{name}', 'roleArnTemplate'],
    ['', 'roleArnTemplate'],
  ])('template %j → %s', (template, result) => {
    expect(fieldOf(() => validateRoleArnTemplate(template, 'ReadOnlyAccess'))).toBe(result);
  });

  it('checks overrides per account and names the bad key', () => {
    expect(validateRoleOverrides({ '123456789012': ' arn:aws:iam::123456789012:role/X ' })).toEqual({
      '123456789012': 'arn:aws:iam::123456789012:role/X',
    });
    expect(fieldOf(() => validateRoleOverrides({ '123456789012': 'arn:aws:iam::210987654321:role/X' }))).toBe(
      'roleOverrides.123456789012',
    );
    expect(fieldOf(() => validateRoleOverrides({ abc: 'arn:aws:iam::123456789012:role/X' }))).toBe(
      'roleOverrides.abc',
    );
  });
});

describe('session policies', () => {
  const policy = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
  };

  it('packs an object or pretty JSON text to compact JSON', () => {
    expect(validateSessionPolicy(policy)).toBe(JSON.stringify(policy));
    expect(validateSessionPolicy(JSON.stringify(policy, null, 4))).toBe(JSON.stringify(policy));
    expect(
      validateSessionPolicy({
        Version: '2012-10-17',
        Statement: { Effect: 'Deny', Action: '*', Resource: '*' },
      }),
    ).toContain('"Statement":{');
  });

  it.each([null, undefined, ''])('treats %j as no policy', (input) => {
    expect(validateSessionPolicy(input)).toBeNull();
  });

  it.each([
    ['{bad', 'sessionPolicy'],
    ['"just a string"', 'sessionPolicy'],
    [[policy], 'sessionPolicy'],
    [42, 'sessionPolicy'],
    [{ Statement: [] }, 'sessionPolicy.Version'],
    [{ Version: 2012, Statement: [] }, 'sessionPolicy.Version'],
    [{ Version: '2012-10-17' }, 'sessionPolicy.Statement'],
    [{ Version: '2012-10-17', Statement: 'all' }, 'sessionPolicy.Statement'],
    [{ Version: '2012-10-17', Statement: null }, 'sessionPolicy.Statement'],
  ])('refuses %j naming %s', (input, field) => {
    expect(fieldOf(() => validateSessionPolicy(input))).toBe(field);
  });

  it('counts the packed length against the 2048 STS allows, not the pretty one', () => {
    const pad = (n: number) => ({ Version: '2012-10-17', Statement: [{ Sid: 'x'.repeat(n) }] });
    const overhead = JSON.stringify(pad(0)).length;
    expect(validateSessionPolicy(JSON.stringify(pad(2048 - overhead), null, 8))).toHaveLength(2048);
    expect(fieldOf(() => validateSessionPolicy(pad(2049 - overhead)))).toBe('sessionPolicy');
  });
});
