/**
 * SECURITY-TESTS H08 (response headers on every page and API answer, no CORS reflection) and the
 * log-redaction part of the session review (and of R02): after a run that pushes cookies,
 * passwords, TOTP secrets, presigned-URL signatures and AWS keys at the server, none of them is in
 * the captured log stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../server/auth/totp.js';
import { scrubSecrets } from '../../server/logger.js';
import { origin, region, startSecurityRig, type RigUser, type SecurityRig } from './security-rig.js';

let rig: SecurityRig;
let admin: RigUser;
let user: RigUser;

beforeAll(async () => {
  rig = await startSecurityRig({ logLevel: 'debug' });
  admin = await rig.user('admin', { admin: true });
  user = await rig.user('user');
});
afterAll(async () => {
  await rig?.close();
});

const pages = () =>
  [
    ['/login', undefined],
    ['/', user],
    [`/shell/${region}`, user],
    ['/admin', admin],
    ['/healthz', undefined],
    ['/api/me', user],
    ['/api/portal', user],
    ['/api/me', undefined],
    ['/no/such/page', user],
    ['/api/no-such-route', user],
    [`/api/environments/${region}/terminals`, user],
    ['/api/admin/users', admin],
    ['/api/admin/audit', admin],
  ] as const;

describe('H08 response headers', () => {
  it('H08 every page and API answer carries the strict CSP, no-referrer, nosniff and no framing', async () => {
    for (const [url, who] of pages()) {
      const res = await rig.t.app.inject({
        method: 'GET',
        url,
        headers: { ...(who ? { cookie: who.cookie } : {}) },
      });
      const csp = String(res.headers['content-security-policy']);
      expect(csp, url).toContain("frame-ancestors 'none'");
      expect(csp, url).toContain("script-src 'self'");
      expect(csp, url).toContain("object-src 'none'");
      expect(csp, url).toContain("base-uri 'none'");
      // WebAssembly may compile on the admin console only (the recording player); never JS eval.
      expect(csp.replace("'wasm-unsafe-eval'", ''), url).not.toContain('unsafe-eval');
      expect(csp.includes("'wasm-unsafe-eval'"), url).toBe(url === '/admin');
      expect(csp.match(/script-src[^;]*/)?.[0], url).not.toContain('unsafe-inline');
      expect(res.headers['referrer-policy'], url).toBe('no-referrer');
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['x-frame-options'], url).toBe('DENY');
      // Over http there is no HSTS (browsers ignore it there); the https case is below.
      expect(res.headers['strict-transport-security'], url).toBeUndefined();
    }
  });

  it('H08 no CORS: a foreign Origin with credentials gets no Access-Control-Allow-Origin, preflights included', async () => {
    for (const method of ['GET', 'OPTIONS'] as const) {
      const res = await rig.t.app.inject({
        method,
        url: '/api/me',
        headers: {
          origin: 'https://evil.example',
          cookie: user.cookie,
          'access-control-request-method': 'POST',
        },
      });
      expect(res.headers['access-control-allow-origin'], method).toBeUndefined();
      expect(res.headers['access-control-allow-credentials'], method).toBeUndefined();
    }
  });

  it('H08 over https: HSTS on every answer', async () => {
    const https = await startSecurityRig({ publicUrl: 'https://cove.example.com' });
    try {
      for (const url of ['/login', '/healthz', '/api/me', '/no/such/page']) {
        const res = await https.t.app.inject({ method: 'GET', url });
        expect(res.headers['strict-transport-security'], url).toMatch(/max-age=\d{7,}/);
      }
    } finally {
      await https.close();
    }
  });
});

describe('H08 log redaction', () => {
  it('H08 cookies, passwords, TOTP secrets, presigned signatures and AWS keys never reach the log', async () => {
    const secrets = {
      signature: 'f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f',
      securityToken: 'IQoJb3JpZ2luX2VjEXAMPLEsessiontokenvalue0123456789abcdef',
      accessKeyId: 'ASIAEXAMPLE234567890',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      password: 'an actual password 1',
    };
    const presigned =
      `http://127.0.0.1:4568/cove-staging/u/a.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256` +
      `&X-Amz-Credential=${secrets.accessKeyId}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request` +
      `&X-Amz-Security-Token=${secrets.securityToken}&X-Amz-Signature=${secrets.signature}`;

    // Requests carrying secrets in the places they travel.
    await rig.t.app.inject({
      method: 'GET',
      url: `/api/me?X-Amz-Signature=${secrets.signature}`,
      headers: { cookie: user.cookie },
    });
    await rig.t.app.inject({
      method: 'GET',
      url: '/api/me',
      headers: {
        authorization: `Bearer ${secrets.securityToken}`,
        'x-amz-security-token': secrets.securityToken,
      },
    });
    await rig.request(undefined, 'POST', '/api/auth/login', {
      username: user.username,
      password: secrets.password,
    });
    const enroll = await rig.request(user, 'POST', '/api/auth/mfa/enroll');
    const totpSecret = enroll.json<{ secret: string }>().secret;
    await rig.request(user, 'POST', '/api/auth/mfa/enroll/verify', {
      code: totpCode(totpSecret, Date.now()),
    });

    // What other areas log when AWS or S3 fail: objects and messages that quote secrets.
    const log = rig.t.app.log;
    log.warn(
      { credentials: { AccessKeyId: secrets.accessKeyId, SecretAccessKey: secrets.secretAccessKey } },
      'issued',
    );
    log.warn({ response: { Credentials: { SessionToken: secrets.securityToken } } }, 'sts answer');
    log.error({ err: new Error(`upload failed for ${presigned}`) }, 'transfer failed');
    log.info({ url: presigned }, `presigned ${presigned}`);
    log.info(`key ${secrets.accessKeyId} secret in text; cookie ${user.cookie}`);
    log.info({ uri: `otpauth://totp/Cove:x?secret=${totpSecret}&issuer=Cove` }, 'enrollment');

    const text = rig.t.logs.join('');
    expect(text).toContain('transfer failed'); // the lines are there...
    expect(text).toContain('X-Amz-Signature=[redacted]');
    for (const [what, value] of Object.entries({ ...secrets, cookie: user.token, totpSecret }))
      expect(text.includes(value), `${what} leaked into the log`).toBe(false); // ...the secrets are not
    expect(text).not.toMatch(/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/);
  });

  it('H08 the scrubber leaves ordinary text alone', () => {
    const plain = 'GET /api/environments/us-east-1/terminals 201 in 3 ms (user ASIA-pacific-team)';
    expect(scrubSecrets(plain)).toBe(plain);
  });

  it('H08 a state-changing request passes only with the exact configured origin (the pages rely on it)', async () => {
    const someone = await rig.user('origin-check');
    const post = (from: string) =>
      rig.t.app.inject({
        method: 'POST',
        url: `/api/environments/${region}/terminals`,
        headers: { origin: from, cookie: someone.cookie, 'content-type': 'application/json' },
        payload: '{}',
      });
    const exact = await post(origin);
    expect(exact.statusCode, exact.body).toBe(201);
    await rig.request(
      user,
      'DELETE',
      `/api/environments/${region}/terminals/${exact.json<{ terminalId: string }>().terminalId}`,
    );
    // Near misses a sloppy comparison would let through: case, a trailing slash or dot, another port.
    for (const near of [
      origin.toUpperCase(),
      `${origin}/`,
      'http://127.0.0.1.:8080',
      'http://127.0.0.1:8081',
    ]) {
      const response = await post(near);
      expect(response.statusCode, near).toBe(403);
    }
  });
});
