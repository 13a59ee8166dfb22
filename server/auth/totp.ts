/**
 * TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps) via `otpauth`. Matching returns the time
 * step the code belongs to, so the caller can compare-and-set it (`store.users.claimTotpStep`)
 * and a code works once, even when two sign-ins race with it.
 */
import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import type { MfaEnrollment } from '../protocol/api.js';

export const totpIssuer = 'Cove';
const period = 30;
const digits = 6;
/** One step either side absorbs clock drift between the phone and the server. */
const window = 1;
const codePattern = /^\d{6}$/;

/** A new secret: 20 random bytes (the RFC 4226 recommendation), base32 encoded. */
export function newTotpSecret(): string {
  return new Secret({ buffer: new Uint8Array(randomBytes(20)).buffer }).base32;
}

/** What the enrollment page shows: the otpauth URI, the same as a QR code, and the secret. */
export async function totpEnrollment(secret: string, username: string): Promise<MfaEnrollment> {
  const otp = new TOTP({
    issuer: totpIssuer,
    label: username,
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits,
    period,
  });
  const otpauthUrl = otp.toString();
  const svg = await QRCode.toString(otpauthUrl, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return {
    otpauthUrl,
    qrSvgDataUrl: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`,
    secret,
  };
}

/** The time step of `now` (epoch ms). */
export function totpStep(now: number): number {
  return TOTP.counter({ period, timestamp: now });
}

/** The code for a step; for tests and tools, the server itself never needs to produce codes. */
export function totpCode(secret: string, now: number): string {
  return TOTP.generate({
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits,
    period,
    timestamp: now,
  });
}

/**
 * The time step a code matches (current ±1), or undefined. Whether the step was already used is
 * the caller's question, answered atomically by the store.
 */
export function matchTotp(secret: string, code: string, now: number): number | undefined {
  const token = code.replace(/\s+/g, '');
  if (!codePattern.test(token)) return undefined;
  let key: Secret;
  try {
    key = Secret.fromBase32(secret);
  } catch {
    return undefined;
  }
  const delta = TOTP.validate({
    token,
    secret: key,
    algorithm: 'SHA1',
    digits,
    period,
    timestamp: now,
    window,
  });
  return delta === null ? undefined : totpStep(now) + delta;
}
