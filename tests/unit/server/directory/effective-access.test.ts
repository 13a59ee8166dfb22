import { describe, expect, it } from 'vitest';
import {
  defaultRoleArnTemplate,
  renderRoleArn,
  resolveEffectiveAccess,
  type EffectiveAccessEntry,
  type EffectiveAccessInput,
} from '../../../../server/directory/effective-access.js';

const prod = { accountId: '111111111111', name: 'Production' };
const dev = { accountId: '222222222222', name: 'development' };
const sandbox = { accountId: '333333333333', name: 'Sandbox' };

const admin = {
  id: 'ps-admin',
  name: 'AdministratorAccess',
  description: 'Full access',
  sessionDurationS: 3600,
  roleArnTemplate: defaultRoleArnTemplate,
  sessionPolicy: null,
  roleOverrides: {},
};
const readOnly = {
  id: 'ps-ro',
  name: 'ReadOnlyAccess',
  description: 'Read only',
  sessionDurationS: 7200,
  roleArnTemplate: 'arn:aws:iam::{accountId}:role/path/{name}-role',
  sessionPolicy: '{"Version":"2012-10-17","Statement":[]}',
  roleOverrides: { [prod.accountId]: 'arn:aws:iam::111111111111:role/LegacyReadOnly' },
};
const billing = {
  id: 'ps-billing',
  name: 'billing',
  description: '',
  sessionDurationS: 43200,
  roleArnTemplate: defaultRoleArnTemplate,
  sessionPolicy: null,
  roleOverrides: {},
};

const user = { id: 'u1', disabled: false };

const entry = (
  account: { accountId: string; name: string },
  set: typeof admin | typeof readOnly | typeof billing,
  roleArn: string,
): EffectiveAccessEntry => ({
  accountId: account.accountId,
  accountName: account.name,
  permissionSetId: set.id,
  permissionSet: set.name,
  permissionSetDescription: set.description,
  sessionDurationS: set.sessionDurationS,
  roleArn,
  sessionPolicy: set.sessionPolicy,
});

const toUser = (accountId: string, permissionSetId: string, principalId = 'u1') =>
  ({ principalType: 'user', principalId, accountId, permissionSetId }) as const;
const toGroup = (principalId: string, accountId: string, permissionSetId: string) =>
  ({ principalType: 'group', principalId, accountId, permissionSetId }) as const;

const base: EffectiveAccessInput = {
  user,
  groupIds: [],
  assignments: [],
  accounts: [prod, dev, sandbox],
  permissionSets: [admin, readOnly, billing],
};

