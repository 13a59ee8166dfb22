/**
 * Rules for directory input, each failing with a 400 that names the field and says what a valid
 * value looks like. AWS's own limits where AWS has one (permission set names, durations, role
 * ARNs, session policies), so what Cove accepts STS also accepts.
 */
import { errors } from '../errors.js';
import { accountIdPattern } from '../protocol/api.js';
import { renderRoleArn } from './effective-access.js';

const invalid = (field: string, message: string) => errors.badRequest(`${field}: ${message}`, { field });

/** NFKC, trimmed, inner whitespace collapsed; case kept for display (uniqueness ignores it). */
export function displayName(value: string): string {
  return value.normalize('NFKC').trim().replace(/\s+/g, ' ');
}

/** Letters or digits first, so a name can never start a spreadsheet formula. */
const usernamePattern = /^[\p{L}\p{N}][\p{L}\p{N}._@+-]*$/u;
/** `;` separates several groups in one CSV cell, so it cannot be part of a name. */
const groupNamePattern = /^[\p{L}\p{N}][^\p{Cc};]*$/u;
const accountNamePattern = /^[\p{L}\p{N}][\p{L}\p{N} ._@+&()/:-]*$/u;
const permissionSetNamePattern = /^[A-Za-z0-9+=,.@-]{1,32}$/;
/** IAM role ARN: partition, 12-digit account, optional path, role name of at most 64 characters. */
const roleArnPattern =
  /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role\/(?:[\x21-\x7e]*\/)?([\w+=,.@-]{1,64})$/;
const emailPattern = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/;

export const limits = {
  usernameChars: 64,
  groupNameChars: 128,
  groupDescriptionChars: 1024,
  accountNameChars: 50,
  permissionSetDescriptionChars: 700,
  roleArnChars: 2048,
  emailChars: 254,
  sessionPolicyChars: 2048,
  minSessionDurationS: 3600,
  maxSessionDurationS: 43200,
} as const;

/** Usernames are stored normalized: `Alice` and ` alice ` are the same user. */
export function validateUsername(value: string, field = 'username'): string {
  const name = displayName(value).toLowerCase();
  if (name.length === 0) throw invalid(field, 'enter a user name.');
  if (name.length > limits.usernameChars)
    throw invalid(field, `use at most ${limits.usernameChars} characters.`);
  if (!usernamePattern.test(name))
    throw invalid(
      field,
      'use letters, digits and . _ @ + - only, starting with a letter or digit (no spaces).',
    );
  return name;
}

/** Loose on purpose: one @, a dot in the domain, no spaces. Empty means none. */
export function validateEmail(value: string | null | undefined, field = 'email'): string | null {
  if (value === null || value === undefined) return null;
  const email = value.normalize('NFKC').trim();
  if (email === '') return null;
  if (email.length > limits.emailChars || !emailPattern.test(email))
    throw invalid(field, 'enter an email address like name@example.com, or leave it empty.');
  return email;
}

export function validateGroupName(value: string, field = 'name'): string {
  const name = displayName(value);
  if (name.length === 0) throw invalid(field, 'enter a group name.');
  if (name.length > limits.groupNameChars)
    throw invalid(field, `use at most ${limits.groupNameChars} characters.`);
  if (!groupNamePattern.test(name))
    throw invalid(field, 'start with a letter or digit, and do not use ; or control characters.');
  return name;
}

export function validateDescription(value: string, max: number, field = 'description'): string {
  const text = value.normalize('NFKC').trim();
  if (text.length > max) throw invalid(field, `use at most ${max} characters.`);
  // Tabs and line breaks are fine in a description (AWS allows them); other control characters are not.
  if (/(?![\t\n\r])\p{Cc}/u.test(text)) throw invalid(field, 'remove control characters.');
  return text;
}

export function validateAccountId(value: string, field = 'accountId'): string {
  const id = value.trim();
  if (!accountIdPattern.test(id))
    throw invalid(field, 'an AWS account id is exactly 12 digits, like 123456789012.');
  return id;
}

