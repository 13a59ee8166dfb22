import { describe, expect, it } from 'vitest';
import { Secret, TOTP, URI } from 'otpauth';
import {
  matchTotp,
  newTotpSecret,
  totpCode,
  totpEnrollment,
  totpStep,
} from '../../../../server/auth/totp.js';

// RFC 6238 appendix B: the SHA-1 seed is ASCII "12345678901234567890"; 6-digit codes are the last six.
const rfcSecret = Secret.fromLatin1('12345678901234567890').base32;
const rfcVectors: Array<[number, string]> = [
  [59, '287082'],
  [1111111109, '081804'],
  [1111111111, '050471'],
  [1234567890, '005924'],
  [2000000000, '279037'],
  [20000000000, '353130'],
];

describe('totp', () => {
  it('produces the RFC 6238 test vectors', () => {
    for (const [seconds, code] of rfcVectors) expect(totpCode(rfcSecret, seconds * 1000)).toBe(code);
  });

  it('matches the current step and one either side, returning the step', () => {
    const now = 1_700_000_015_000;
    const step = totpStep(now);
    expect(step).toBe(Math.floor(now / 30_000));
    expect(matchTotp(rfcSecret, totpCode(rfcSecret, now), now)).toBe(step);
    expect(matchTotp(rfcSecret, totpCode(rfcSecret, now - 30_000), now)).toBe(step - 1);
    expect(matchTotp(rfcSecret, totpCode(rfcSecret, now + 30_000), now)).toBe(step + 1);
    expect(matchTotp(rfcSecret, totpCode(rfcSecret, now - 60_000), now)).toBeUndefined();
    expect(matchTotp(rfcSecret, totpCode(rfcSecret, now + 60_000), now)).toBeUndefined();
  });

  it('accepts spaces inside a code and refuses anything that is not 6 digits', () => {
    const now = 1_700_000_015_000;
    const code = totpCode(rfcSecret, now);
    expect(matchTotp(rfcSecret, `${code.slice(0, 3)} ${code.slice(3)}`, now)).toBe(totpStep(now));
    for (const bad of ['', '12345', '1234567', 'abcdef', `${code}0`, '１２３４５６'])
      expect(matchTotp(rfcSecret, bad, now), bad).toBeUndefined();
  });

  it('treats a corrupt secret as no match rather than an exception', () => {
    expect(matchTotp('!!!not base32!!!', '123456', Date.now())).toBeUndefined();
  });

  it('makes 160-bit base32 secrets, different every time', () => {
    const a = newTotpSecret();
    const b = newTotpSecret();
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(Secret.fromBase32(a).bytes).toHaveLength(20);
    expect(a).not.toBe(b);
  });

  it('describes the enrollment as an otpauth URI and an SVG QR code an authenticator can use', async () => {
    const secret = newTotpSecret();
    const enrollment = await totpEnrollment(secret, 'alice');
    expect(enrollment.secret).toBe(secret);
    const parsed = URI.parse(enrollment.otpauthUrl);
    expect(parsed).toBeInstanceOf(TOTP);
    expect(parsed.issuer).toBe('Cove');
    expect(parsed.label).toBe('alice');
    expect(parsed.secret.base32).toBe(secret);
    expect((parsed as TOTP).period).toBe(30);
    expect(parsed.digits).toBe(6);
    expect(parsed.algorithm).toBe('SHA1');
    const prefix = 'data:image/svg+xml;base64,';
    expect(enrollment.qrSvgDataUrl.startsWith(prefix)).toBe(true);
    const svg = Buffer.from(enrollment.qrSvgDataUrl.slice(prefix.length), 'base64').toString('utf8');
    expect(svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).not.toContain(secret);
  });
});
