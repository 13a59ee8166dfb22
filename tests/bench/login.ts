/**
 * Sign-in latency with the production argon2 cost: a real server on 127.0.0.1, real SQLite, real
 * HTTP. Prints p50/p95 for good sign-ins and for unknown users (which must cost the same).
 * Run: npx tsx tests/bench/login.ts [count]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildApp } from '../../server/app.js';
import { Argon2PasswordHasher } from '../../server/auth/password-hasher.js';
import { buildConfig } from '../../server/config.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';

export interface LoginBenchResult {
  readonly argon2MemoryKiB: number;
  readonly argon2TimeCost: number;
  readonly count: number;
  readonly loginMs: { p50: number; p95: number; min: number; max: number };
  readonly unknownUserMs: { p50: number; p95: number; min: number; max: number };
}

function summary(samples: number[]): LoginBenchResult['loginMs'] {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) =>
    Number((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0).toFixed(1));
  return { p50: at(0.5), p95: at(0.95), min: at(0), max: at(1) };
}

export async function benchLogin(count = 20): Promise<LoginBenchResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cove-bench-login-'));
  // Production defaults for the argon2 cost; the per-IP throttle is lifted because every
  // unknown-user sample is a failure from the same address.
  const config = buildConfig(
    { dataDir, logLevel: 'silent', port: 0, auth: { maxFailuresPerIp: 1_000_000 } },
    {},
  );
  const store = new SqliteStore(join(dataDir, 'cove.db'));
  const password = 'benchmark password 123';
  const hasher = new Argon2PasswordHasher(config.auth);
  await store.users.create({ username: 'bench', passwordHash: await hasher.hash(password) });
  const app = await buildApp({ config, store });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  // The CSRF check wants the configured public origin, whatever port the OS gave us.
  const origin = config.publicUrl;

  const login = async (username: string) => {
    const started = performance.now();
    const res = await fetch(`${url}/api/auth/login`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    await res.arrayBuffer();
    return { ms: performance.now() - started, status: res.status };
  };

  try {
    for (let i = 0; i < 3; i++) await login('bench');
    await login('warm-up-unknown');
    const good: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < count; i++) {
      const ok = await login('bench');
      if (ok.status !== 200) throw new Error(`sign-in failed with ${ok.status}`);
      good.push(ok.ms);
      // A fresh name each time keeps the per-account throttle out of the measurement.
      const miss = await login(`nobody-${i}`);
      if (miss.status !== 401) throw new Error(`unknown user answered ${miss.status}`);
      unknown.push(miss.ms);
    }
    return {
      argon2MemoryKiB: config.auth.argon2MemoryKiB,
      argon2TimeCost: config.auth.argon2TimeCost,
      count,
      loginMs: summary(good),
      unknownUserMs: summary(unknown),
    };
  } finally {
    await app.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchLogin(Number(process.argv[2] ?? 20));
  console.log(JSON.stringify(result, null, 2));
}
