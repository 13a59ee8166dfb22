import { describe, expect, it } from 'vitest';
import type { LifecycleRule } from '@aws-sdk/client-s3';
import {
  maxLifecycleDays,
  requiredLifecycleRule,
  stagingLifecycleProblem,
} from '../../../../server/files/staging-lifecycle-problem.js';

const prefix = 'cove-staging/';
const day = 86_400;

const good = (extra: Partial<LifecycleRule> = {}): LifecycleRule => ({
  ID: 'staging',
  Filter: { Prefix: prefix },
  Status: 'Enabled',
  Expiration: { Days: 1 },
  AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
  ...extra,
});

const noRule = `no lifecycle rule covers the staging prefix "${prefix}"`;
const noExpiry = (days: number, found = '') =>
  `no enabled lifecycle rule covering "${prefix}" expires objects within ${days} day${days === 1 ? '' : 's'}${found}`;
const noAbort = (days: number, found = '') =>
  `no enabled lifecycle rule covering "${prefix}" aborts incomplete multipart uploads within ${days} day${days === 1 ? '' : 's'}${found}`;

describe('maxLifecycleDays', () => {
  it.each([
    [600, 1],
    [day, 1],
    [day + 1, 2],
    [3 * day, 3],
  ])('%i s → %i days', (retentionS, days) => {
    expect(maxLifecycleDays(retentionS)).toBe(days);
  });
});

describe('stagingLifecycleProblem', () => {
  it('accepts the rule Cove recommends', () => {
    expect(stagingLifecycleProblem([requiredLifecycleRule(prefix, day)], prefix, day)).toBeUndefined();
  });

  it.each<[string, LifecycleRule[], number, string | undefined]>([
    ['no rules', [], day, noRule],
    ['prefix filter equal to the staging prefix', [good()], day, undefined],
    ['empty prefix covers everything', [good({ Filter: { Prefix: '' } })], day, undefined],
    ['empty filter covers everything', [good({ Filter: {} })], day, undefined],
    ['a shorter prefix covers it', [good({ Filter: { Prefix: 'cove-' } })], day, undefined],
    ['Filter.And.Prefix counts', [good({ Filter: { And: { Prefix: prefix } } })], day, undefined],
    ['the legacy rule-level Prefix counts', [good({ Filter: undefined, Prefix: prefix })], day, undefined],
    ['a wrong prefix', [good({ Filter: { Prefix: 'logs/' } })], day, noRule],
    ['a narrower prefix misses other users', [good({ Filter: { Prefix: `${prefix}u1/` } })], day, noRule],
    [
      'a tag filter misses untagged staging objects',
      [good({ Filter: { Tag: { Key: 'temp', Value: 'yes' } } })],
      day,
      noRule,
    ],
    [
      'And with tags misses untagged staging objects',
      [good({ Filter: { And: { Prefix: prefix, Tags: [{ Key: 'temp', Value: 'yes' }] } } })],
      day,
      noRule,
    ],
    [
      'a size condition misses some staging objects',
      [good({ Filter: { And: { Prefix: prefix, ObjectSizeGreaterThan: 0 } } })],
      day,
      noRule,
    ],
    [
      'a disabled rule',
      [good({ Status: 'Disabled' })],
      day,
      `the lifecycle rule "staging" covering "${prefix}" is disabled`,
    ],
    [
      'expiry too long',
      [good({ Expiration: { Days: 30 } })],
      day,
      noExpiry(1, ' (found: "staging" after 30 days)'),
    ],
    ['expiry within a longer retention', [good({ Expiration: { Days: 3 } })], 3 * day, undefined],
    ['expiry by date only', [good({ Expiration: { Date: new Date('2030-01-01') } })], day, noExpiry(1)],
    [
      'no abort of incomplete uploads',
      [good({ AbortIncompleteMultipartUpload: undefined })],
      day,
      noAbort(1),
    ],
    [
      'abort too late',
      [good({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } })],
      day,
      noAbort(1, ' (found: "staging" after 7 days)'),
    ],
    [
      'neither expiry nor abort',
      [good({ Expiration: undefined, AbortIncompleteMultipartUpload: undefined })],
      day,
      `${noExpiry(1)}; ${noAbort(1)}`,
    ],
    [
      'expiry and abort in two rules',
      [
        good({ ID: 'expire', AbortIncompleteMultipartUpload: undefined }),
        good({ ID: 'abort', Filter: { Prefix: '' }, Expiration: undefined }),
      ],
      day,
      undefined,
    ],
    [
      'the good rule disabled, another enabled rule elsewhere',
      [good({ Status: 'Disabled' }), good({ ID: 'logs', Filter: { Prefix: 'logs/' } })],
      day,
      `the lifecycle rule "staging" covering "${prefix}" is disabled`,
    ],
  ])('%s', (_name, rules, retentionS, problem) => {
    expect(stagingLifecycleProblem(rules, prefix, retentionS)).toBe(problem);
  });
});
