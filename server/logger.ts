/**
 * Logger options: pino with secrets redacted and query strings dropped from logged URLs
 * (presigned URLs and stray tokens live there).
 */
import type { FastifyServerOptions } from 'fastify';

export const redactPaths = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["x-amz-security-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.code',
  '*.secret',
  '*.totpSecret',
  '*.token',
  '*.SecretAccessKey',
  '*.SessionToken',
  '*.Token',
];

export function loggerOptions(level: string, stream?: NodeJS.WritableStream): FastifyServerOptions['logger'] {
  return {
    level,
    redact: { paths: redactPaths, censor: '[redacted]' },
    serializers: {
      req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url.split('?')[0],
        ip: req.ip,
      }),
    },
    ...(stream ? { stream } : {}),
  } as FastifyServerOptions['logger'];
}
