import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../../../server/config.js';
import {
  groupsFromClaim,
  identityFromClaims,
  maxClaimedGroups,
  mfaClaimed,
  type OidcProviderConfig,
} from '../../../../server/auth/oidc-claims.js';

const providerWith = (patch: Record<string, unknown> = {}): OidcProviderConfig => {
  const config = buildConfig({
    auth: { oidc: [{ id: 'p', name: 'P', issuer: 'https://idp.example.com', clientId: 'c', ...patch }] },
  });
  return config.auth.oidc[0] as OidcProviderConfig;
};

describe('identityFromClaims', () => {
  const provider = providerWith();

  it('takes subject, normalized user name, verified email and groups', () => {
    expect(
      identityFromClaims(
        {
          sub: 's1',
          preferred_username: ' Alice ',
          email: 'alice@example.com',
          email_verified: true,
          groups: ['devs', 'devs', 'ops'],
        },
        provider,
      ),
    ).toEqual({
      subject: 's1',
      username: 'alice',
      email: 'alice@example.com',
      groups: ['devs', 'ops'],
      mfa: false,
    });
  });

  it('takes no groups at all (null, not empty) when the provider is configured without a groups claim', () => {
    const noGroups = providerWith({ groupsClaim: '' });
    expect(identityFromClaims({ sub: 's', preferred_username: 'a', groups: ['x'] }, noGroups)).toMatchObject({
      groups: null,
    });
    expect(identityFromClaims({ sub: 's', preferred_username: 'a' }, provider)).toMatchObject({ groups: [] });
  });

  it('drops an unverified email (it is only what the user typed)', () => {
    const identity = identityFromClaims(
      { sub: 's1', preferred_username: 'a', email: 'x@example.com' },
      provider,
    );
    expect(identity).toMatchObject({ email: null });
  });

  it.each([
    ['no sub', { preferred_username: 'a' }, 'subject_invalid'],
    ['no user name claim', { sub: 's' }, 'username_missing'],
    ['a user name Cove cannot use', { sub: 's', preferred_username: 'a b' }, 'username_invalid'],
    [
      'a user name starting with a formula sign',
      { sub: 's', preferred_username: '=cmd' },
      'username_invalid',
    ],
  ])('refuses %s', (_name, claims, reason) => {
    expect(identityFromClaims(claims, provider)).toMatchObject({ reason });
  });

  it('with email as the user name, requires email_verified (true or "true")', () => {
    const byEmail = providerWith({ usernameClaim: 'email' });
    expect(identityFromClaims({ sub: 's', email: 'a@example.com' }, byEmail)).toMatchObject({
      reason: 'email_unverified',
    });
    expect(
      identityFromClaims({ sub: 's', email: 'a@example.com', email_verified: false }, byEmail),
    ).toMatchObject({ reason: 'email_unverified' });
    expect(
      identityFromClaims({ sub: 's', email: 'A@Example.com', email_verified: 'true' }, byEmail),
    ).toMatchObject({ username: 'a@example.com' });
  });
});

describe('groupsFromClaim', () => {
  it('accepts an array or one string, drops non-strings and empties, bounds the count', () => {
    expect(groupsFromClaim(['a', 1, '', ' b ', null])).toEqual(['a', 'b']);
    expect(groupsFromClaim('solo')).toEqual(['solo']);
    expect(groupsFromClaim(undefined)).toEqual([]);
    expect(groupsFromClaim({ admins: true })).toEqual([]);
    expect(groupsFromClaim(Array.from({ length: 10_000 }, (_, i) => `g${i}`))).toHaveLength(maxClaimedGroups);
  });
});

describe('mfaClaimed', () => {
  const provider = providerWith({ mfaAcrValues: ['urn:okta:loa:2fa:any'] });
  it.each([
    [{ amr: ['pwd'] }, false],
    [{ amr: ['pwd', 'otp'] }, true],
    [{ amr: ['hwk'] }, true],
    [{ amr: ['mfa'] }, true],
    [{ amr: 'mfa' }, false],
    [{ acr: 'urn:okta:loa:1fa:pwd' }, false],
    [{ acr: 'urn:okta:loa:2fa:any' }, true],
    [{}, false],
  ])('%j → %s', (claims, expected) => {
    expect(mfaClaimed(claims, provider)).toBe(expected);
  });
});
