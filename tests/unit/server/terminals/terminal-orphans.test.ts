/** After a restart, environments that still run without any terminal are stopped after the idle timeout. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../../server/app.js';
import { buildConfig } from '../../../../server/config.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import { FakeSandboxDriver } from '../environments/fake-sandbox-driver.js';

describe('environments left from before a restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cove-orphans-'));
  const store = new SqliteStore(join(dir, 'cove.db'));
  let app: FastifyInstance | undefined;

  afterAll(async () => {
    vi.useRealTimers();
    await app?.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops a running environment with no terminal after the idle timeout, and leaves stopped ones alone', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const driver = new FakeSandboxDriver();
    const spec = (ownerId: string) => ({
      ownerId,
      region: 'us-east-1',
      image: 'cove/sandbox:latest',
      limits: { pidsLimit: 64, memoryBytes: 64 * 1024 ** 2, cpuMillis: 100, tmpSizeBytes: 1024 ** 2 },
    });
    await driver.ensure(spec('left-running'));
    await driver.ensure(spec('left-stopped'));
    await driver.stop({ ownerId: 'left-stopped', region: 'us-east-1' });
    const config = buildConfig({
      logLevel: 'silent',
      sandbox: { graceS: 1, idleTimeoutS: 60, idleWarningS: 10 },
    });
    app = await buildApp({ config, store, driverFactory: () => driver });
    await app.ready();
    vi.advanceTimersByTime(59_000);
    expect(driver.calls).not.toContain('stop us-east-1/left-running');
    vi.advanceTimersByTime(1_000);
    vi.useRealTimers();
    await new Promise((r) => setTimeout(r, 20));
    expect(driver.calls.filter((c) => c === 'stop us-east-1/left-running')).toHaveLength(1);
    expect(driver.calls.filter((c) => c === 'stop us-east-1/left-stopped')).toHaveLength(1);
    expect(driver.calls.some((c) => c.startsWith('remove'))).toBe(false);
  });
});
