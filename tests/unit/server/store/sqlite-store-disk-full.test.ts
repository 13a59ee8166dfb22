/**
 * SECURITY-TESTS F08 in the store: SQLITE_FULL is the server's disk being full, said as such
 * (503 COVE_ERR_STORE_DISK_FULL), not as "cannot reach its database"; reads keep working and the
 * failed write left nothing behind. A real SQLite file whose connection is capped with
 * `max_page_count` (SQLite's own SQLITE_FULL, without filling a disk; tests/security/
 * host-disk-full.test.ts fills a real one).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoveError } from '../../../../server/errors.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';

describe('SqliteStore on a full disk', () => {
  let dir: string;
  let store: SqliteStore;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cove-store-full-'));
    store = new SqliteStore(join(dir, 'cove.db'));
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('F08 a write that does not fit is a 503 COVE_ERR_STORE_DISK_FULL; reads still work; nothing half-written', async () => {
    const alice = await store.users.create({ username: 'alice' });
    // The test reaches the store's own connection: max_page_count is per connection.
    const db = (store as unknown as { db: Database.Database }).db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);

    const big = 'x'.repeat(64 * 1024);
    const refused = await store.audit
      .append({
        action: 'test.fill',
        actorId: alice.id,
        actorName: 'alice',
        target: null,
        details: { big },
        ip: null,
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refused).toBeInstanceOf(CoveError);
    expect((refused as CoveError).statusCode).toBe(503);
    expect((refused as CoveError).toJSON()).toEqual({
      code: 'COVE_ERR_STORE_DISK_FULL',
      message:
        "Cove's server is out of disk space, so it cannot save changes right now; nothing was changed. Open terminals keep working. Try again later, and tell your administrator if it keeps happening.",
    });
    expect(((refused as CoveError).cause as { code?: string }).code).toBe('SQLITE_FULL');

    expect((await store.users.get(alice.id))?.username).toBe('alice');
    expect(await store.audit.list({ action: 'test.fill' })).toEqual([]);
    expect(await store.ping()).toBe(true);

    // Room again: the same write works.
    db.pragma('max_page_count = 1073741823');
    await store.audit.append({
      action: 'test.fill',
      actorId: alice.id,
      actorName: 'alice',
      target: null,
      details: { big },
      ip: null,
    });
    expect(await store.audit.list({ action: 'test.fill' })).toHaveLength(1);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('F08 a busy database is still "cannot reach its database" (only a full disk changed)', async () => {
    const other = new (await import('better-sqlite3')).default(join(dir, 'cove.db'));
    try {
      other.exec('BEGIN IMMEDIATE');
      const db = (store as unknown as { db: Database.Database }).db;
      db.pragma('busy_timeout = 0');
      const refused = await store.users.create({ username: 'bob' }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect((refused as CoveError).code).toBe('COVE_ERR_STORE_UNAVAILABLE');
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
  });
});
