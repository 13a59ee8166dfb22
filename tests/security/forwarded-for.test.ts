/**
 * SECURITY-TESTS M02: X-Forwarded-For counts only when a configured proxy sent it, so a client
 * cannot pick its own address to dodge the per-address sign-in throttle. M04: the forwarded
 * host and scheme never widen the exact Origin check against publicUrl. No Docker: the fake
 * sandbox driver, requests injected with the TCP peer address the test chooses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { hash } from '@node-rs/argon2';
import type { LightMyRequestResponse } from 'fastify';
import { origin, startSecurityRig, type SecurityRig } from './security-rig.js';

const perIp = 3;
const password = 'correct horse battery staple';

let rig: SecurityRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

async function start(raw: Record<string, unknown> = {}): Promise<SecurityRig> {
  rig = await startSecurityRig({
    ...raw,
    // Per account high, per address low: every case here is about the address.
    auth: { maxFailuresPerAccount: 1000, maxFailuresPerIp: perIp, throttleBaseDelayS: 60 },
  });
  return rig;
}

/** A sign-in from TCP peer `peer`, with whatever forwarding headers the sender adds. */
function login(
  r: SecurityRig,
  peer: string,
  username: string,
  headers: Record<string, string> = {},
  pass = 'wrong password!',
): Promise<LightMyRequestResponse> {
  return r.t.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    remoteAddress: peer,
    headers: { origin, 'content-type': 'application/json', ...headers },
    payload: JSON.stringify({ username, password: pass }),
  });
}

async function createUser(r: SecurityRig, username: string): Promise<void> {
  const passwordHash = await hash(password, { algorithm: 2, memoryCost: 1024, timeCost: 1 });
  await r.t.store.users.create({ username, passwordHash });
}

/** The addresses the audit log recorded for failed sign-ins, oldest first. */
async function failedSignInAddresses(r: SecurityRig): Promise<(string | null)[]> {
  const entries = await r.t.store.audit.list({ action: 'auth.login.failed', limit: 500 });
  return entries.map((e) => e.ip).reverse();
}

