import { describe, expect, it } from 'vitest';
import { laptopConfig } from '../../../../server/sso/laptop-config.js';

describe('laptopConfig', () => {
  it('is one sso-session pointing the SDKs at Cove, and one profile per assignment', () => {
    expect(
      laptopConfig({
        publicUrl: 'https://cove.example.com',
        region: 'eu-west-1',
        profiles: [
          { accountId: '111122223333', accountName: 'Prod', permissionSet: 'ReadOnlyAccess' },
          { accountId: '444455556666', accountName: 'prod', permissionSet: 'ReadOnlyAccess' },
        ],
      }),
    ).toBe(
      [
        '[sso-session cove]',
        'sso_start_url = https://cove.example.com/start',
        'sso_region = eu-west-1',
        'sso_registration_scopes = sso:account:access',
        'services = cove-endpoints',
        '',
        '[services cove-endpoints]',
        'sso_oidc =',
        '  endpoint_url = https://cove.example.com/aws/oidc',
        'sso =',
        '  endpoint_url = https://cove.example.com/aws/portal',
        '',
        '[profile prod-readonlyaccess]',
        'sso_session = cove',
        'sso_account_id = 111122223333',
        'sso_role_name = ReadOnlyAccess',
        'region = eu-west-1',
        'services = cove-endpoints',
        '',
        // Two accounts with the same slug: the second name carries its account id.
        '[profile prod-readonlyaccess-444455556666]',
        'sso_session = cove',
        'sso_account_id = 444455556666',
        'sso_role_name = ReadOnlyAccess',
        'region = eu-west-1',
        'services = cove-endpoints',
        '',
      ].join('\n'),
    );
  });

  it('has only the session when the user has no assignment', () => {
    expect(laptopConfig({ publicUrl: 'http://127.0.0.1:8080', region: 'us-east-1', profiles: [] })).toContain(
      'endpoint_url = http://127.0.0.1:8080/aws/portal\n',
    );
  });
});
