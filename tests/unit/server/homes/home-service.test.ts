/**
 * HomeService without loop mounts: which size a new home gets (groups, region, default), how
 * volume failures become coded errors, and the page's view with its expiry date. The volumes are
 * a recording fake; the store is a real SQLite file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../../../server/config.js';
import { HomeService } from '../../../../server/homes/home-service.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import { FakeHomeVolumes as FakeVolumes } from './fake-home-volumes.js';

const MiB = 1024 ** 2;
const dayMs = 86_400_000;

describe('HomeService', () => {
  let dir: string;
  let store: SqliteStore;
  const config = buildConfig({
    regions: [
      { id: 'us-east-1', name: 'US East' },
      { id: 'eu-west-1', name: 'Europe', homeSizeBytes: 512 * MiB },
    ],
    homes: { sizeBytes: 256 * MiB, retentionDays: 30 },
  });
  const log = pino({ level: 'silent' });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cove-home-service-'));
    store = new SqliteStore(join(dir, 'cove.db'));
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sizes a new home by the largest group size, else the region, else the default', async () => {
    const volumes = new FakeVolumes();
    const homes = new HomeService({ volumes, config, store, log });
    const student = await store.users.create({ username: 'student' });
    const plain = await store.users.create({ username: 'plain' });
    const small = await store.groups.create({ name: 'small', homeSizeBytes: 128 * MiB });
    const big = await store.groups.create({ name: 'class', homeSizeBytes: 2048 * MiB });
    await store.groups.create({ name: 'unset' });
    await store.groups.addMember(small.id, student.id);
    await store.groups.addMember(big.id, student.id);

    expect(await homes.sizeFor({ ownerId: student.id, region: 'us-east-1' })).toBe(2048 * MiB);
    expect(await homes.sizeFor({ ownerId: plain.id, region: 'eu-west-1' })).toBe(512 * MiB);
    expect(await homes.sizeFor({ ownerId: plain.id, region: 'us-east-1' })).toBe(256 * MiB);
    await store.groups.update(big.id, { homeSizeBytes: null });
    expect(await homes.sizeFor({ ownerId: student.id, region: 'eu-west-1' })).toBe(128 * MiB);
    await homes.ensure({ ownerId: student.id, region: 'eu-west-1' });
    expect(volumes.sizes).toEqual([128 * MiB]);
  });

  it.each([
    ['capacity', 507, 'COVE_ERR_HOME_CAPACITY'],
    ['not-root', 503, 'COVE_ERR_HOME_NOT_SUPPORTED'],
    ['mount-failed', 503, 'COVE_ERR_HOME_MOUNT_FAILED'],
    ['busy', 409, 'COVE_ERR_HOME_BUSY'],
  ] as const)('maps %s to %d %s without leaking the host path', async (reason, status, code) => {
    const volumes = new FakeVolumes();
    volumes.failWith = reason;
    const homes = new HomeService({ volumes, config, store, log });
    const error = (await homes.ensure({ ownerId: 'u1', region: 'us-east-1' }).catch((e: unknown) => e)) as {
      statusCode: number;
      code: string;
      message: string;
    };
    expect(error).toMatchObject({ statusCode: status, code });
    expect(error.message).not.toContain('/srv');
  });

  it('never hands out a home that is not mounted (Docker would bind the bare mount point)', async () => {
    const volumes = new FakeVolumes();
    volumes.mounted = false;
    const homes = new HomeService({ volumes, config, store, log });
    await expect(homes.ensure({ ownerId: 'u2', region: 'us-east-1' })).rejects.toMatchObject({
      code: 'COVE_ERR_HOME_MOUNT_FAILED',
      statusCode: 503,
    });
  });

  it('shows usage and an expiry date of last use + retention; null without a home or with homes disabled', async () => {
    const volumes = new FakeVolumes();
    const homes = new HomeService({ volumes, config, store, log });
    const key = { ownerId: 'u3', region: 'us-east-1' };
    expect(await homes.view(key)).toBeNull();
    await homes.ensure(key);
    expect(await homes.view(key)).toEqual({
      usedBytes: 10 * MiB,
      totalBytes: 90 * MiB,
      sizeBytes: 256 * MiB,
      lastUsedAt: new Date(1_000).toISOString(),
      expiresAt: new Date(1_000 + 30 * dayMs).toISOString(),
    });
    const disabled = new HomeService({ config, store, log });
    expect(disabled.enabled).toBe(false);
    expect(await disabled.view(key)).toBeNull();
    expect(await disabled.adminList()).toEqual([]);
    await expect(disabled.prepare(key)).resolves.toBeUndefined();
  });
});
