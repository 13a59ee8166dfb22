/**
 * SECURITY-TESTS F08 for homes: recording a home's last-use time is best effort. When the host's
 * disk is too full to write it, a home that exists and is mounted is still handed out (the request
 * does not fail) and the failure is logged. Fake volumes; the store is a real SQLite file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../../../server/config.js';
import { HomeService } from '../../../../server/homes/home-service.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import type { EnvironmentKey } from '../../../../sandbox/index.js';
import { FakeHomeVolumes } from './fake-home-volumes.js';

/** What LoopHomeVolumes.ensure answers when the meta file cannot be written (ENOSPC). */
class FullDiskVolumes extends FakeHomeVolumes {
  override async ensure(key: EnvironmentKey, sizeBytes: number) {
    const made = await super.ensure(key, sizeBytes);
    const lastUseError = Object.assign(new Error('ENOSPC: no space left on device, open meta.json.tmp'), {
      code: 'ENOSPC',
    });
    return { ...made, created: false, lastUseError };
  }
}

describe('HomeService last-use time on a full disk', () => {
  let dir: string;
  let store: SqliteStore;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cove-home-last-use-'));
    store = new SqliteStore(join(dir, 'cove.db'));
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('F08 a home whose last-use time cannot be written is still ready, and the failure is logged', async () => {
    const lines: { level: number; msg: string; err?: { code?: string } }[] = [];
    const log = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(JSON.parse(chunk.toString('utf8')) as (typeof lines)[number]);
          done();
        },
      }),
    );
    const config = buildConfig({ regions: [{ id: 'us-east-1', name: 'US East' }] });
    const homes = new HomeService({ volumes: new FullDiskVolumes(), config, store, log });
    const key = { ownerId: 'alice-id', region: 'us-east-1' };

    await expect(homes.ensure(key)).resolves.toEqual({
      kind: 'host-directory',
      path: '/srv/homes/mnt/us-east-1_alice-id',
    });
    await expect(homes.prepare(key)).resolves.toBeUndefined();
    expect(lines.map((l) => [l.level, l.msg, l.err?.code])).toEqual([
      [40, 'could not record the home last-use time', 'ENOSPC'],
      [40, 'could not record the home last-use time', 'ENOSPC'],
    ]);
  });
});
