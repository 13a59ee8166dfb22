import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import { migrations } from '../../../../server/store/migrations.js';
import { CoveError } from '../../../../server/errors.js';

let dir: string;
let store: SqliteStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cove-store-'));
  store = new SqliteStore(join(dir, 'cove.db'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SqliteStore', () => {
  it('applies every migration once and records the version', async () => {
    expect(store.schemaVersion).toBe(migrations.length);
    await store.close();
    store = new SqliteStore(join(dir, 'cove.db'));
    expect(store.schemaVersion).toBe(migrations.length);
  });

  it('keeps users unique by their stored (normalized) name', async () => {
    await store.users.create({ username: 'alice' });
    await expect(store.users.create({ username: 'alice' })).rejects.toThrow(/UNIQUE/);
    expect(await store.users.count()).toBe(1);
  });

  it('claims a TOTP step only once, and only forward', async () => {
    const user = await store.users.create({ username: 'bob' });
    expect(await store.users.claimTotpStep(user.id, 100)).toBe(true);
    expect(await store.users.claimTotpStep(user.id, 100)).toBe(false);
    expect(await store.users.claimTotpStep(user.id, 99)).toBe(false);
    expect(await store.users.claimTotpStep(user.id, 101)).toBe(true);
    await store.users.resetMfa(user.id);
    expect((await store.users.get(user.id))?.totpLastStep).toBe(0);
  });

  it('rotates a session to a new id and forgets the old one', async () => {
    const user = await store.users.create({ username: 'carol' });
    await store.sessions.create({ idHash: 'a', userId: user.id, stage: 'mfa', createdAt: 1, expiresAt: 10 });
    expect(await store.sessions.incrementMfaFailures('a')).toBe(1);
    expect(
      await store.sessions.rotate('a', { idHash: 'b', stage: 'full', createdAt: 2, expiresAt: 20 }),
    ).toBe(true);
    expect(await store.sessions.get('a')).toBeUndefined();
    expect(await store.sessions.get('b')).toMatchObject({ userId: user.id, stage: 'full', mfaFailures: 0 });
    expect(
      await store.sessions.rotate('a', { idHash: 'c', stage: 'full', createdAt: 2, expiresAt: 20 }),
    ).toBe(false);
    expect(await store.sessions.deleteForUser(user.id)).toEqual(['b']);
  });

  it('links a federated identity once, finds it, and drops it with the user', async () => {
    const user = await store.users.create({ username: 'fed', source: 'oidc:corp' });
    expect(user.source).toBe('oidc:corp');
    expect((await store.users.create({ username: 'loc' })).source).toBe('local');
    expect(await store.identities.link({ providerId: 'corp', subject: 's-1', userId: user.id })).toBe(true);
    const other = await store.users.create({ username: 'other' });
    expect(await store.identities.link({ providerId: 'corp', subject: 's-1', userId: other.id })).toBe(false);
    expect(await store.identities.get('corp', 's-1')).toMatchObject({ userId: user.id });
    expect(await store.identities.get('other-idp', 's-1')).toBeUndefined();
    expect((await store.identities.listFor(user.id)).map((i) => i.subject)).toEqual(['s-1']);
    await store.users.delete(user.id);
    expect(await store.identities.get('corp', 's-1')).toBeUndefined();
  });

  it('hands out an OIDC sign-in in flight once, and never after it expired', async () => {
    const login = {
      idHash: 'h1',
      providerId: 'corp',
      state: 'st',
      nonce: 'no',
      codeVerifier: 'cv',
      next: '/',
      expiresAt: 100,
    };
    await store.oidcLogins.create(login);
    expect(await store.oidcLogins.take('h1', 50)).toEqual(login);
    expect(await store.oidcLogins.take('h1', 50)).toBeUndefined();
    await store.oidcLogins.create({ ...login, idHash: 'h2' });
    expect(await store.oidcLogins.take('h2', 100)).toBeUndefined();
    await store.oidcLogins.create({ ...login, idHash: 'h3', expiresAt: 10 });
    await store.oidcLogins.create({ ...login, idHash: 'h4', expiresAt: 1000 });
    expect(await store.oidcLogins.deleteExpired(50)).toBe(1);
    expect(await store.oidcLogins.take('h4', 50)).toMatchObject({ idHash: 'h4' });
  });

  it('keeps what a federated session signed in with across a rotation', async () => {
    const user = await store.users.create({ username: 'dora' });
    await store.sessions.create({
      idHash: 'x',
      userId: user.id,
      stage: 'mfa',
      createdAt: 1,
      expiresAt: 10,
      providerId: 'corp',
      idToken: 'eyJ.token',
    });
    await store.sessions.rotate('x', { idHash: 'y', stage: 'full', createdAt: 2, expiresAt: 20 });
    expect(await store.sessions.get('y')).toMatchObject({
      providerId: 'corp',
      mfaByIdp: false,
      idToken: 'eyJ.token',
    });
    await store.sessions.create({ idHash: 'z', userId: user.id, stage: 'full', createdAt: 1, expiresAt: 10 });
    expect(await store.sessions.get('z')).toMatchObject({ providerId: null, mfaByIdp: false, idToken: null });
  });

  it('consumes an invite once', async () => {
    const user = await store.users.create({ username: 'dan' });
    await store.invites.create({ tokenHash: 'h', userId: user.id, expiresAt: 100 });
    expect(await store.invites.consume('h', 5)).toBe(true);
    expect(await store.invites.consume('h', 6)).toBe(false);
  });

  it('cascades directory deletes to memberships and assignments', async () => {
    const user = await store.users.create({ username: 'erin' });
    const group = await store.groups.create({ name: 'class-a' });
    await store.groups.setMembers(group.id, [user.id]);
    await store.accounts.create({ accountId: '123456789012', name: 'sandbox' });
    const set = await store.permissionSets.create({
      name: 'ReadOnlyAccess',
      sessionDurationS: 3600,
      roleArnTemplate: 'arn:aws:iam::{accountId}:role/x',
    });
    await store.assignments.create({
      principalType: 'group',
      principalId: group.id,
      accountId: '123456789012',
      permissionSetId: set.id,
    });
    expect((await store.groups.groupsOf(user.id)).map((g) => g.name)).toEqual(['class-a']);
    await store.accounts.delete('123456789012');
    expect(await store.assignments.list()).toEqual([]);
    await store.groups.delete(group.id);
    expect(await store.groups.groupsOf(user.id)).toEqual([]);
  });

  it('rolls a transaction back as a whole', async () => {
    await expect(
      store.transaction(async () => {
        await store.groups.create({ name: 'g1' });
        await store.groups.create({ name: 'g1' });
      }),
    ).rejects.toThrow();
    expect(await store.groups.list()).toEqual([]);
  });

  it('pages the audit log newest first', async () => {
    for (let i = 0; i < 5; i++)
      await store.audit.append({
        actorId: null,
        actorName: 'system',
        action: `a${i}`,
        target: null,
        details: { i },
        ip: null,
      });
    const first = await store.audit.list({ limit: 2 });
    expect(first.map((e) => e.action)).toEqual(['a4', 'a3']);
    const next = await store.audit.list({ limit: 2, beforeId: first[1]?.id ?? 0 });
    expect(next.map((e) => e.action)).toEqual(['a2', 'a1']);
    expect(next[0]?.details).toEqual({ i: 2 });
  });

  it('answers 503 (not a crash) when the database is full, says the disk is full, and keeps what it had', async () => {
    await store.groups.create({ name: 'kept' });
    // Cap the file at its current size: the next insert that needs a page fails with SQLITE_FULL.
    const db = (store as unknown as { db: { pragma(sql: string, o?: object): unknown } }).db;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const failure = await store.audit
      .append({
        actorId: null,
        actorName: null,
        action: 'x',
        target: null,
        details: { pad: 'x'.repeat(200_000) },
        ip: null,
      })
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(CoveError);
    expect((failure as CoveError).statusCode).toBe(503);
    expect((failure as CoveError).code).toBe('COVE_ERR_STORE_DISK_FULL');
    expect((await store.groups.list()).map((g) => g.name)).toEqual(['kept']);
  });
});
