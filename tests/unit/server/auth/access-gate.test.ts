import { describe, expect, it } from 'vitest';
import { accessGate, isOpenWhileGated, mfaRequiredFor } from '../../../../server/auth/access-gate.js';
import type { UserRecord } from '../../../../server/store/store.js';

const user = (patch: Partial<UserRecord> = {}): UserRecord => ({
  id: 'u1',
  username: 'alice',
  email: null,
  passwordHash: 'x',
  disabled: false,
  mustChangePassword: false,
  mfaRequired: false,
  totpSecret: null,
  totpPendingSecret: null,
  totpLastStep: 0,
  createdAt: 0,
  lastLoginAt: null,
  source: 'local',
  ...patch,
});

describe('accessGate', () => {
  it.each([
    ['nothing pending', user(), false, undefined],
    [
      'must change password',
      user({ mustChangePassword: true }),
      false,
      'COVE_ERR_AUTH_PASSWORD_CHANGE_REQUIRED',
    ],
    [
      'password first, then MFA',
      user({ mustChangePassword: true, mfaRequired: true }),
      false,
      'COVE_ERR_AUTH_PASSWORD_CHANGE_REQUIRED',
    ],
    [
      'MFA required for the user, not enrolled',
      user({ mfaRequired: true }),
      false,
      'COVE_ERR_AUTH_MFA_ENROLLMENT_REQUIRED',
    ],
    ['MFA required for all, not enrolled', user(), true, 'COVE_ERR_AUTH_MFA_ENROLLMENT_REQUIRED'],
    ['MFA required and enrolled', user({ mfaRequired: true, totpSecret: 'S' }), true, undefined],
    [
      'only a pending enrollment',
      user({ mfaRequired: true, totpPendingSecret: 'S' }),
      false,
      'COVE_ERR_AUTH_MFA_ENROLLMENT_REQUIRED',
    ],
  ] as const)('%s', (_name, u, forAll, code) => {
    expect(accessGate(u, forAll)?.code).toBe(code);
  });

  it('mfaRequiredFor combines the user flag and the global setting', () => {
    expect(mfaRequiredFor(user(), false)).toBe(false);
    expect(mfaRequiredFor(user(), true)).toBe(true);
    expect(mfaRequiredFor(user({ mfaRequired: true }), false)).toBe(true);
  });

  it("MFA done at a trusted identity provider stands in for Cove's TOTP", () => {
    const required = user({ mfaRequired: true });
    expect(mfaRequiredFor(required, true, { mfaByIdp: true })).toBe(false);
    expect(mfaRequiredFor(required, true, { mfaByIdp: false })).toBe(true);
    expect(accessGate(required, true, { mfaByIdp: true })).toBeUndefined();
    expect(accessGate(required, true, { mfaByIdp: false })?.code).toBe(
      'COVE_ERR_AUTH_MFA_ENROLLMENT_REQUIRED',
    );
    // A password change still comes first, whoever did the MFA.
    expect(accessGate(user({ mustChangePassword: true }), true, { mfaByIdp: true })?.code).toBe(
      'COVE_ERR_AUTH_PASSWORD_CHANGE_REQUIRED',
    );
  });

  it('leaves only /api/me and /api/auth/* open while gated', () => {
    expect(isOpenWhileGated('/api/me')).toBe(true);
    expect(isOpenWhileGated('/api/auth/password')).toBe(true);
    expect(isOpenWhileGated('/api/auth/mfa/enroll')).toBe(true);
    expect(isOpenWhileGated('/api/portal')).toBe(false);
    expect(isOpenWhileGated('/api/me/anything')).toBe(false);
    expect(isOpenWhileGated('/api/authx')).toBe(false);
    expect(isOpenWhileGated('/api/admin/users')).toBe(false);
  });
});
