import { describe, expect, it } from 'vitest';
import {
  BEGIN_MARKER,
  END_MARKER,
  profileName,
  rewriteAwsConfig,
  type ManagedProfile,
} from '../../../../server/credentials/aws-config-block.js';

const prod: ManagedProfile = {
  accountId: '111122223333',
  accountName: 'Prod',
  permissionSet: 'AdministratorAccess',
  region: 'eu-west-1',
};
const sandbox: ManagedProfile = {
  accountId: '444455556666',
  accountName: 'Team Sandbox (EU)',
  permissionSet: 'ReadOnly.Access',
  region: 'eu-west-1',
};

const header = [
  BEGIN_MARKER,
  '# Written by Cove at every new terminal: one profile per account and permission set you',
  '# have. Put your own settings outside these lines; a profile of yours with the same name wins.',
];
const prodLines = [
  '',
  '[profile prod-administratoraccess]',
  'region = eu-west-1',
  'credential_process = /usr/local/bin/cove-credential-process 111122223333 AdministratorAccess',
];
const sandboxLines = [
  '',
  '[profile team-sandbox-eu-readonly-access]',
  'region = eu-west-1',
  'credential_process = /usr/local/bin/cove-credential-process 444455556666 ReadOnly.Access',
];
const block = (...profiles: string[][]): string => [...header, ...profiles.flat(), END_MARKER, ''].join('\n');

describe('profileName', () => {
  it.each([
    ['Prod', 'AdministratorAccess', 'prod-administratoraccess'],
    ['Team Sandbox (EU)', 'ReadOnly.Access', 'team-sandbox-eu-readonly-access'],
    ['--Ünïcode--', 'a+b=c,d@e', 'n-code-a-b-c-d-e'],
    ['', 'Dev', 'dev'],
  ])('%s × %s → %s', (account, set, expected) => {
    expect(profileName(account, set)).toBe(expected);
  });
});

describe('rewriteAwsConfig', () => {
  const userBefore = '[default]\nregion = us-west-2\noutput = json\n';
  const userAfter = '\n[profile mine]\nregion = ap-south-1\n';

  it.each<[string, string, readonly ManagedProfile[], string]>([
    ['an empty file gets just the block', '', [prod], block(prodLines)],
    ['no assignments and no block leaves the file alone', userBefore, [], userBefore],
    ['no assignments and no file writes nothing', '', [], ''],
    ['user content before is kept and the block appended', userBefore, [prod], userBefore + block(prodLines)],
    [
      'a file without a final newline gets one, then the block',
      '[default]\nregion = us-west-2',
      [prod],
      '[default]\nregion = us-west-2\n' + block(prodLines),
    ],
    [
      'an existing block is replaced in place, content before and after kept byte for byte',
      userBefore + block(prodLines) + userAfter,
      [prod, sandbox],
      userBefore + block(prodLines, sandboxLines) + userAfter,
    ],
    [
      'losing every assignment leaves an empty block',
      userBefore + block(prodLines) + userAfter,
      [],
      userBefore + block() + userAfter,
    ],
    [
      "a user's own profile of the same name wins and the block says so",
      '[profile prod-administratoraccess]\nregion = us-east-2\n',
      [prod, sandbox],
      '[profile prod-administratoraccess]\nregion = us-east-2\n' +
        [
          ...header,
          '# [profile prod-administratoraccess] skipped: your own profile of that name is used instead.',
          ...sandboxLines,
          END_MARKER,
          '',
        ].join('\n'),
    ],
    [
      'a user profile written after the block also wins',
      block(prodLines) + '[prod-administratoraccess]\nregion = x\n',
      [prod],
      [
        ...header,
        '# [profile prod-administratoraccess] skipped: your own profile of that name is used instead.',
        END_MARKER,
        '',
      ].join('\n') + '[prod-administratoraccess]\nregion = x\n',
    ],
    [
      'CRLF files get a CRLF block and keep their own bytes',
      '[default]\r\nregion = us-west-2\r\n',
      [prod],
      '[default]\r\nregion = us-west-2\r\n' + block(prodLines).replaceAll('\n', '\r\n'),
    ],
    [
      'a stray BEGIN without END is dropped (never swallowing lines after it) and a fresh block appended',
      `[default]\n${BEGIN_MARKER}\n[profile keep]\nregion = us-east-1\n`,
      [prod],
      '[default]\n[profile keep]\nregion = us-east-1\n' + block(prodLines),
    ],
    [
      'two accounts whose names slug alike are told apart by account id',
      '',
      [prod, { ...prod, accountId: '999988887777', accountName: 'PROD' }],
      block(prodLines, [
        '',
        '[profile prod-administratoraccess-999988887777]',
        'region = eu-west-1',
        'credential_process = /usr/local/bin/cove-credential-process 999988887777 AdministratorAccess',
      ]),
    ],
  ])('%s', (_name, existing, profiles, expected) => {
    expect(rewriteAwsConfig(existing, profiles)).toBe(expected);
  });

  it('is stable: rewriting its own output changes nothing', () => {
    const once = rewriteAwsConfig('[default]\r\nregion = x', [prod, sandbox]);
    expect(rewriteAwsConfig(once, [prod, sandbox])).toBe(once);
  });
});
