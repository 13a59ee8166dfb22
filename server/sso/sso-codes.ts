/**
 * Pure helpers of the AWS CLI sign-in: user codes people compare by eye, loopback redirect
 * addresses (RFC 8252: any port), PKCE S256 (RFC 7636), and the hashes Cove stores instead of
 * codes and tokens.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';

/** No vowels (no words) and none of L, S, Z (read as 1, 5, 2): 18 letters, 18^8 ≈ 1.1e10 codes. */
export const userCodeAlphabet = 'BCDFGHJKMNPQRTVWXY';
const alphabet = userCodeAlphabet;

/** `XXXX-XXXX` from 8 random letters of an unambiguous alphabet. */
export function newUserCode(): string {
  let code = '';
  for (let i = 0; i < 8; i++) code += alphabet[randomInt(alphabet.length)];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** What a person typed as a user code, as stored (upper case, one dash); undefined when it cannot be one. */
export function normalizeUserCode(input: string): string | undefined {
  const letters = input.toUpperCase().replace(/[\s-]/g, '');
  if (letters.length !== 8 || ![...letters].every((c) => alphabet.includes(c))) return undefined;
  return `${letters.slice(0, 4)}-${letters.slice(4)}`;
}

/** A secret for the wire: 32 random bytes, base64url. */
export const newSecret = (): string => randomBytes(32).toString('base64url');

export const sha256Hex = (value: string): string => createHash('sha256').update(value).digest('hex');

/** The PKCE S256 challenge of a verifier. */
export const s256 = (verifier: string): string => createHash('sha256').update(verifier).digest('base64url');

/** RFC 7636: 43–128 characters of the unreserved set. */
export const isCodeVerifier = (v: string): boolean => /^[A-Za-z0-9._~-]{43,128}$/.test(v);

/**
 * True for `http://127.0.0.1[:port]/...`, `http://localhost[:port]/...` and `http://[::1][:port]/...`
 * only: the code then goes to a program on the person's own machine, never to another site.
 */
export function isLoopbackRedirect(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' || url.username !== '' || url.password !== '' || url.hash !== '') return false;
  return url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
}
