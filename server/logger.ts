/**
 * Logger options: pino with secrets redacted and query strings dropped from logged URLs
 * (presigned URLs and stray tokens live there). Redaction by path catches the known fields; the
 * value scrubber catches secrets that arrive inside strings (an error message quoting a presigned
 * URL, an SDK error carrying a key id), which no path list can foresee.
 */
import { hostname } from 'node:os';
import type { FastifyServerOptions } from 'fastify';

export const redactPaths = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["x-amz-security-token"]',
  'res.headers["set-cookie"]',
  '*.headers.cookie',
  '*.headers.authorization',
  '*.headers["set-cookie"]',
  '*.headers["x-amz-security-token"]',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.code',
  '*.secret',
  '*.totpSecret',
  '*.totpPendingSecret',
  '*.token',
  '*.SecretAccessKey',
  '*.SessionToken',
  '*.Token',
  '*.Credentials',
  '*.credentials',
  '*.secretAccessKey',
  '*.sessionToken',
  '*.clientSecret',
  '*.client_secret',
  '*.idToken',
  '*.id_token',
  '*.codeVerifier',
];

const scrubbers: ReadonlyArray<[RegExp, string]> = [
  // Presigned URL parts: the signature, the session token and the credential scope.
  [/(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s"'<>]+/gi, '$1[redacted]'],
  // The same token as a header quoted in an error (`x-amz-security-token: ...`).
  [/(x-amz-security-token["']?\s*:\s*["']?)[^\s"',}&]+/gi, '$1[redacted]'],
  // Access key ids (long-term AKIA, temporary ASIA).
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, '[redacted-key-id]'],
  // Session cookies, whatever carries them.
  [/((?:__Host-)?cove_(?:session|oidc)=)[^;\s"',]+/g, '$1[redacted]'],
  // SCIM bearer tokens, wherever they end up quoted.
  [/\bcove_scim_[A-Za-z0-9_-]+/g, 'cove_scim_[redacted]'],
  // TOTP enrolment URLs.
  [/(otpauth:\/\/[^\s"']*[?&]secret=)[A-Z2-7=]+/gi, '$1[redacted]'],
];

/** Replaces secrets inside a string; returns the same string when there are none. */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of scrubbers) out = out.replace(pattern, replacement);
  return out;
}

function scrubValue(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (typeof value !== 'object' || value === null || depth > 6 || seen.has(value)) return value;
  seen.add(value);
  if (value instanceof Error) {
    // Errors serialize through pino's serializer: scrub the fields it reads, on a copy.
    const copy = Object.assign(Object.create(Object.getPrototypeOf(value) as object) as Error, value);
    copy.message = scrubSecrets(value.message);
    if (value.stack) copy.stack = scrubSecrets(value.stack);
    return copy;
  }
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, depth + 1, seen));
  // Requests, replies, streams: their serializers read getters a copy would lose.
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = scrubValue(v, depth + 1, seen);
  return out;
}

export function loggerOptions(
  level: string,
  stream?: NodeJS.WritableStream,
  instance?: string,
): FastifyServerOptions['logger'] {
  return {
    level,
    // pino's own base fields plus which Cove process wrote the line.
    ...(instance ? { base: { pid: process.pid, hostname: hostname(), instance } } : {}),
    redact: { paths: redactPaths, censor: '[redacted]' },
    serializers: {
      req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url.split('?')[0],
        ip: req.ip,
      }),
    },
    hooks: {
      logMethod(args: unknown[], method: (...a: unknown[]) => void) {
        const seen = new WeakSet<object>();
        method.apply(
          this,
          args.map((arg) => scrubValue(arg, 0, seen)),
        );
      },
    },
    ...(stream ? { stream } : {}),
  } as FastifyServerOptions['logger'];
}
