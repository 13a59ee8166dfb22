/** SECURITY-TESTS A01: password guessing is throttled per account and per IP, without a permanent lockout. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hash } from '@node-rs/argon2';
import { startAuthApp, testPassword, type AuthTestApp } from '../integration/server/auth/auth-test-app.js';

describe('A01 sign-in throttling', () => {
  let t: AuthTestApp;
  beforeAll(async () => {
    t = await startAuthApp({
      auth: {
        maxFailuresPerAccount: 5,
        maxFailuresPerIp: 30,
        throttleBaseDelayS: 30,
        throttleMaxDelayS: 900,
      },
    });
    await t.createUser('victim');
  });
  afterAll(() => t.close());

  it('A01 20 wrong passwords → 429 with Retry-After; the owner gets in once the backoff has passed', async () => {
    const statuses: number[] = [];
    let retryAfter = '';
    for (let i = 0; i < 20; i++) {
      const res = await t.post(
        '/api/auth/login',
        { username: 'victim', password: `guess number ${i}` },
        undefined,
        {
          remoteAddress: '203.0.113.7',
        },
      );
      statuses.push(res.statusCode);
      if (res.statusCode === 429) {
        retryAfter = res.headers['retry-after'] as string;
        expect(res.json()).toMatchObject({
          code: 'COVE_ERR_AUTH_THROTTLED',
          retryAfterS: Number(retryAfter),
        });
      }
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual(Array(15).fill(429));
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(30);

    // Even the right password waits while the account is backing off (from any address).
    const blocked = await t.login('victim');
    expect(blocked.statusCode).toBe(429);
    expect(t.cookieOf(blocked)).toBeUndefined();

    t.clock.advance(Number(retryAfter) * 1000);
    const ok = await t.login('victim');
    expect(ok.statusCode).toBe(200);
    expect(t.cookieOf(ok)).toBeDefined();
  });

  it('A01 backs off exponentially up to the maximum, and never locks out for good', async () => {
    await t.createUser('wendy');
    const delays: number[] = [];
    for (let round = 0; round < 8; round++) {
      for (;;) {
        const res = await t.post(
          '/api/auth/login',
          { username: 'wendy', password: 'wrong password!' },
          undefined,
          {
            remoteAddress: `198.51.100.${round}`,
          },
        );
        if (res.statusCode === 429) {
          delays.push(Number(res.headers['retry-after']));
          t.clock.advance(Number(res.headers['retry-after']) * 1000);
          break;
        }
        expect(res.statusCode).toBe(401);
      }
    }
    expect(delays).toEqual([30, 60, 120, 240, 480, 900, 900, 900]);
    expect((await t.login('wendy')).statusCode).toBe(200);
  });

  it('A01 throttles unknown user names exactly like real ones (no account discovery)', async () => {
    const seq = async (username: string, ip: string) => {
      const out: string[] = [];
      for (let i = 0; i < 7; i++) {
        const res = await t.post('/api/auth/login', { username, password: 'bad password value' }, undefined, {
          remoteAddress: ip,
        });
        out.push(
          `${res.statusCode}:${res.headers['retry-after'] ?? ''}:${(res.json() as { code: string }).code}`,
        );
      }
      return out;
    };
    await t.createUser('xavier');
    expect(await seq('xavier', '192.0.2.10')).toEqual(await seq('no-such-user-xyz', '192.0.2.11'));
  });

  it('A01 throttles one IP trying many accounts (200 users × 3 passwords), not other IPs', async () => {
    const passwordHash = await hash(testPassword, { algorithm: 2, memoryCost: 1024, timeCost: 1 });
    for (let i = 0; i < 200; i++) await t.store.users.create({ username: `student${i}`, passwordHash });
    const attacker = '203.0.113.99';
    let firstThrottled = -1;
    let attempts = 0;
    outer: for (let i = 0; i < 200; i++) {
      for (let p = 0; p < 3; p++) {
        attempts++;
        const res = await t.post(
          '/api/auth/login',
          { username: `student${i}`, password: `spray-${p}-password` },
          undefined,
          {
            remoteAddress: attacker,
          },
        );
        if (res.statusCode === 429) {
          firstThrottled = attempts;
          break outer;
        }
      }
    }
    // maxFailuresPerIp is 30: the 31st attempt is refused.
    expect(firstThrottled).toBe(31);
    const stillBlocked = await t.post(
      '/api/auth/login',
      { username: 'student150', password: testPassword },
      undefined,
      {
        remoteAddress: attacker,
      },
    );
    expect(stillBlocked.statusCode).toBe(429);
    const elsewhere = await t.post(
      '/api/auth/login',
      { username: 'student150', password: testPassword },
      undefined,
      {
        remoteAddress: '192.0.2.200',
      },
    );
    expect(elsewhere.statusCode).toBe(200);
  });

  it('A01 takes similar time for an unknown user as for a wrong password', async () => {
    // Real argon2 cost here: the dummy hash must cost what a real one does.
    const timed = await startAuthApp({
      auth: {
        argon2MemoryKiB: 16384,
        argon2TimeCost: 2,
        maxFailuresPerAccount: 1000,
        maxFailuresPerIp: 1000,
      },
    });
    try {
      const user = await timed.store.users.create({ username: 'tina' });
      const { Argon2PasswordHasher } = await import('../../server/auth/password-hasher.js');
      await timed.store.users.update(user.id, {
        passwordHash: await new Argon2PasswordHasher(timed.config.auth).hash(testPassword),
      });
      const median = async (username: string) => {
        const times: number[] = [];
        for (let i = 0; i < 9; i++) {
          const start = performance.now();
          const res = await timed.login(username, 'definitely wrong pw');
          times.push(performance.now() - start);
          expect(res.statusCode).toBe(401);
        }
        return times.sort((a, b) => a - b)[4] as number;
      };
      await median('nobody'); // warm-up: the dummy hash is computed on first use
      const unknown = await median('nobody');
      const wrong = await median('tina');
      expect(unknown / wrong).toBeGreaterThan(0.5);
      expect(unknown / wrong).toBeLessThan(2);
    } finally {
      await timed.close();
    }
  });
});