export function validateAccountName(value: string, field = 'name'): string {
  const name = displayName(value);
  if (name.length === 0) throw invalid(field, 'enter an account name.');
  if (name.length > limits.accountNameChars)
    throw invalid(field, `use at most ${limits.accountNameChars} characters.`);
  if (!accountNamePattern.test(name))
    throw invalid(
      field,
      'use letters, digits, spaces and . _ @ + - & ( ) / : only, starting with a letter or digit.',
    );
  return name;
}

export function validatePermissionSetName(value: string, field = 'name'): string {
  const name = value.trim();
  if (!permissionSetNamePattern.test(name))
    throw invalid(
      field,
      'use 1 to 32 characters: letters, digits and + = , . @ - (no spaces), as AWS requires.',
    );
  return name;
}

export function validateSessionDuration(value: number, field = 'sessionDurationS'): number {
  if (!Number.isInteger(value) || value < limits.minSessionDurationS || value > limits.maxSessionDurationS)
    throw invalid(field, 'use a whole number of seconds from 3600 (1 hour) to 43200 (12 hours).');
  return value;
}

/** The account id a role ARN points to, or undefined when it is not an IAM role ARN. */
export function roleArnAccount(arn: string): string | undefined {
  if (arn.length > limits.roleArnChars) return undefined;
  return roleArnPattern.exec(arn)?.[2];
}

/**
 * A template must give a role ARN in the assigned account for any account and this set's name,
 * e.g. `arn:aws:iam::{accountId}:role/Cove-{name}`.
 */
export function validateRoleArnTemplate(
  template: string,
  permissionSetName: string,
  field = 'roleArnTemplate',
): string {
  const value = template.trim();
  const probe = '123456789012';
  const rendered = renderRoleArn(value, probe, permissionSetName);
  const account = roleArnAccount(rendered);
  if (account === undefined)
    throw invalid(
      field,
      'must give an IAM role ARN once {accountId} and {name} are filled in, like arn:aws:iam::{accountId}:role/Cove-{name}.',
    );
  if (account !== probe || renderRoleArn(value, '000000000000', permissionSetName) === rendered)
    throw invalid(field, 'put {accountId} where the account id goes, so each account gets its own role.');
  return value;
}

export function validateRoleOverrides(
  overrides: Readonly<Record<string, string>>,
  field = 'roleOverrides',
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [accountId, arn] of Object.entries(overrides)) {
    if (!accountIdPattern.test(accountId))
      throw invalid(`${field}.${accountId}`, 'keys are 12-digit AWS account ids, like 123456789012.');
    const value = arn.trim();
    const account = roleArnAccount(value);
    if (account === undefined)
      throw invalid(
        `${field}.${accountId}`,
        'must be an IAM role ARN, like arn:aws:iam::123456789012:role/Admin.',
      );
    if (account !== accountId)
      throw invalid(`${field}.${accountId}`, `the role must be in account ${accountId}.`);
    result[accountId] = value;
  }
  return result;
}

/**
 * An inline session policy as AssumeRole takes it: a JSON object with `Version` and `Statement`,
 * at most 2048 characters once whitespace is removed (STS counts the packed text). Returns the
 * compact JSON text, or null for none.
 */
export function validateSessionPolicy(value: unknown, field = 'sessionPolicy'): string | null {
  if (value === null || value === undefined || value === '') return null;
  let policy: unknown = value;
  if (typeof value === 'string') {
    try {
      policy = JSON.parse(value) as unknown;
    } catch {
      throw invalid(
        field,
        'is not valid JSON. Paste an IAM policy document such as {"Version":"2012-10-17","Statement":[...]}.',
      );
    }
  }
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy))
    throw invalid(field, 'must be a JSON object with "Version" and "Statement".');
  const document = policy as Record<string, unknown>;
  if (typeof document.Version !== 'string') throw invalid(`${field}.Version`, 'add "Version": "2012-10-17".');
  if (document.Statement === null || typeof document.Statement !== 'object')
    throw invalid(`${field}.Statement`, 'add a "Statement" (a statement object or a list of them).');
  const packed = JSON.stringify(document);
  if (packed.length > limits.sessionPolicyChars)
    throw invalid(
      field,
      `is ${packed.length} characters without spaces; STS allows at most ${limits.sessionPolicyChars}.`,
    );
  return packed;
}
