import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Type } from '@sinclair/typebox';
import { createTestApp, type TestApp } from '../../helpers/test-app.js';

let t: TestApp;
const origin = 'http://127.0.0.1:8080';

beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t.close();
});

describe('app basics', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await t.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await t.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', checks: { store: true } });
  });

  it('sends the security headers on every response, errors included', async () => {
    for (const url of ['/healthz', '/api/does-not-exist']) {
      const response = await t.app.inject({ url });
      expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(response.headers['content-security-policy']).toContain("script-src 'self'");
      expect(response.headers['referrer-policy']).toBe('no-referrer');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['strict-transport-security']).toBeUndefined();
    }
  });

  it('answers unknown API routes with a coded 404', async () => {
    const response = await t.app.inject({ url: '/api/nope' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({
      code: 'COVE_ERR_NOT_FOUND',
      message: 'That API route does not exist.',
    });
  });
});

describe('CSRF defence on state-changing requests', () => {
  const post = (headers: Record<string, string>, payload = '{}') =>
    t.app.inject({ method: 'POST', url: '/api/auth/logout', headers, payload });

  it.each([
    ['a foreign Origin', { origin: 'https://evil.example', 'content-type': 'application/json' }],
    ['Origin: null', { origin: 'null', 'content-type': 'application/json' }],
    ['no Origin and no Referer', { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }],
    ['our host on another port', { origin: 'http://127.0.0.1:8081', 'content-type': 'application/json' }],
    ['a mixed-case host', { origin: 'http://LOCALHOST:8080', 'content-type': 'application/json' }],
    ['a foreign Referer', { referer: 'https://evil.example/x', 'content-type': 'application/json' }],
  ])('refuses %s with 403', async (_name, headers) => {
    const response = await post(headers);
    expect(response.statusCode).toBe(403);
    expect(response.json().code).toBe('COVE_ERR_CSRF');
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'])(
    'refuses a %s body with 415',
    async (type) => {
      const response = await post({ origin, 'content-type': type }, 'a=b');
      expect(response.statusCode).toBe(415);
      expect(response.json().code).toBe('COVE_ERR_REQUEST_MEDIA_TYPE');
    },
  );

  it('lets a same-origin JSON request through (by Origin, or by Referer when Origin is absent)', async () => {
    expect((await post({ origin, 'content-type': 'application/json' })).statusCode).not.toBe(403);
    expect(
      (await post({ referer: `${origin}/admin`, 'content-type': 'application/json' })).statusCode,
    ).not.toBe(403);
  });
});

describe('error bodies', () => {
  let local: TestApp;
  beforeAll(async () => {
    local = await createTestApp({}, {}, (app) => {
      app.post('/api/test/echo', { schema: { body: Type.Object({ n: Type.Integer() }) } }, async () => ({}));
      app.get('/api/test/crash', async () => {
        throw new Error('secret internal detail at /srv/cove/x.ts:12');
      });
    });
  });
  afterAll(async () => {
    await local.close();
  });

  it('turn validation errors into 400 naming the field', async () => {
    const response = await local.app.inject({
      method: 'POST',
      url: '/api/test/echo',
      headers: { origin, 'content-type': 'application/json' },
      payload: { n: 'seven' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'COVE_ERR_REQUEST_INVALID', field: 'n' });
    expect(response.json().message).toMatch(/body field "n"/);
  });

  it('turn broken JSON into a clear 400', async () => {
    const response = await local.app.inject({
      method: 'POST',
      url: '/api/test/echo',
      headers: { origin, 'content-type': 'application/json' },
      payload: '{"n": ',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      code: 'COVE_ERR_REQUEST_INVALID',
      message: 'The request body is not valid JSON.',
    });
  });

  it('turn crashes into 500 with a reference and no internals; the log keeps the detail', async () => {
    const response = await local.app.inject({ url: '/api/test/crash' });
    expect(response.statusCode).toBe(500);
    const body = response.json();
    expect(body.code).toBe('COVE_ERR_INTERNAL');
    expect(body.message).toMatch(/reference: req-/);
    expect(response.body).not.toContain('secret internal detail');
    expect(response.body).not.toMatch(/\.ts:\d+|at \w+ \(/);
    expect(local.logs.join('')).toContain('secret internal detail');
  });
});
