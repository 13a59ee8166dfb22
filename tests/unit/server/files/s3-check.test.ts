import { describe, expect, it } from 'vitest';
import { corsProblem, requiredCors } from '../../../../server/files/s3-check.js';

const origin = 'https://cove.example.com';

describe('corsProblem', () => {
  it('accepts the rule Cove asks for', () => {
    expect(corsProblem(requiredCors(origin).CORSRules, origin)).toBeUndefined();
  });

  it.each([
    [[], `no CORS rule allows the origin ${origin}`],
    [
      [
        {
          AllowedOrigins: ['https://other.example'],
          AllowedMethods: ['PUT', 'GET'],
          ExposeHeaders: ['ETag'],
        },
      ],
      `no CORS rule allows the origin ${origin}`,
    ],
    [
      [{ AllowedOrigins: [origin], AllowedMethods: ['GET'], ExposeHeaders: ['ETag'] }],
      `the CORS rule for ${origin} does not allow PUT`,
    ],
    [
      [{ AllowedOrigins: [origin], AllowedMethods: ['PUT', 'GET'] }],
      `the CORS rule for ${origin} does not expose the ETag header (multipart uploads need it)`,
    ],
    [[{ AllowedOrigins: ['*'], AllowedMethods: ['put', 'get'], ExposeHeaders: ['etag'] }], undefined],
    [
      [
        {
          AllowedOrigins: ['https://*.example.com'],
          AllowedMethods: ['PUT', 'GET'],
          ExposeHeaders: ['ETag'],
        },
      ],
      undefined,
    ],
  ])('%j → %s', (rules, problem) => {
    expect(corsProblem(rules, origin)).toBe(problem);
  });
});
