/**
 * M05 (proposed): /metrics as an attack surface. Only the configured bearer token opens it (no
 * session cookie, no query string), and what it shows after real use names no user, email,
 * session, terminal, invite token or raw URL, and never the token itself; the token stays out of
 * the logs. No Docker: the shared rig with the fake sandbox driver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hash } from '@node-rs/argon2';
import { origin, ready, region, startSecurityRig, type RigUser, type SecurityRig } from './security-rig.js';
import { parseSamples } from '../helpers/prometheus-text.js';

const token = 'm05-metrics-token-7f3a9c1e5b2d4f6a8c0e';
const password = 'correct horse battery staple';

describe('M05 /metrics exposure', () => {
  let rig: SecurityRig;
  let admin: RigUser;
  let alice: RigUser;
  let terminalId: string;
  let inviteToken: string;
  const secrets: string[] = [];

  beforeAll(async () => {
    rig = await startSecurityRig({ metrics: { token }, instanceId: 'cove-m05' });
    admin = await rig.user('admin-m05', { admin: true });
    alice = await rig.user('alice-m05-name');
    const passwordHash = await hash(password, { algorithm: 2, memoryCost: 1024, timeCost: 1 });
    const bob = await rig.t.store.users.create({
      username: 'bob-m05-name',
      email: 'bob.m05@mail.example',
      passwordHash,
    });

    // Real use: sign-ins that fail and succeed, a terminal with typed text, an invite, 404s.
    const login = (username: string, pass: string) =>
      rig.t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        headers: { origin, 'content-type': 'application/json' },
        payload: JSON.stringify({ username, password: pass }),
      });
    expect((await login('bob-m05-name', 'wrong password!')).statusCode).toBe(401);
    expect((await login('carol-m05-unknown', 'wrong password!')).statusCode).toBe(401);
    const signedIn = await login('bob-m05-name', password);
    expect(signedIn.statusCode).toBe(200);
    const bobSession = signedIn.cookies.find((c) => c.name === rig.t.app.sessionCookieName)?.value ?? '';
    expect(bobSession).not.toBe('');

    terminalId = await rig.createTerminal(alice);
    const client = await rig.connect(alice, terminalId);
    await ready(client);
    client.send('echo typed-m05-secret\r');
    await client.waitForText('typed-m05-secret');

    const invite = await rig.request(admin, 'POST', `/api/admin/users/${bob.id}/reset-password`);
    expect(invite.statusCode, invite.body).toBe(200);
    inviteToken = new URL(invite.json<{ inviteUrl: string }>().inviteUrl).searchParams.get('invite') ?? '';
    await rig.t.app.inject({ method: 'GET', url: `/api/auth/invite/${encodeURIComponent(inviteToken)}` });
    await rig.t.app.inject({ method: 'GET', url: '/api/users/by-name/alice-m05-name' });
    await rig.t.app.inject({ method: 'GET', url: '/no-such-page/bob.m05@mail.example' });

    secrets.push(
      'alice-m05-name',
      'bob-m05-name',
      'carol-m05-unknown',
      'bob.m05@mail.example',
      'admin-m05',
      alice.id,
      bob.id,
      alice.token,
      admin.token,
      bobSession,
      terminalId,
      'typed-m05-secret',
      token,
      password,
    );
    secrets.push(inviteToken);
  });
  afterAll(() => rig.close());

  const scrape = (headers: Record<string, string> = {}, url = '/metrics') =>
    rig.t.app.inject({ method: 'GET', url, headers });

  it('M05 a session cookie, even an admin one, or a token in the query string does not open it', async () => {
    for (const [headers, url] of [
      [{ cookie: admin.cookie }, '/metrics'],
      [{ cookie: admin.cookie, origin }, '/metrics'],
      [{}, `/metrics?token=${token}`],
      [{}, `/metrics?access_token=${token}`],
      [{ authorization: `Bearer ${token.toUpperCase()}` }, '/metrics'],
      [{ authorization: `Bearer  ${token}x` }, '/metrics'],
    ] as const) {
      const res = await scrape(headers, url);
      expect(res.statusCode, `${JSON.stringify(headers)} ${url}`).toBe(401);
      expect(res.json<{ code: string }>().code).toBe('COVE_ERR_METRICS_UNAUTHORIZED');
      expect(res.body).not.toContain('cove_');
    }
  });

  it('M05 after real use it shows the activity but no user, email, session, terminal, invite or token', async () => {
    const res = await scrape({ authorization: `Bearer ${token}` });
    expect(res.statusCode).toBe(200);
    const text = res.body;
    // It did see the activity...
    const samples = parseSamples(text);
    const value = (name: string, labels: Record<string, string>) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        ?.value;
    expect(value('cove_signin_failures_total', { reason: 'password' })).toBe(2);
    expect(value('cove_terminals_open', { region })).toBe(1);
    expect(value('cove_terminal_input_bytes_total', {})).toBeGreaterThan(0);
    // ...and names none of it.
    expect(inviteToken.length).toBeGreaterThan(10);
    for (const secret of secrets) expect(text, secret).not.toContain(secret);
    expect(text.toLowerCase()).not.toMatch(/alice|bob|carol|@mail\.example/);
    // Routes are patterns; unmatched requests are one label, never their URL.
    const routes = new Set(
      samples.filter((s) => s.name === 'cove_http_requests_total').map((s) => s.labels.route),
    );
    expect(routes).toContain('/api/auth/invite/:token');
    expect(routes).toContain('(unmatched)');
    for (const route of routes) expect(route, route).not.toMatch(/m05|by-name|no-such-page/);
    // Cove's own series use only labels with closed value sets (prom-client's process metrics
    // add Node's version, GC kind and heap space names).
    const allowed = new Set(['code', 'direction', 'instance', 'le', 'method', 'operation', 'outcome']);
    for (const k of ['reason', 'region', 'route', 'status_class']) allowed.add(k);
    const own = samples.filter((s) => !/^cove_(process|nodejs)_/.test(s.name));
    expect(own.length).toBeGreaterThan(20);
    for (const s of own)
      for (const key of Object.keys(s.labels)) expect(allowed, `${s.name} ${key}`).toContain(key);
  });

  it('M05 the token, right or wrong, never reaches the logs', async () => {
    const wrong = 'm05-wrong-token-b8d2e4f6a0c2e4f6a8';
    expect((await scrape({ authorization: `Bearer ${wrong}` })).statusCode).toBe(401);
    expect((await scrape({ authorization: `Bearer ${token}` })).statusCode).toBe(200);
    const logs = rig.t.logs.join('');
    expect(logs).toContain('"url":"/metrics"');
    expect(logs).not.toContain(token);
    expect(logs).not.toContain(wrong);
    await rig.expectHealthy();
  });
});
