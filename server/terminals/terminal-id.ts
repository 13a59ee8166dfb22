/**
 * Terminal ids are bearer-like handles in URLs, so they are unguessable (128 random bits) and
 * validated by shape before any lookup: a malformed id never reaches the registry.
 */
import { randomBytes } from 'node:crypto';

/** 16 bytes in base64url without padding is exactly 22 characters. */
export const terminalIdPattern = '^[A-Za-z0-9_-]{22}$';
const pattern = new RegExp(terminalIdPattern);

export const terminalId = {
  generate: (): string => randomBytes(16).toString('base64url'),
  isValid: (value: unknown): value is string => typeof value === 'string' && pattern.test(value),
} as const;