const cases: [string, Partial<EffectiveAccessInput>, EffectiveAccessEntry[]][] = [
  ['empty directory', { accounts: [], permissionSets: [] }, []],
  ['no assignments', {}, []],
  [
    'direct user assignment',
    { assignments: [toUser(dev.accountId, admin.id)] },
    [entry(dev, admin, 'arn:aws:iam::222222222222:role/Cove-AdministratorAccess')],
  ],
  [
    "another user's direct assignment does not apply",
    { assignments: [toUser(dev.accountId, admin.id, 'u2')] },
    [],
  ],
  [
    'a group id equal to the user id does not make a user assignment apply, and vice versa',
    {
      groupIds: ['u2'],
      assignments: [toGroup('u1', dev.accountId, admin.id), toUser(dev.accountId, admin.id, 'u2')],
    },
    [],
  ],
  [
    'assignment via a group',
    { groupIds: ['g1'], assignments: [toGroup('g1', sandbox.accountId, billing.id)] },
    [entry(sandbox, billing, 'arn:aws:iam::333333333333:role/Cove-billing')],
  ],
  [
    'a group the user is not in does not apply',
    { groupIds: ['g1'], assignments: [toGroup('g2', dev.accountId, admin.id)] },
    [],
  ],
  [
    'the same account and set via two groups is one entry',
    {
      groupIds: ['g1', 'g2'],
      assignments: [toGroup('g1', dev.accountId, admin.id), toGroup('g2', dev.accountId, admin.id)],
    },
    [entry(dev, admin, 'arn:aws:iam::222222222222:role/Cove-AdministratorAccess')],
  ],
  [
    'direct and via a group is one entry',
    {
      groupIds: ['g1'],
      assignments: [toUser(dev.accountId, admin.id), toGroup('g1', dev.accountId, admin.id)],
    },
    [entry(dev, admin, 'arn:aws:iam::222222222222:role/Cove-AdministratorAccess')],
  ],
  [
    'duplicate assignment records are one entry',
    { assignments: [toUser(dev.accountId, admin.id), toUser(dev.accountId, admin.id)] },
    [entry(dev, admin, 'arn:aws:iam::222222222222:role/Cove-AdministratorAccess')],
  ],
  [
    'a disabled user gets nothing',
    {
      user: { id: 'u1', disabled: true },
      groupIds: ['g1'],
      assignments: [toUser(dev.accountId, admin.id), toGroup('g1', prod.accountId, admin.id)],
    },
    [],
  ],
  [
    'an assignment to a removed account is ignored',
    { accounts: [dev], assignments: [toUser(prod.accountId, admin.id), toUser(dev.accountId, admin.id)] },
    [entry(dev, admin, 'arn:aws:iam::222222222222:role/Cove-AdministratorAccess')],
  ],
  [
    'an assignment to a removed permission set is ignored',
    {
      permissionSets: [admin],
      assignments: [toUser(dev.accountId, readOnly.id), toUser(dev.accountId, admin.id)],
    },
    [entry(dev, admin, 'arn:aws:iam::222222222222:role/Cove-AdministratorAccess')],
  ],
  [
    'the per-account override wins over the template, only for that account',
    { assignments: [toUser(prod.accountId, readOnly.id), toUser(dev.accountId, readOnly.id)] },
    [
      entry(dev, readOnly, 'arn:aws:iam::222222222222:role/path/ReadOnlyAccess-role'),
      entry(prod, readOnly, 'arn:aws:iam::111111111111:role/LegacyReadOnly'),
    ],
  ],
  [
    'sorted by account name (case-insensitive), then permission set name',
    {
      groupIds: ['g1'],
      assignments: [
        toUser(sandbox.accountId, readOnly.id),
        toGroup('g1', prod.accountId, billing.id),
        toUser(prod.accountId, admin.id),
        toUser(dev.accountId, billing.id),
        toGroup('g1', sandbox.accountId, admin.id),
      ],
    },
    [
      entry(dev, billing, 'arn:aws:iam::222222222222:role/Cove-billing'),
      entry(prod, admin, 'arn:aws:iam::111111111111:role/Cove-AdministratorAccess'),
      entry(prod, billing, 'arn:aws:iam::111111111111:role/Cove-billing'),
      entry(sandbox, admin, 'arn:aws:iam::333333333333:role/Cove-AdministratorAccess'),
      entry(sandbox, readOnly, 'arn:aws:iam::333333333333:role/path/ReadOnlyAccess-role'),
    ],
  ],
  [
    'two accounts with the same name are ordered by account id',
    {
      accounts: [
        { accountId: '999999999999', name: 'Shared' },
        { accountId: '444444444444', name: 'Shared' },
      ],
      assignments: [toUser('999999999999', admin.id), toUser('444444444444', admin.id)],
    },
    [
      {
        ...entry(
          { accountId: '444444444444', name: 'Shared' },
          admin,
          'arn:aws:iam::444444444444:role/Cove-AdministratorAccess',
        ),
      },
      {
        ...entry(
          { accountId: '999999999999', name: 'Shared' },
          admin,
          'arn:aws:iam::999999999999:role/Cove-AdministratorAccess',
        ),
      },
    ],
  ],
];

describe('resolveEffectiveAccess', () => {
  it.each(cases)('%s', (_name, overrides, expected) => {
    expect(resolveEffectiveAccess({ ...base, ...overrides })).toEqual(expected);
  });

  it('does not depend on the order of its inputs', () => {
    const input: EffectiveAccessInput = {
      ...base,
      groupIds: ['g1', 'g2'],
      assignments: [
        toUser(sandbox.accountId, readOnly.id),
        toGroup('g2', prod.accountId, billing.id),
        toGroup('g1', prod.accountId, admin.id),
        toUser(dev.accountId, billing.id),
      ],
    };
    const reversed: EffectiveAccessInput = {
      user,
      groupIds: [...input.groupIds].reverse(),
      assignments: [...input.assignments].reverse(),
      accounts: [...input.accounts].reverse(),
      permissionSets: [...input.permissionSets].reverse(),
    };
    expect(resolveEffectiveAccess(reversed)).toEqual(resolveEffectiveAccess(input));
    expect(resolveEffectiveAccess(input)).toHaveLength(4);
  });
});

describe('renderRoleArn', () => {
  it.each([
    [defaultRoleArnTemplate, 'arn:aws:iam::123456789012:role/Cove-PowerUserAccess'],
    [
      'arn:aws:iam::{accountId}:role/{name}/{name}',
      'arn:aws:iam::123456789012:role/PowerUserAccess/PowerUserAccess',
    ],
    ['arn:aws:iam::{accountId}:role/Fixed', 'arn:aws:iam::123456789012:role/Fixed'],
  ])('%s', (template, expected) => {
    expect(renderRoleArn(template, '123456789012', 'PowerUserAccess')).toBe(expected);
  });
});