describe('M02 X-Forwarded-For from clients', () => {
  it('M02 no trusted proxies: rotating X-Forwarded-For values do not escape the per-address throttle', async () => {
    const r = await start();
    await createUser(r, 'victim');
    const statuses: number[] = [];
    for (let i = 0; i < perIp + 3; i++) {
      // A different account each time, so only the address can be what throttles.
      const res = await login(r, '203.0.113.7', `nobody-${i}`, {
        'x-forwarded-for': `1.2.3.${i}`,
        'x-real-ip': `1.2.3.${i}`,
      });
      statuses.push(res.statusCode);
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
    // Even a real account with its right password waits, whatever address the header claims.
    const blocked = await login(r, '203.0.113.7', 'victim', { 'x-forwarded-for': '9.9.9.9' }, password);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json()).toMatchObject({ code: 'COVE_ERR_AUTH_THROTTLED' });
    // The block is on the sender's real address, not on everyone.
    const other = await login(r, '203.0.113.8', 'victim', {}, password);
    expect(other.statusCode).toBe(200);
    // The audit log names the TCP peer, never the claimed address.
    expect(await failedSignInAddresses(r)).toEqual(Array(perIp).fill('203.0.113.7'));
    await r.expectHealthy();
  });

  it('M02 with 127.0.0.1 trusted: forwarded clients are throttled separately, by the address the proxy saw', async () => {
    const r = await start({ trustedProxies: ['127.0.0.1'] });
    await createUser(r, 'victim');
    for (let i = 0; i < perIp; i++)
      expect((await login(r, '127.0.0.1', `a-${i}`, { 'x-forwarded-for': '198.51.100.1' })).statusCode).toBe(
        401,
      );
    expect((await login(r, '127.0.0.1', 'a-next', { 'x-forwarded-for': '198.51.100.1' })).statusCode).toBe(
      429,
    );
    // Another client behind the same proxy is not affected...
    const second = await login(r, '127.0.0.1', 'victim', { 'x-forwarded-for': '198.51.100.2' }, password);
    expect(second.statusCode).toBe(200);
    // ...and the audit log records the forwarded client, not the proxy.
    expect(await failedSignInAddresses(r)).toEqual(Array(perIp).fill('198.51.100.1'));
  });

  it('M02 a forged hop prepended by the client (X-Forwarded-For: forged, real) does not let it escape', async () => {
    const r = await start({ trustedProxies: ['127.0.0.1'] });
    const statuses: number[] = [];
    for (let i = 0; i < perIp + 3; i++) {
      // The client sends "10.9.9.i"; the proxy appends the address it really came from.
      const res = await login(r, '127.0.0.1', `b-${i}`, { 'x-forwarded-for': `10.9.9.${i}, 198.51.100.5` });
      statuses.push(res.statusCode);
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
    // Several forged hops, and a forged loopback hop, change nothing either.
    for (const forged of ['127.0.0.1, 198.51.100.5', '1.1.1.1, 2.2.2.2, 127.0.0.1, 198.51.100.5'])
      expect((await login(r, '127.0.0.1', 'b-x', { 'x-forwarded-for': forged })).statusCode).toBe(429);
    expect(await failedSignInAddresses(r)).toEqual(Array(perIp).fill('198.51.100.5'));
  });

  it('M02 a sender that is not a listed proxy cannot borrow another client address', async () => {
    const r = await start({ trustedProxies: ['127.0.0.1'] });
    await createUser(r, 'victim');
    // The untrusted sender claims to be 198.51.100.3 while failing: its own address pays.
    for (let i = 0; i < perIp; i++)
      expect(
        (await login(r, '203.0.113.9', `c-${i}`, { 'x-forwarded-for': '198.51.100.3' })).statusCode,
      ).toBe(401);
    expect((await login(r, '203.0.113.9', 'c-x', { 'x-forwarded-for': '198.51.100.4' })).statusCode).toBe(
      429,
    );
    // The real 198.51.100.3, through the proxy, was never blocked on the attacker's account.
    const real = await login(r, '127.0.0.1', 'victim', { 'x-forwarded-for': '198.51.100.3' }, password);
    expect(real.statusCode).toBe(200);
    expect(await failedSignInAddresses(r)).toEqual(Array(perIp).fill('203.0.113.9'));
  });

  it('M02 two proxies in a CIDR: the first address from the right that is not a proxy is the client', async () => {
    const r = await start({ trustedProxies: ['10.0.0.0/8'] });
    for (let i = 0; i < perIp; i++)
      await login(r, '10.1.2.3', `d-${i}`, { 'x-forwarded-for': `192.0.2.${i}, 198.51.100.7, 10.0.0.5` });
    expect(
      (await login(r, '10.20.30.40', 'd-x', { 'x-forwarded-for': '198.51.100.7, 10.0.0.6' })).statusCode,
    ).toBe(429);
    expect(await failedSignInAddresses(r)).toEqual(Array(perIp).fill('198.51.100.7'));
  });
});

describe('M04 forwarded host and scheme against the exact Origin check', () => {
  const forged = { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };

  for (const trustedProxies of [[], ['127.0.0.1']]) {
    const label = trustedProxies.length === 0 ? 'no trusted proxies' : '127.0.0.1 trusted';

    it(`M04 ${label}: an Origin matching the forwarded host or scheme is refused; publicUrl's passes`, async () => {
      const r = await start({ trustedProxies });
      const attempt = (headers: Record<string, string>) =>
        r.t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          remoteAddress: '127.0.0.1',
          headers: { 'content-type': 'application/json', ...headers },
          payload: JSON.stringify({ username: 'nobody', password: 'wrong password!' }),
        });
      const refused: Record<string, string>[] = [
        { origin: 'https://evil.example', ...forged },
        { origin: 'https://127.0.0.1:8080', 'x-forwarded-proto': 'https' },
        { origin: 'http://evil.example:8080', 'x-forwarded-host': 'evil.example:8080' },
        { referer: 'https://evil.example/login', ...forged },
        { ...forged, host: 'evil.example' },
      ];
      for (const headers of refused) {
        const res = await attempt(headers);
        expect(res.statusCode, JSON.stringify(headers)).toBe(403);
        expect(res.json()).toMatchObject({ code: 'COVE_ERR_CSRF' });
      }
      // publicUrl's own origin passes CSRF (and then fails on the password), forwarded headers or not.
      expect((await attempt({ origin, ...forged })).statusCode).toBe(401);
      expect(await r.t.store.audit.list({ action: 'auth.login.failed' })).toHaveLength(1);
    });

    it(`M04 ${label}: the terminal WebSocket upgrade still needs publicUrl's exact Origin`, async () => {
      const r = await start({ trustedProxies });
      const user = await r.user('ws');
      const id = await r.createTerminal(user);
      const upgrade = (headers: Record<string, string>) =>
        new Promise<number>((resolve, reject) => {
          const ws = new WebSocket(r.wsUrl(id), { headers: { cookie: user.cookie, ...headers } });
          ws.on('unexpected-response', (_req, res) => {
            resolve(res.statusCode ?? 0);
            ws.terminate();
          });
          ws.on('open', () => {
            resolve(101);
            ws.close();
          });
          ws.on('error', reject);
        });
      expect(await upgrade({ origin: 'https://evil.example', ...forged })).toBe(403);
      expect(await upgrade({ origin: 'https://127.0.0.1:8080', 'x-forwarded-proto': 'https' })).toBe(403);
      expect(await upgrade({ origin, ...forged })).toBe(101);
    });
  }
});
