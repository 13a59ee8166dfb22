/**
 * One contract for every Store implementation (docs: DESIGN "Storage"): the same cases run against
 * SQLite and PostgreSQL (store-contract.test.ts), each on a real database. A harness gives the
 * contract what differs between engines: how to get a fresh database, raw SQL on it, how its
 * schema version is recorded, and how to make it unable to serve for a while.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CoveError, StoreError } from '../../../../server/errors.js';
import { latestSchemaVersion, migrations } from '../../../../server/store/migrations.js';
import type { NewRecording, RecordingQuery, Store } from '../../../../server/store/store.js';

export interface StoreHarness {
  readonly dialect: 'sqlite' | 'postgres';
  /** Switches to a new, empty database; later calls work on it. */
  freshDatabase(): Promise<void>;
  /** A new store on the current database (which migrates it). */
  open(): Promise<Store>;
  /** Raw SQL on the current database, through a connection of the harness's own. */
  exec(sql: string): Promise<void>;
  /** Records `version` as applied, the way the engine's store does. */
  recordVersion(version: number): Promise<void>;
  /** The schema version the current database records. */
  schemaVersion(): Promise<number>;
  /** Makes the database unable to serve writes; the returned function brings it back. */
  outage(store: Store): Promise<() => Promise<void>>;
  dispose(): Promise<void>;
}

const rejection = (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );

const entry = (action: string, details: Record<string, unknown> = {}) => ({
  actorId: null,
  actorName: 'system',
  action,
  target: null,
  details,
  ip: null,
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function storeContract(makeHarness: () => Promise<StoreHarness>): void {
  let harness: StoreHarness;
  let store: Store;
  const opened: Store[] = [];
  const open = async () => {
    const s = await harness.open();
    opened.push(s);
    return s;
  };

  beforeAll(async () => {
    harness = await makeHarness();
  });
  afterAll(async () => {
    await harness.dispose();
  });
  beforeEach(async () => {
    await harness.freshDatabase();
    store = await open();
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  describe('schema', () => {
    it('applies every migration once and records the version; opening again changes nothing', async () => {
      expect(await harness.schemaVersion()).toBe(latestSchemaVersion);
      await store.users.create({ username: 'kept' });
      const again = await open();
      expect(await harness.schemaVersion()).toBe(latestSchemaVersion);
      expect((await again.users.list()).map((u) => u.username)).toEqual(['kept']);
    });

    it('upgrades a database an older Cove left at version 2, keeping its rows', async () => {
      await harness.freshDatabase();
      for (const m of migrations.slice(0, 2)) await harness.exec(m[harness.dialect]);
      for (const v of [1, 2]) await harness.recordVersion(v);
      await harness.exec(
        "INSERT INTO users (id, username, created_at) VALUES ('u-old', 'old-alice', 1000); " +
          "INSERT INTO groups (id, name, created_at, home_size_bytes) VALUES ('g-old', 'old-group', 2000, 5368709120)",
      );
      const upgraded = await open();
      expect(await harness.schemaVersion()).toBe(latestSchemaVersion);
      expect(await upgraded.users.get('u-old')).toMatchObject({
        username: 'old-alice',
        createdAt: 1000,
        disabled: false,
      });
      expect(await upgraded.groups.get('g-old')).toEqual({
        id: 'g-old',
        name: 'old-group',
        description: '',
        homeSizeBytes: 5368709120,
        weeklyUsageLimitS: null,
        record: 'off',
        createdAt: 2000,
      });
      // Version 3's and 4's tables exist now.
      await upgraded.usage.add([{ userId: 'u-old', weekStart: 0, seconds: 5 }]);
      expect(await upgraded.usage.get('u-old', 0)).toBe(5);
      await upgraded.terminals.save({ id: 't1', ownerId: 'u-old', region: 'eu-west-1', createdAt: 1 });
      expect(await upgraded.terminals.list()).toHaveLength(1);
    });

    it('upgrades a database at version 7 (before OIDC): old users are local, old sessions password ones', async () => {
      await harness.freshDatabase();
      for (const m of migrations.slice(0, 7)) await harness.exec(m[harness.dialect]);
      for (const v of [1, 2, 3, 4, 5, 6, 7]) await harness.recordVersion(v);
      await harness.exec(
        "INSERT INTO users (id, username, created_at) VALUES ('u-old', 'old-bob', 1000); " +
          "INSERT INTO sessions (id_hash, user_id, stage, created_at, expires_at) VALUES ('s-old', 'u-old', 'full', 1, 10)",
      );
      const upgraded = await open();
      expect(await harness.schemaVersion()).toBe(latestSchemaVersion);
      expect(await upgraded.users.get('u-old')).toMatchObject({ username: 'old-bob', source: 'local' });
      expect(await upgraded.sessions.get('s-old')).toMatchObject({
        userId: 'u-old',
        providerId: null,
        mfaByIdp: false,
        idToken: null,
      });
      // Version 5's tables exist now.
      expect(await upgraded.identities.link({ providerId: 'corp', subject: 's', userId: 'u-old' })).toBe(
        true,
      );
      expect(await upgraded.oidcLogins.deleteExpired(0)).toBe(0);
    });

    it('refuses a database a newer Cove has migrated, naming both versions', async () => {
      await harness.recordVersion(latestSchemaVersion + 1);
      const refused = await rejection(open());
      expect(refused).toBeInstanceOf(CoveError);
      expect((refused as CoveError).code).toBe('COVE_ERR_STORE_SCHEMA_NEWER');
      expect((refused as CoveError).message).toContain(`version ${latestSchemaVersion + 1}`);
      expect((refused as CoveError).message).toContain(`up to ${latestSchemaVersion}`);
    });

    it('lets several stores open one new database at once; each migration runs once', async () => {
      await harness.freshDatabase();
      const stores = await Promise.all([open(), open(), open()]);
      expect(await harness.schemaVersion()).toBe(latestSchemaVersion);
      const [a, b] = stores as [Store, Store, Store];
      await a.users.create({ username: 'one' });
      expect((await b.users.list()).map((u) => u.username)).toEqual(['one']);
    });
  });

  describe('users', () => {
    it('creates, reads, lists in name order, counts, updates and deletes', async () => {
      const bob = await store.users.create({ username: 'bob', email: 'bob@example.com', mfaRequired: true });
      const alice = await store.users.create({
        username: 'alice',
        passwordHash: 'h',
        mustChangePassword: true,
      });
      expect(bob).toMatchObject({
        username: 'bob',
        email: 'bob@example.com',
        passwordHash: null,
        disabled: false,
        mustChangePassword: false,
        mfaRequired: true,
        totpSecret: null,
        totpPendingSecret: null,
        totpLastStep: 0,
        lastLoginAt: null,
        source: 'local',
      });
      expect(typeof bob.createdAt).toBe('number');
      expect(alice).toMatchObject({
        passwordHash: 'h',
        mustChangePassword: true,
        mfaRequired: false,
        email: null,
      });
      expect(await store.users.get(bob.id)).toEqual(bob);
      expect(await store.users.getByUsername('alice')).toEqual(alice);
      expect(await store.users.getByUsername('nobody')).toBeUndefined();
      expect(await store.users.get('no-such-id')).toBeUndefined();
      expect((await store.users.list()).map((u) => u.username)).toEqual(['alice', 'bob']);
      expect(await store.users.count()).toBe(2);

      const updated = await store.users.update(bob.id, {
        disabled: true,
        email: null,
        totpSecret: 'SECRET',
        totpPendingSecret: 'PENDING',
        lastLoginAt: 1_750_000_000_123,
        mustChangePassword: true,
      });
      expect(updated).toEqual({
        ...bob,
        disabled: true,
        email: null,
        totpSecret: 'SECRET',
        totpPendingSecret: 'PENDING',
        lastLoginAt: 1_750_000_000_123,
        mustChangePassword: true,
      });
      expect(await store.users.update(bob.id, {})).toEqual(updated);
      expect(await store.users.update('no-such-id', { disabled: true })).toBeUndefined();

      await store.users.resetMfa(bob.id);
      expect(await store.users.get(bob.id)).toMatchObject({
        totpSecret: null,
        totpPendingSecret: null,
        totpLastStep: 0,
      });
      expect(await store.users.delete(bob.id)).toBe(true);
      expect(await store.users.delete(bob.id)).toBe(false);
      expect(await store.users.count()).toBe(1);
    });

    it('keeps users unique by their stored name: the second is a conflict StoreError (409)', async () => {
      await store.users.create({ username: 'alice' });
      const refused = await rejection(store.users.create({ username: 'alice' }));
      expect(refused).toBeInstanceOf(StoreError);
      expect(refused).toMatchObject({ kind: 'conflict', code: 'COVE_ERR_STORE_CONFLICT', statusCode: 409 });
      expect(await store.users.count()).toBe(1);
    });

    it('claims a TOTP step only once, and only forward', async () => {
      const user = await store.users.create({ username: 'bob' });
      expect(await store.users.claimTotpStep(user.id, 100)).toBe(true);
      expect(await store.users.claimTotpStep(user.id, 100)).toBe(false);
      expect(await store.users.claimTotpStep(user.id, 99)).toBe(false);
      expect(await store.users.claimTotpStep(user.id, 101)).toBe(true);
      expect((await store.users.get(user.id))?.totpLastStep).toBe(101);
      expect(await store.users.claimTotpStep('no-such-id', 500)).toBe(false);
    });

    it('lets exactly one of concurrent claims of the same TOTP step win', async () => {
      const user = await store.users.create({ username: 'racer' });
      for (const step of [1000, 1001, 1002]) {
        const results = await Promise.all(
          Array.from({ length: 4 }, () => store.users.claimTotpStep(user.id, step)),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      }
    });
  });

  describe('sessions', () => {
    it('creates, rotates to a new id, counts MFA failures, and deletes', async () => {
      const user = await store.users.create({ username: 'carol' });
      await store.sessions.create({
        idHash: 'a',
        userId: user.id,
        stage: 'mfa',
        createdAt: 1,
        expiresAt: 10,
      });
      expect(await store.sessions.get('a')).toEqual({
        idHash: 'a',
        userId: user.id,
        stage: 'mfa',
        createdAt: 1,
        expiresAt: 10,
        mfaFailures: 0,
        providerId: null,
        mfaByIdp: false,
        idToken: null,
      });
      expect(await store.sessions.incrementMfaFailures('a')).toBe(1);
      expect(await store.sessions.incrementMfaFailures('a')).toBe(2);
      expect(await store.sessions.incrementMfaFailures('missing')).toBe(0);
      expect(
        await store.sessions.rotate('a', { idHash: 'b', stage: 'full', createdAt: 2, expiresAt: 20 }),
      ).toBe(true);
      expect(await store.sessions.get('a')).toBeUndefined();
      expect(await store.sessions.get('b')).toMatchObject({
        userId: user.id,
        stage: 'full',
        mfaFailures: 0,
        expiresAt: 20,
      });
      expect(
        await store.sessions.rotate('a', { idHash: 'c', stage: 'full', createdAt: 2, expiresAt: 20 }),
      ).toBe(false);
      await store.sessions.create({
        idHash: 'd',
        userId: user.id,
        stage: 'full',
        createdAt: 3,
        expiresAt: 30,
      });
      expect((await store.sessions.deleteForUser(user.id)).sort()).toEqual(['b', 'd']);
      expect(await store.sessions.deleteForUser(user.id)).toEqual([]);
      await store.sessions.create({
        idHash: 'e',
        userId: user.id,
        stage: 'full',
        createdAt: 3,
        expiresAt: 30,
      });
      await store.sessions.delete('e');
      expect(await store.sessions.get('e')).toBeUndefined();
    });

    it('deletes expired sessions only', async () => {
      const user = await store.users.create({ username: 'dave' });
      const expiresAt = 1_750_000_000_000;
      await store.sessions.create({ idHash: 'old', userId: user.id, stage: 'full', createdAt: 1, expiresAt });
      await store.sessions.create({
        idHash: 'new',
        userId: user.id,
        stage: 'full',
        createdAt: 1,
        expiresAt: expiresAt + 1,
      });
      expect(await store.sessions.deleteExpired(expiresAt)).toBe(1);
      expect(await store.sessions.get('old')).toBeUndefined();
      expect(await store.sessions.get('new')).toBeDefined();
    });

    it('lets exactly one of concurrent rotations of one session win', async () => {
      const user = await store.users.create({ username: 'erin' });
      await store.sessions.create({
        idHash: 'x',
        userId: user.id,
        stage: 'mfa',
        createdAt: 1,
        expiresAt: 10,
      });
      const results = await Promise.all(
        ['y1', 'y2', 'y3'].map((idHash) =>
          store.sessions.rotate('x', { idHash, stage: 'full', createdAt: 2, expiresAt: 20 }),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = ['y1', 'y2', 'y3'][results.indexOf(true)] as string;
      expect(await store.sessions.get(winner)).toMatchObject({ userId: user.id, stage: 'full' });
      expect((await store.sessions.deleteForUser(user.id)).sort()).toEqual([winner]);
    });

    it('refuses to rotate onto an id in use, with a conflict', async () => {
      const user = await store.users.create({ username: 'fay' });
      await store.sessions.create({
        idHash: 'p',
        userId: user.id,
        stage: 'full',
        createdAt: 1,
        expiresAt: 10,
      });
      await store.sessions.create({
        idHash: 'q',
        userId: user.id,
        stage: 'full',
        createdAt: 1,
        expiresAt: 10,
      });
      const refused = await rejection(
        store.sessions.rotate('p', { idHash: 'q', stage: 'full', createdAt: 2, expiresAt: 20 }),
      );
      expect(refused).toMatchObject({ kind: 'conflict' });
      expect(await store.sessions.get('p')).toBeDefined();
    });

    it('disappear with their user', async () => {
      const user = await store.users.create({ username: 'gus' });
      await store.sessions.create({
        idHash: 's',
        userId: user.id,
        stage: 'full',
        createdAt: 1,
        expiresAt: 10,
      });
      await store.users.delete(user.id);
      expect(await store.sessions.get('s')).toBeUndefined();
    });
  });

  describe('federated identities and OIDC sign-ins', () => {
    it('keeps where a user comes from', async () => {
      const fed = await store.users.create({ username: 'fed', source: 'oidc:corp' });
      expect(fed.source).toBe('oidc:corp');
      expect(await store.users.get(fed.id)).toEqual(fed);
      expect(await store.users.update(fed.id, { disabled: true })).toMatchObject({ source: 'oidc:corp' });
    });

    it('links (provider, subject) to one user only; a second link is refused without an error', async () => {
      const user = await store.users.create({ username: 'fed', source: 'oidc:corp' });
      const other = await store.users.create({ username: 'other', source: 'oidc:corp' });
      expect(await store.identities.link({ providerId: 'corp', subject: 's-1', userId: user.id })).toBe(true);
      expect(await store.identities.link({ providerId: 'corp', subject: 's-1', userId: other.id })).toBe(
        false,
      );
      expect(await store.identities.link({ providerId: 'corp', subject: 's-1', userId: user.id })).toBe(
        false,
      );
      const linked = await store.identities.get('corp', 's-1');
      expect(linked).toEqual({
        providerId: 'corp',
        subject: 's-1',
        userId: user.id,
        createdAt: linked?.createdAt,
      });
      expect(typeof linked?.createdAt).toBe('number');
      // The same subject at another provider is another identity.
      expect(await store.identities.link({ providerId: 'apps', subject: 's-1', userId: other.id })).toBe(
        true,
      );
      expect(await store.identities.link({ providerId: 'corp', subject: 's-0', userId: user.id })).toBe(true);
      expect(await store.identities.get('nowhere', 's-1')).toBeUndefined();
      expect(await store.identities.get('corp', 'S-1')).toBeUndefined();
      expect((await store.identities.listFor(user.id)).map((i) => `${i.providerId}/${i.subject}`)).toEqual([
        'corp/s-0',
        'corp/s-1',
      ]);
      expect((await store.identities.listFor(other.id)).map((i) => i.providerId)).toEqual(['apps']);
      expect(await store.identities.listFor('no-such-user')).toEqual([]);
    });

    it('lets exactly one of concurrent links of one subject win', async () => {
      const users = await Promise.all(
        ['r1', 'r2', 'r3'].map((username) => store.users.create({ username, source: 'oidc:corp' })),
      );
      const results = await Promise.all(
        users.map((u) => store.identities.link({ providerId: 'corp', subject: 'race', userId: u.id })),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = users[results.indexOf(true)];
      expect((await store.identities.get('corp', 'race'))?.userId).toBe(winner?.id);
    });

    it('refuses a link to no user, and drops identities with their user', async () => {
      expect(
        await rejection(store.identities.link({ providerId: 'corp', subject: 'x', userId: 'no-such-user' })),
      ).toBeInstanceOf(Error);
      const user = await store.users.create({ username: 'gone', source: 'oidc:corp' });
      await store.identities.link({ providerId: 'corp', subject: 'g', userId: user.id });
      await store.users.delete(user.id);
      expect(await store.identities.get('corp', 'g')).toBeUndefined();
      // Free again: the subject can be linked to a new user.
      const again = await store.users.create({ username: 'gone', source: 'oidc:corp' });
      expect(await store.identities.link({ providerId: 'corp', subject: 'g', userId: again.id })).toBe(true);
    });

    const login = {
      idHash: 'h1',
      providerId: 'corp',
      state: 'st',
      nonce: 'no',
      codeVerifier: 'cv',
      next: '/shell?region=eu-west-1',
      expiresAt: 1_750_000_000_100,
    };

    it('hands a sign-in in flight out once, never after it expired, and sweeps expired ones', async () => {
      const now = 1_750_000_000_050;
      await store.oidcLogins.create(login);
      expect(await store.oidcLogins.take('h1', now)).toEqual(login);
      expect(await store.oidcLogins.take('h1', now)).toBeUndefined();
      expect(await store.oidcLogins.take('never-made', now)).toBeUndefined();
      // Expired exactly at expiresAt: refused, and gone all the same.
      await store.oidcLogins.create({ ...login, idHash: 'h2' });
      expect(await store.oidcLogins.take('h2', login.expiresAt)).toBeUndefined();
      await store.oidcLogins.create({ ...login, idHash: 'h2' });
      await store.oidcLogins.create({ ...login, idHash: 'h3', expiresAt: now - 1 });
      await store.oidcLogins.create({ ...login, idHash: 'h4', expiresAt: now });
      expect(await store.oidcLogins.deleteExpired(now)).toBe(2);
      expect(await store.oidcLogins.deleteExpired(now)).toBe(0);
      expect(await store.oidcLogins.take('h2', now)).toMatchObject({ idHash: 'h2' });
    });

    it('refuses a second sign-in with the same id, with a conflict', async () => {
      await store.oidcLogins.create(login);
      expect(await rejection(store.oidcLogins.create({ ...login, state: 'other' }))).toMatchObject({
        kind: 'conflict',
      });
      expect(await store.oidcLogins.take('h1', 0)).toMatchObject({ state: 'st' });
    });

    it('gives a sign-in to exactly one of concurrent takes (two racing callbacks)', async () => {
      for (const idHash of ['c1', 'c2', 'c3']) {
        await store.oidcLogins.create({ ...login, idHash });
        const pair = await Promise.all([store.oidcLogins.take(idHash, 0), store.oidcLogins.take(idHash, 0)]);
        expect(pair.filter((taken) => taken !== undefined)).toEqual([{ ...login, idHash }]);
      }
      await store.oidcLogins.create({ ...login, idHash: 'c4' });
      const many = await Promise.all(Array.from({ length: 6 }, () => store.oidcLogins.take('c4', 0)));
      expect(many.filter((taken) => taken !== undefined)).toHaveLength(1);
    });

    it('keeps what a federated session signed in with across a rotation', async () => {
      const user = await store.users.create({ username: 'dora', source: 'oidc:corp' });
      await store.sessions.create({
        idHash: 'x',
        userId: user.id,
        stage: 'mfa',
        createdAt: 1,
        expiresAt: 10,
        providerId: 'corp',
        mfaByIdp: true,
        idToken: 'eyJ.token',
      });
      expect(await store.sessions.get('x')).toMatchObject({
        providerId: 'corp',
        mfaByIdp: true,
        idToken: 'eyJ.token',
      });
      expect(
        await store.sessions.rotate('x', { idHash: 'y', stage: 'full', createdAt: 2, expiresAt: 20 }),
      ).toBe(true);
      expect(await store.sessions.get('y')).toMatchObject({
        stage: 'full',
        providerId: 'corp',
        mfaByIdp: true,
        idToken: 'eyJ.token',
      });
    });

    it('links inside a transaction, or not at all when it rolls back', async () => {
      const linked = await store.transaction(async (tx) => {
        const user = await tx.users.create({ username: 'tx-fed', source: 'oidc:corp' });
        expect(await tx.identities.link({ providerId: 'corp', subject: 'tx-1', userId: user.id })).toBe(true);
        expect(await tx.identities.get('corp', 'tx-1')).toMatchObject({ userId: user.id });
        return user.id;
      });
      expect((await store.identities.listFor(linked)).map((i) => i.subject)).toEqual(['tx-1']);
      await expect(
        store.transaction(async (tx) => {
          const user = await tx.users.create({ username: 'tx-undone', source: 'oidc:corp' });
          await tx.identities.link({ providerId: 'corp', subject: 'tx-2', userId: user.id });
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      expect(await store.identities.get('corp', 'tx-2')).toBeUndefined();
      expect(await store.users.getByUsername('tx-undone')).toBeUndefined();
    });
  });

  describe('AWS CLI sign-in (SSO OIDC)', () => {
    const client = { clientId: 'c1', secretHash: 'sh', name: 'botocore', createdAt: 1, expiresAt: 1000 };
    const grant = {
      codeHash: 'd1',
      kind: 'device' as const,
      clientId: 'c1',
      userCode: 'BCDF-GHJK',
      redirectUri: null,
      state: null,
      codeChallenge: null,
      createdAt: 10,
      expiresAt: 100,
    };

    it('keeps registered clients until they expire', async () => {
      await store.ssoClients.create(client);
      await store.ssoClients.create({ ...client, clientId: 'c2', expiresAt: 50 });
      expect(await store.ssoClients.get('c1')).toEqual(client);
      expect(await rejection(store.ssoClients.create(client))).toMatchObject({ kind: 'conflict' });
      expect(await store.ssoClients.deleteExpired(50)).toBe(1);
      expect(await store.ssoClients.get('c2')).toBeUndefined();
      expect(await store.ssoClients.get('c1')).toEqual(client);
    });

    it('records one answer per pending request, only before it expires', async () => {
      const user = await store.users.create({ username: 'erin' });
      await store.ssoGrants.create(grant);
      expect(await store.ssoGrants.getByUserCode('BCDF-GHJK')).toEqual({
        ...grant,
        status: 'pending',
        userId: null,
        lastPolledAt: null,
      });
      expect(await rejection(store.ssoGrants.create({ ...grant, codeHash: 'd2' }))).toMatchObject({
        kind: 'conflict',
      });
      expect(await store.ssoGrants.decide('BCDF-GHJK', { userId: user.id, status: 'denied' }, 100)).toBe(
        false,
      );
      const answers = await Promise.all([
        store.ssoGrants.decide('BCDF-GHJK', { userId: user.id, status: 'approved' }, 50),
        store.ssoGrants.decide('BCDF-GHJK', { userId: user.id, status: 'denied' }, 50),
      ]);
      expect(answers.filter(Boolean)).toHaveLength(1);
      expect(await store.ssoGrants.get('d1')).toMatchObject({ userId: user.id, codeHash: 'd1' });
      expect(await store.ssoGrants.decide('NOPE-NOPE', { userId: user.id, status: 'approved' }, 50)).toBe(
        false,
      );
    });

    it('gives an approved code request its authorization code and a shorter life', async () => {
      const user = await store.users.create({ username: 'finn' });
      await store.ssoGrants.create({
        ...grant,
        kind: 'code',
        codeHash: 'placeholder',
        redirectUri: 'http://127.0.0.1:5000/oauth/callback',
        state: 's',
        codeChallenge: 'cc',
      });
      expect(
        await store.ssoGrants.decide(
          'BCDF-GHJK',
          { userId: user.id, status: 'approved', codeHash: 'code1', expiresAt: 60 },
          50,
        ),
      ).toBe(true);
      expect(await store.ssoGrants.get('placeholder')).toBeUndefined();
      expect(await store.ssoGrants.get('code1')).toMatchObject({
        status: 'approved',
        expiresAt: 60,
        redirectUri: 'http://127.0.0.1:5000/oauth/callback',
        state: 's',
        codeChallenge: 'cc',
      });
    });

    it('accepts a poll only after the interval, and hands a grant out once', async () => {
      await store.ssoGrants.create(grant);
      expect(await store.ssoGrants.recordPoll('d1', 20, 5)).toBe(true);
      expect(await store.ssoGrants.recordPoll('d1', 24, 5)).toBe(false);
      expect(await store.ssoGrants.recordPoll('d1', 29, 5)).toBe(true);
      expect(await store.ssoGrants.get('d1')).toMatchObject({ lastPolledAt: 29 });
      expect(await store.ssoGrants.recordPoll('gone', 29, 5)).toBe(false);
      const pair = await Promise.all([store.ssoGrants.take('d1', 50), store.ssoGrants.take('d1', 50)]);
      expect(pair.filter((g) => g !== undefined)).toHaveLength(1);
      await store.ssoGrants.create({ ...grant, codeHash: 'd3', userCode: 'D3D3-D3D3' });
      expect(await store.ssoGrants.take('d3', 100)).toBeUndefined();
      await store.ssoGrants.create({ ...grant, codeHash: 'd4', userCode: 'D4D4-D4D4', expiresAt: 40 });
      await store.ssoGrants.create({ ...grant, codeHash: 'd5', userCode: 'D5D5-D5D5' });
      expect(await store.ssoGrants.deleteExpired(40)).toBe(1);
      expect(await store.ssoGrants.get('d5')).toBeDefined();
    });

    it('stores tokens by hash, takes a refresh token once, and revokes by family and by user', async () => {
      const [gail, hank] = [
        await store.users.create({ username: 'gail' }),
        await store.users.create({ username: 'hank' }),
      ];
      const token = (tokenHash: string, userId: string, familyId: string, expiresAt = 100) => ({
        tokenHash,
        kind: tokenHash.startsWith('r') ? ('refresh' as const) : ('access' as const),
        familyId,
        clientId: 'c1',
        userId,
        createdAt: 1,
        expiresAt,
      });
      await store.ssoTokens.create([token('a1', gail.id, 'f1'), token('r1', gail.id, 'f1')]);
      await store.ssoTokens.create([token('a2', gail.id, 'f2'), token('r2', gail.id, 'f2', 30)]);
      await store.ssoTokens.create([token('a3', hank.id, 'f3')]);
      expect(await store.ssoTokens.get('a1')).toEqual(token('a1', gail.id, 'f1'));
      const pair = await Promise.all([store.ssoTokens.take('r1', 50), store.ssoTokens.take('r1', 50)]);
      expect(pair.filter((t) => t !== undefined)).toEqual([token('r1', gail.id, 'f1')]);
      expect(await store.ssoTokens.take('r2', 30)).toBeUndefined();
      expect(await store.ssoTokens.deleteFamily('f1')).toBe(1);
      expect(await store.ssoTokens.get('a1')).toBeUndefined();
      expect(await store.ssoTokens.deleteExpired(100)).toBe(2);
      await store.ssoTokens.create([token('a4', gail.id, 'f4', 200)]);
      expect(await store.ssoTokens.deleteForUser(gail.id)).toBe(1);
      await store.ssoTokens.create([token('a5', hank.id, 'f5', 200)]);
      await store.users.delete(hank.id);
      expect(await store.ssoTokens.get('a5')).toBeUndefined();
      // One batch is one write: a clash leaves none of it.
      await store.ssoTokens.create([token('a6', gail.id, 'f6', 200)]);
      expect(
        await rejection(
          store.ssoTokens.create([token('a7', gail.id, 'f7', 200), token('a6', gail.id, 'f7', 200)]),
        ),
      ).toMatchObject({ kind: 'conflict' });
      expect(await store.ssoTokens.get('a7')).toBeUndefined();
    });
  });

  describe('SCIM tokens and provisioned resources', () => {
    it('keeps a token by its hash; revoking is once, and a revoked token is not touched', async () => {
      const made = await store.scimTokens.create({ name: 'Okta', tokenHash: 'h-1', providerId: 'corp' });
      expect(made).toMatchObject({
        name: 'Okta',
        tokenHash: 'h-1',
        providerId: 'corp',
        lastUsedAt: null,
        revokedAt: null,
      });
      expect(typeof made.createdAt).toBe('number');
      expect(await store.scimTokens.getByHash('h-1')).toEqual(made);
      expect(await store.scimTokens.getByHash('H-1')).toBeUndefined();
      expect(await store.scimTokens.get(made.id)).toEqual(made);
      await rejection(store.scimTokens.create({ name: 'Again', tokenHash: 'h-1', providerId: 'corp' })).then(
        (error) => expect(error).toMatchObject({ kind: 'conflict' }),
      );
      const second = await store.scimTokens.create({ name: 'Entra', tokenHash: 'h-2', providerId: 'apps' });
      await store.scimTokens.touch(made.id, 5000);
      expect((await store.scimTokens.get(made.id))?.lastUsedAt).toBe(5000);
      expect(await store.scimTokens.revoke(made.id, 6000)).toBe(true);
      expect(await store.scimTokens.revoke(made.id, 7000)).toBe(false);
      expect(await store.scimTokens.revoke('no-such-token', 7000)).toBe(false);
      await store.scimTokens.touch(made.id, 8000);
      expect(await store.scimTokens.get(made.id)).toMatchObject({ lastUsedAt: 5000, revokedAt: 6000 });
      expect((await store.scimTokens.list()).map((t) => t.id).sort()).toEqual([made.id, second.id].sort());
    });

    it('saves what SCIM knows of a resource, keeping its creation time across updates', async () => {
      const token = await store.scimTokens.create({ name: 'Okta', tokenHash: 'h-1', providerId: 'corp' });
      const user = await store.users.create({ username: 'fed', source: 'oidc:corp' });
      const first = await store.scimResources.save(
        { kind: 'user', resourceId: user.id, providerId: 'corp', externalId: 'ext-1', tokenId: token.id },
        1000,
      );
      expect(first).toEqual({
        kind: 'user',
        resourceId: user.id,
        providerId: 'corp',
        externalId: 'ext-1',
        tokenId: token.id,
        createdAt: 1000,
        updatedAt: 1000,
      });
      const again = await store.scimResources.save(
        { kind: 'user', resourceId: user.id, providerId: 'corp', externalId: null, tokenId: token.id },
        2000,
      );
      expect(again).toMatchObject({ externalId: null, createdAt: 1000, updatedAt: 2000 });
      expect(await store.scimResources.get('user', user.id)).toEqual(again);
      // The same id as a group is another resource.
      expect(await store.scimResources.get('group', user.id)).toBeUndefined();
      await store.scimResources.save(
        { kind: 'group', resourceId: 'g-1', providerId: 'corp', externalId: null, tokenId: token.id },
        3000,
      );
      await store.scimResources.save(
        { kind: 'group', resourceId: 'g-2', providerId: 'apps', externalId: null, tokenId: token.id },
        3000,
      );
      expect((await store.scimResources.list('group', 'corp')).map((r) => r.resourceId)).toEqual(['g-1']);
      expect((await store.scimResources.list('user', 'corp')).map((r) => r.resourceId)).toEqual([user.id]);
      expect(await store.scimResources.delete('group', 'g-1')).toBe(true);
      expect(await store.scimResources.delete('group', 'g-1')).toBe(false);
      expect(await store.scimResources.list('group', 'corp')).toEqual([]);
    });
  });

  describe('groups', () => {
    it('creates, reads, lists, updates and deletes, with limits as numbers or null', async () => {
      const b = await store.groups.create({ name: 'b-team', description: 'B', homeSizeBytes: 8 * 1024 ** 3 });
      const a = await store.groups.create({ name: 'a-team', weeklyUsageLimitS: 3600 });
      expect(b).toMatchObject({
        name: 'b-team',
        description: 'B',
        homeSizeBytes: 8 * 1024 ** 3,
        weeklyUsageLimitS: null,
      });
      expect(a).toMatchObject({
        name: 'a-team',
        description: '',
        homeSizeBytes: null,
        weeklyUsageLimitS: 3600,
      });
      expect(await store.groups.get(a.id)).toEqual(a);
      expect(await store.groups.getByName('b-team')).toEqual(b);
      expect(await store.groups.getByName('c-team')).toBeUndefined();
      expect((await store.groups.list()).map((g) => g.name)).toEqual(['a-team', 'b-team']);
      expect(
        await store.groups.update(a.id, {
          name: 'a2',
          description: 'D',
          homeSizeBytes: 1024,
          weeklyUsageLimitS: null,
        }),
      ).toEqual({
        ...a,
        name: 'a2',
        description: 'D',
        homeSizeBytes: 1024,
        weeklyUsageLimitS: null,
      });
      expect(await store.groups.update(a.id, {})).toMatchObject({ name: 'a2' });
      expect(await store.groups.update('missing', { name: 'x' })).toBeUndefined();
      expect(await rejection(store.groups.update(a.id, { name: 'b-team' }))).toMatchObject({
        kind: 'conflict',
      });
      expect(await rejection(store.groups.create({ name: 'b-team' }))).toMatchObject({ kind: 'conflict' });
      expect(await store.groups.delete(a.id)).toBe(true);
      expect(await store.groups.delete(a.id)).toBe(false);
    });

    it("sets, adds and removes members; lists a user's groups in name order", async () => {
      const u1 = await store.users.create({ username: 'u1' });
      const u2 = await store.users.create({ username: 'u2' });
      const zeta = await store.groups.create({ name: 'zeta' });
      const alpha = await store.groups.create({ name: 'alpha' });
      await store.groups.setMembers(zeta.id, [u1.id, u2.id, u1.id]);
      expect((await store.groups.members(zeta.id)).sort()).toEqual([u1.id, u2.id].sort());
      await store.groups.setMembers(zeta.id, [u2.id]);
      expect(await store.groups.members(zeta.id)).toEqual([u2.id]);
      await store.groups.setMembers(zeta.id, []);
      expect(await store.groups.members(zeta.id)).toEqual([]);
      await store.groups.addMember(zeta.id, u1.id);
      await store.groups.addMember(zeta.id, u1.id);
      await store.groups.addMember(alpha.id, u1.id);
      expect((await store.groups.groupsOf(u1.id)).map((g) => g.name)).toEqual(['alpha', 'zeta']);
      await store.groups.removeMember(zeta.id, u1.id);
      expect((await store.groups.groupsOf(u1.id)).map((g) => g.name)).toEqual(['alpha']);
      await store.users.delete(u1.id);
      expect(await store.groups.members(alpha.id)).toEqual([]);
    });
  });

  describe('accounts, permission sets and assignments', () => {
    it('keeps accounts by their 12-digit id, in name order', async () => {
      const b = await store.accounts.create({ accountId: '222222222222', name: 'beta' });
      await store.accounts.create({ accountId: '111111111111', name: 'alpha' });
      expect(b).toMatchObject({ accountId: '222222222222', name: 'beta' });
      expect(await store.accounts.get('222222222222')).toEqual(b);
      expect(await store.accounts.get('333333333333')).toBeUndefined();
      expect((await store.accounts.list()).map((a) => a.name)).toEqual(['alpha', 'beta']);
      expect(await store.accounts.update('222222222222', { name: 'gamma' })).toEqual({ ...b, name: 'gamma' });
      expect(await store.accounts.update('222222222222', {})).toMatchObject({ name: 'gamma' });
      expect(await store.accounts.update('333333333333', { name: 'x' })).toBeUndefined();
      expect(
        await rejection(store.accounts.create({ accountId: '111111111111', name: 'again' })),
      ).toMatchObject({
        kind: 'conflict',
      });
      expect(await store.accounts.delete('222222222222')).toBe(true);
      expect(await store.accounts.delete('222222222222')).toBe(false);
    });

    it('stores permission sets with policy and per-account overrides', async () => {
      const set = await store.permissionSets.create({
        name: 'ReadOnlyAccess',
        sessionDurationS: 3600,
        roleArnTemplate: 'arn:aws:iam::{accountId}:role/Cove-{name}',
        sessionPolicy: '{"Version":"2012-10-17"}',
        roleOverrides: { '123456789012': 'arn:aws:iam::123456789012:role/x' },
      });
      expect(set).toMatchObject({
        name: 'ReadOnlyAccess',
        description: '',
        sessionDurationS: 3600,
        sessionPolicy: '{"Version":"2012-10-17"}',
        roleOverrides: { '123456789012': 'arn:aws:iam::123456789012:role/x' },
      });
      const admin = await store.permissionSets.create({
        name: 'Admin',
        sessionDurationS: 7200,
        roleArnTemplate: 't',
      });
      expect(admin).toMatchObject({ sessionPolicy: null, roleOverrides: {} });
      expect(await store.permissionSets.get(set.id)).toEqual(set);
      expect(await store.permissionSets.getByName('Admin')).toEqual(admin);
      expect(await store.permissionSets.getByName('None')).toBeUndefined();
      expect((await store.permissionSets.list()).map((p) => p.name)).toEqual(['Admin', 'ReadOnlyAccess']);
      expect(
        await store.permissionSets.update(set.id, {
          description: 'Read',
          sessionPolicy: null,
          roleOverrides: {},
        }),
      ).toEqual({ ...set, description: 'Read', sessionPolicy: null, roleOverrides: {} });
      expect(await store.permissionSets.update(set.id, {})).toMatchObject({ description: 'Read' });
      expect(await store.permissionSets.update('missing', { name: 'x' })).toBeUndefined();
      expect(await rejection(store.permissionSets.update(set.id, { name: 'Admin' }))).toMatchObject({
        kind: 'conflict',
      });
      expect(await store.permissionSets.delete(admin.id)).toBe(true);
      expect(await store.permissionSets.delete(admin.id)).toBe(false);
    });

    it('assigns, refuses a duplicate, and cascades deletes of accounts, sets and groups', async () => {
      const user = await store.users.create({ username: 'erin' });
      const group = await store.groups.create({ name: 'class-a' });
      await store.groups.setMembers(group.id, [user.id]);
      await store.accounts.create({ accountId: '123456789012', name: 'sandbox' });
      const set = await store.permissionSets.create({
        name: 'ReadOnlyAccess',
        sessionDurationS: 3600,
        roleArnTemplate: 'x',
      });
      const byGroup = await store.assignments.create({
        principalType: 'group',
        principalId: group.id,
        accountId: '123456789012',
        permissionSetId: set.id,
      });
      const byUser = await store.assignments.create({
        principalType: 'user',
        principalId: user.id,
        accountId: '123456789012',
        permissionSetId: set.id,
      });
      expect(byGroup).toMatchObject({
        principalType: 'group',
        principalId: group.id,
        accountId: '123456789012',
      });
      expect(await store.assignments.get(byGroup.id)).toEqual(byGroup);
      expect(await store.assignments.get('missing')).toBeUndefined();
      expect((await store.assignments.list()).map((a) => a.id).sort()).toEqual(
        [byGroup.id, byUser.id].sort(),
      );
      expect(
        await rejection(
          store.assignments.create({
            principalType: 'user',
            principalId: user.id,
            accountId: '123456789012',
            permissionSetId: set.id,
          }),
        ),
      ).toMatchObject({ kind: 'conflict' });
      expect(await store.groups.delete(group.id)).toBe(true);
      expect((await store.assignments.list()).map((a) => a.id)).toEqual([byUser.id]);
      expect(await store.assignments.delete(byUser.id)).toBe(true);
      expect(await store.assignments.delete(byUser.id)).toBe(false);
      await store.assignments.create({
        principalType: 'user',
        principalId: user.id,
        accountId: '123456789012',
        permissionSetId: set.id,
      });
      await store.accounts.delete('123456789012');
      expect(await store.assignments.list()).toEqual([]);
    });
  });

  describe('invites', () => {
    it("stores, finds the pending one, consumes once, and deletes a user's invites", async () => {
      const user = await store.users.create({ username: 'dan' });
      await store.invites.create({ tokenHash: 'h1', userId: user.id, expiresAt: 100 });
      expect(await store.invites.get('h1')).toMatchObject({
        tokenHash: 'h1',
        userId: user.id,
        expiresAt: 100,
        usedAt: null,
      });
      expect(await store.invites.get('nope')).toBeUndefined();
      expect(await store.invites.pendingFor(user.id)).toMatchObject({ tokenHash: 'h1' });
      expect(await store.invites.consume('h1', 5)).toBe(true);
      expect(await store.invites.consume('h1', 6)).toBe(false);
      expect(await store.invites.get('h1')).toMatchObject({ usedAt: 5 });
      expect(await store.invites.pendingFor(user.id)).toBeUndefined();
      await store.invites.create({ tokenHash: 'h2', userId: user.id, expiresAt: 200 });
      await store.invites.deleteForUser(user.id);
      expect(await store.invites.get('h2')).toBeUndefined();
      expect(
        await rejection(store.invites.create({ tokenHash: 'h3', userId: 'no-such-user', expiresAt: 1 })),
      ).toBeInstanceOf(Error);
    });

    it('lets exactly one of concurrent consumes of one invite win', async () => {
      const user = await store.users.create({ username: 'ivy' });
      await store.invites.create({ tokenHash: 'race', userId: user.id, expiresAt: 100 });
      const results = await Promise.all([1, 2, 3, 4].map((now) => store.invites.consume('race', now)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });
  });

  describe('usage, terminals and audit', () => {
    it('adds usage per user and week, drops deleted users, and prunes old weeks', async () => {
      const u = await store.users.create({ username: 'ula' });
      const week = 1_750_000_000_000;
      await store.usage.add([
        { userId: u.id, weekStart: week, seconds: 10.4 },
        { userId: u.id, weekStart: week, seconds: 5 },
        { userId: u.id, weekStart: week - 7 * 86_400_000, seconds: 7 },
        { userId: 'gone', weekStart: week, seconds: 99 },
        { userId: u.id, weekStart: week, seconds: 0 },
      ]);
      expect(await store.usage.get(u.id, week)).toBe(15);
      expect(await store.usage.get(u.id, week + 1)).toBe(0);
      expect(await store.usage.prune(week)).toBe(1);
      expect(await store.usage.get(u.id, week - 7 * 86_400_000)).toBe(0);
    });

    it('keeps terminals until deleted, oldest first, with optional fields left out', async () => {
      const u = await store.users.create({ username: 'tom' });
      await store.terminals.save({
        id: 't2',
        ownerId: u.id,
        region: 'eu-west-1',
        createdAt: 2_000_000_000_000,
      });
      await store.terminals.save({
        id: 't1',
        ownerId: u.id,
        region: 'us-east-1',
        accountId: '123456789012',
        permissionSet: 'ReadOnlyAccess',
        createdAt: 1_000_000_000_000,
      });
      expect(await store.terminals.list()).toEqual([
        {
          id: 't1',
          ownerId: u.id,
          region: 'us-east-1',
          accountId: '123456789012',
          permissionSet: 'ReadOnlyAccess',
          createdAt: 1_000_000_000_000,
        },
        { id: 't2', ownerId: u.id, region: 'eu-west-1', createdAt: 2_000_000_000_000 },
      ]);
      expect(
        await rejection(store.terminals.save({ id: 't1', ownerId: u.id, region: 'x', createdAt: 1 })),
      ).toMatchObject({
        kind: 'conflict',
      });
      await store.terminals.delete('t1');
      expect((await store.terminals.list()).map((t) => t.id)).toEqual(['t2']);
    });

    it('pages the audit log newest first, filters by action, and keeps details', async () => {
      for (let i = 0; i < 5; i++) await store.audit.append(entry(`a${i}`, { i, nested: { ok: true } }));
      await store.audit.append({ ...entry('a4'), at: 1234, actorId: 'u', target: 't', ip: '192.0.2.1' });
      const first = await store.audit.list({ limit: 2 });
      expect(first.map((e) => e.action)).toEqual(['a4', 'a4']);
      expect(first[0]).toMatchObject({
        at: 1234,
        actorId: 'u',
        actorName: 'system',
        target: 't',
        ip: '192.0.2.1',
        details: {},
      });
      expect(typeof first[0]?.id).toBe('number');
      const next = await store.audit.list({ limit: 2, beforeId: first[1]?.id ?? 0 });
      expect(next.map((e) => e.action)).toEqual(['a3', 'a2']);
      expect(next[1]?.details).toEqual({ i: 2, nested: { ok: true } });
      expect((await store.audit.list({ action: 'a4' })).length).toBe(2);
      expect((await store.audit.list({ limit: 0 })).length).toBe(1);
      expect((await store.audit.list()).length).toBe(6);
    });
  });

  describe('recordings', () => {
    const recording = (id: string, over: Partial<NewRecording> = {}): NewRecording => ({
      id,
      terminalId: `t-${id}`,
      userId: 'u1',
      username: 'alice',
      region: 'eu-west-1',
      accountId: null,
      permissionSet: null,
      mode: 'output',
      startedAt: 1000,
      storage: 'file',
      location: `${id}.cast`,
      ...over,
    });

    it('keeps the policy on groups and permission sets, off unless set', async () => {
      const plain = await store.groups.create({ name: 'plain' });
      const taught = await store.groups.create({ name: 'taught', record: 'output' });
      expect(plain.record).toBe('off');
      expect(taught.record).toBe('output');
      expect(await store.groups.update(plain.id, { record: 'output+input' })).toMatchObject({
        record: 'output+input',
      });
      expect((await store.groups.get(plain.id))?.record).toBe('output+input');
      const set = await store.permissionSets.create({
        name: 'Audited',
        sessionDurationS: 3600,
        roleArnTemplate: 'arn:aws:iam::{accountId}:role/x',
        record: 'output',
      });
      expect(set.record).toBe('output');
      expect((await store.permissionSets.update(set.id, { record: 'off' }))?.record).toBe('off');
      const other = await store.permissionSets.create({
        name: 'Other',
        sessionDurationS: 3600,
        roleArnTemplate: 'arn:aws:iam::{accountId}:role/x',
      });
      expect(other.record).toBe('off');
    });

    it('creates, finishes, gets and deletes; the end is null until finished', async () => {
      await store.recordings.create(
        recording('r1', { accountId: '111111111111', permissionSet: 'Admin', mode: 'output+input' }),
      );
      expect(await store.recordings.get('r1')).toEqual({
        ...recording('r1', { accountId: '111111111111', permissionSet: 'Admin', mode: 'output+input' }),
        endedAt: null,
        bytes: 0,
        complete: true,
      });
      expect(
        await store.recordings.finish('r1', { endedAt: 5000, bytes: 123_456_789_012, complete: false }),
      ).toBe(true);
      expect(await store.recordings.get('r1')).toMatchObject({
        endedAt: 5000,
        bytes: 123_456_789_012,
        complete: false,
      });
      expect(await store.recordings.finish('missing', { endedAt: 1, bytes: 0, complete: true })).toBe(false);
      expect(await rejection(store.recordings.create(recording('r1')))).toMatchObject({ kind: 'conflict' });
      expect(await store.recordings.delete('r1')).toBe(true);
      expect(await store.recordings.delete('r1')).toBe(false);
      expect(await store.recordings.get('r1')).toBeUndefined();
    });

    it('searches by user, time and identity, newest first, with a bounded page', async () => {
      await store.recordings.create(recording('a', { startedAt: 100 }));
      await store.recordings.create(
        recording('b', { startedAt: 300, accountId: '111111111111', permissionSet: 'Admin' }),
      );
      await store.recordings.create(recording('c', { startedAt: 200, userId: 'u2', username: 'bob' }));
      await store.recordings.create(
        recording('d', {
          startedAt: 400,
          userId: 'u2',
          accountId: '111111111111',
          permissionSet: 'ReadOnly',
        }),
      );
      const ids = async (q: RecordingQuery) => (await store.recordings.search(q)).map((r) => r.id);
      expect(await ids({})).toEqual(['d', 'b', 'c', 'a']);
      expect(await ids({ userId: 'u1' })).toEqual(['b', 'a']);
      expect(await ids({ from: 200, to: 400 })).toEqual(['b', 'c']);
      expect(await ids({ accountId: '111111111111' })).toEqual(['d', 'b']);
      expect(await ids({ accountId: '111111111111', permissionSet: 'Admin' })).toEqual(['b']);
      expect(await ids({ userId: 'u2', from: 300 })).toEqual(['d']);
      expect(await ids({ limit: 2 })).toEqual(['d', 'b']);
      expect(await ids({ limit: 0 })).toEqual(['d']);
      expect(await ids({ userId: "u1' OR '1'='1" })).toEqual([]);
      expect((await store.recordings.startedBefore(300, 10)).map((r) => r.id)).toEqual(['a', 'c']);
      expect((await store.recordings.startedBefore(1000, 1)).map((r) => r.id)).toEqual(['a']);
    });
  });

  describe('throttles', () => {
    const policy = { allowed: 2, quietMs: 60_000, baseDelayMs: 1_000, maxDelayMs: 5_000 };
    const t0 = 1_800_000_000_000;

    it('blocks after the allowed failures, doubling up to the maximum, per scope and subject', async () => {
      const seen: { failures: number; blockedUntil: number }[] = [];
      for (let i = 0; i < 6; i++) seen.push(await store.throttles.recordFailure('acct', 'alice', t0, policy));
      expect(seen).toEqual([
        { failures: 1, blockedUntil: 0 },
        { failures: 2, blockedUntil: t0 + 1_000 },
        { failures: 3, blockedUntil: t0 + 2_000 },
        { failures: 4, blockedUntil: t0 + 4_000 },
        { failures: 5, blockedUntil: t0 + 5_000 },
        { failures: 6, blockedUntil: t0 + 5_000 },
      ]);
      expect(await store.throttles.retryAfter('acct', 'alice', t0 + 1_500)).toBe(3_500);
      expect(await store.throttles.retryAfter('acct', 'alice', t0 + 5_000)).toBe(0);
      // Another subject, and the same subject in another scope, count on their own.
      expect(await store.throttles.retryAfter('acct', 'bob', t0)).toBe(0);
      expect(await store.throttles.retryAfter('ip', 'alice', t0)).toBe(0);
      expect(await store.throttles.recordFailure('ip', 'alice', t0, policy)).toEqual({
        failures: 1,
        blockedUntil: 0,
      });
      // A block only ever grows: a failure counted with an earlier clock does not shorten it.
      expect((await store.throttles.recordFailure('acct', 'alice', t0 - 10_000, policy)).blockedUntil).toBe(
        t0 + 5_000,
      );
      await store.throttles.reset('acct', 'alice');
      expect(await store.throttles.retryAfter('acct', 'alice', t0)).toBe(0);
      expect((await store.throttles.recordFailure('acct', 'alice', t0, policy)).failures).toBe(1);
    });

    it('forgets failures after the quiet window once no block runs, and prunes forgotten entries', async () => {
      await store.throttles.recordFailure('acct', 'quiet', t0, policy);
      // Exactly the quiet window later: still remembered.
      expect((await store.throttles.recordFailure('acct', 'quiet', t0 + 60_000, policy)).failures).toBe(2);
      expect((await store.throttles.recordFailure('acct', 'quiet', t0 + 120_001, policy)).failures).toBe(1);
      // A block longer than the quiet window keeps the entry until it ends.
      const long = { ...policy, quietMs: 1_000, baseDelayMs: 10_000, maxDelayMs: 10_000 };
      await store.throttles.recordFailure('acct', 'blocked', t0, long);
      await store.throttles.recordFailure('acct', 'blocked', t0, long);
      expect(await store.throttles.prune(t0 + 5_000)).toBe(0);
      expect((await store.throttles.recordFailure('acct', 'blocked', t0 + 5_000, long)).failures).toBe(3);
      // The third failure made the block t0 + 15 s: the entry goes then, and only then.
      expect(await store.throttles.prune(t0 + 14_999)).toBe(0);
      expect(await store.throttles.retryAfter('acct', 'blocked', t0 + 14_999)).toBe(1);
      expect(await store.throttles.prune(t0 + 15_000)).toBe(1);
      expect((await store.throttles.recordFailure('acct', 'blocked', t0 + 15_000, long)).failures).toBe(1);
      // 'quiet' failed last at t0 + 120.001 s: kept through its window (the new 'blocked' one,
      // with its 1 s window, goes), forgotten after it.
      expect(await store.throttles.prune(t0 + 180_001)).toBe(1);
      expect((await store.throttles.recordFailure('acct', 'quiet', t0 + 180_001, policy)).failures).toBe(2);
      expect((await store.throttles.recordFailure('acct', 'quiet', t0 + 240_002, policy)).failures).toBe(1);
      expect(await store.throttles.prune(t0 + 10_000_000)).toBe(1);
    });

    it('counts every one of concurrent failures from two stores on one database', async () => {
      const other = await open();
      const n = 20;
      const many = { ...policy, allowed: n };
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          (i % 2 === 0 ? store : other).throttles.recordFailure('acct', 'race', t0, many),
        ),
      );
      expect(results.map((r) => r.failures).sort((a, b) => a - b)).toEqual(
        Array.from({ length: n }, (_, i) => i + 1),
      );
      expect(results.filter((r) => r.blockedUntil > t0)).toHaveLength(1);
      expect(await other.throttles.retryAfter('acct', 'race', t0)).toBe(1_000);
    });
  });

  describe('leases', () => {
    const t0 = 1_800_000_000_000;

    it('holds a lease for one holder until it expires; renews; hands over when released', async () => {
      expect(await store.leases.tryAcquire('sweep', 'a', t0, 1_000)).toBe(true);
      expect(await store.leases.tryAcquire('sweep', 'b', t0 + 999, 1_000)).toBe(false);
      // Another name is another lease.
      expect(await store.leases.tryAcquire('other', 'b', t0, 1_000)).toBe(true);
      // The holder renews before it expires, which keeps the others out for longer.
      expect(await store.leases.tryAcquire('sweep', 'a', t0 + 500, 1_000)).toBe(true);
      expect(await store.leases.tryAcquire('sweep', 'b', t0 + 1_499, 1_000)).toBe(false);
      expect(await store.leases.tryAcquire('sweep', 'b', t0 + 1_500, 1_000)).toBe(true);
      expect(await store.leases.tryAcquire('sweep', 'a', t0 + 1_600, 1_000)).toBe(false);
      // Only the holder's release counts.
      await store.leases.release('sweep', 'a');
      expect(await store.leases.tryAcquire('sweep', 'a', t0 + 1_700, 1_000)).toBe(false);
      await store.leases.release('sweep', 'b');
      expect(await store.leases.tryAcquire('sweep', 'a', t0 + 1_700, 1_000)).toBe(true);
    });

    it('gives a free lease to exactly one of concurrent takers on two stores', async () => {
      const other = await open();
      const taken = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? store : other).leases.tryAcquire('race', `holder-${i}`, t0, 60_000),
        ),
      );
      expect(taken.filter(Boolean)).toHaveLength(1);
      const expired = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0 ? store : other).leases.tryAcquire('race', `late-${i}`, t0 + 60_000, 60_000),
        ),
      );
      expect(expired.filter(Boolean)).toHaveLength(1);
    });
  });

  describe('uploads', () => {
    const upload = (id: string, ownerId: string, createdAt: number) => ({
      id,
      ownerId,
      region: 'us-east-1',
      dir: '~/data',
      name: `${id}.csv`,
      size: 12_000_000_000,
      replace: id === 'u1',
      multipart: true,
      keyPrefix: `staging/${ownerId}/${id}/`,
      parts: [
        { key: `staging/${ownerId}/${id}/part-00001`, size: 8_000_000_000 },
        { key: `staging/${ownerId}/${id}/part-00002`, size: 4_000_000_000 },
      ],
      createdAt,
    });

    it('keeps an upload with its parts, lists the pending ones, and finishes it once', async () => {
      const u = await store.users.create({ username: 'una' });
      await store.uploads.save(upload('u2', u.id, 2_000));
      await store.uploads.save(upload('u1', u.id, 1_000));
      expect(await store.uploads.get('u1')).toEqual({
        ...upload('u1', u.id, 1_000),
        completing: false,
        finishedAt: null,
        result: null,
      });
      expect((await store.uploads.get('u2'))?.replace).toBe(false);
      expect((await store.uploads.pendingFor(u.id)).map((r) => r.id)).toEqual(['u1', 'u2']);
      expect(await rejection(store.uploads.save(upload('u1', u.id, 3_000)))).toMatchObject({
        kind: 'conflict',
      });

      expect(await store.uploads.claim('u1')).toBe(true);
      expect(await store.uploads.claim('u1')).toBe(false);
      await store.uploads.unclaim('u1');
      expect(await store.uploads.claim('u1')).toBe(true);
      const result = { path: '~/data/u1.csv', size: 12_000_000_000, sha256: 'ab'.repeat(32) };
      await store.uploads.finish('u1', result, 5_000);
      expect(await store.uploads.get('u1')).toMatchObject({ completing: false, finishedAt: 5_000, result });
      expect(await store.uploads.claim('u1')).toBe(false);
      expect((await store.uploads.pendingFor(u.id)).map((r) => r.id)).toEqual(['u2']);

      expect(await store.uploads.delete('u2')).toBe(true);
      expect(await store.uploads.delete('u2')).toBe(false);
      expect(await store.uploads.claim('u2')).toBe(false);
      expect(await store.uploads.get('u2')).toBeUndefined();
    });

    it('prunes abandoned and long-finished uploads, and goes with its user', async () => {
      const u = await store.users.create({ username: 'uma' });
      for (const [id, at] of [
        ['old', 1_000],
        ['new', 9_000],
        ['done-early', 1_500],
        ['done-late', 2_000],
      ] as const)
        await store.uploads.save(upload(id, u.id, at));
      const result = { path: '~/x', size: 1, sha256: '00' };
      await store.uploads.finish('done-early', result, 3_000);
      await store.uploads.finish('done-late', result, 8_000);
      expect(await store.uploads.prune(5_000, 5_000)).toBe(2);
      expect((await store.uploads.pendingFor(u.id)).map((r) => r.id)).toEqual(['new']);
      expect(await store.uploads.get('done-late')).toBeDefined();
      await store.users.delete(u.id);
      expect(await store.uploads.get('new')).toBeUndefined();
    });

    it('lets exactly one of concurrent claims from two stores win', async () => {
      const other = await open();
      const u = await store.users.create({ username: 'ulf' });
      await store.uploads.save(upload('race', u.id, 1_000));
      const claims = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? store : other).uploads.claim('race')),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
    });
  });

  describe('transactions', () => {
    it('commits everything done through tx', async () => {
      const result = await store.transaction(async (tx) => {
        const user = await tx.users.create({ username: 'in-tx' });
        const group = await tx.groups.create({ name: 'tx-group' });
        await tx.groups.addMember(group.id, user.id);
        return user.id;
      });
      expect(await store.users.get(result)).toMatchObject({ username: 'in-tx' });
      expect((await store.groups.groupsOf(result)).map((g) => g.name)).toEqual(['tx-group']);
    });

    it('rolls a transaction back as a whole, and the store keeps working', async () => {
      const refused = await rejection(
        store.transaction(async (tx) => {
          await tx.groups.create({ name: 'g1' });
          await tx.users.create({ username: 'u-in-tx' });
          await tx.groups.create({ name: 'g1' });
        }),
      );
      expect(refused).toMatchObject({ kind: 'conflict' });
      expect(await store.groups.list()).toEqual([]);
      expect(await store.users.count()).toBe(0);
      await expect(
        store.transaction(async (tx) => {
          await tx.users.create({ username: 'after' });
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      expect(await store.users.count()).toBe(0);
      await store.users.create({ username: 'after' });
      expect(await store.users.count()).toBe(1);
    });

    it('keeps statements from outside the transaction out of it: not rolled back, not seeing its rows', async () => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let wrote!: () => void;
      const written = new Promise<void>((resolve) => (wrote = resolve));
      const tx = store.transaction(async (t) => {
        await t.users.create({ username: 'uncommitted' });
        wrote();
        await released;
        throw new Error('roll back');
      });
      await written;
      // Issued while the transaction is open, from another "request".
      const outsideWrite = store.users.create({ username: 'outside' });
      const outsideRead = store.users.getByUsername('uncommitted');
      const outsideList = store.users.list();
      await sleep(50);
      release();
      await expect(tx).rejects.toThrow('roll back');
      expect(await outsideRead).toBeUndefined();
      expect((await outsideList).map((u) => u.username)).not.toContain('uncommitted');
      expect((await outsideWrite).username).toBe('outside');
      expect((await store.users.list()).map((u) => u.username)).toEqual(['outside']);
    });

    it('runs concurrent transactions without mixing their statements', async () => {
      await store.users.create({ username: 'counter' });
      const runs = Array.from({ length: 5 }, (_, i) =>
        store.transaction(async (tx) => {
          const group = await tx.groups.create({ name: `g${i}` });
          await sleep(5);
          if (i % 2 === 1) throw new Error(`fail ${i}`);
          await tx.audit.append(entry(`tx${i}`));
          return group.id;
        }),
      );
      const settled = await Promise.allSettled(runs);
      expect(settled.map((s) => s.status)).toEqual([
        'fulfilled',
        'rejected',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect((await store.groups.list()).map((g) => g.name)).toEqual(['g0', 'g2', 'g4']);
      expect((await store.audit.list()).map((e) => e.action).sort()).toEqual(['tx0', 'tx2', 'tx4']);
    });

    it('refuses the store itself inside the callback, and a tx used after its transaction ended', async () => {
      let leaked: Parameters<Parameters<Store['transaction']>[0]>[0] | undefined;
      const refused = await rejection(
        store.transaction(async (tx) => {
          leaked = tx;
          await store.users.count();
        }),
      );
      expect((refused as Error).message).toMatch(/use the callback's tx/);
      expect(await rejection(store.transaction(() => store.transaction(async () => 1)))).toBeInstanceOf(
        Error,
      );
      expect(await rejection((leaked as NonNullable<typeof leaked>).users.count())).toBeInstanceOf(Error);
      expect(await store.users.count()).toBe(0);
    });
  });

  describe('when the database cannot serve', () => {
    it('rejects with an unavailable StoreError (503), then the same store recovers', async () => {
      await store.users.create({ username: 'before' });
      const restore = await harness.outage(store);
      let refused: unknown;
      try {
        refused = await rejection(store.users.create({ username: 'during' }));
        expect(refused).toBeInstanceOf(StoreError);
        expect(refused).toMatchObject({
          kind: 'unavailable',
          code: 'COVE_ERR_STORE_UNAVAILABLE',
          statusCode: 503,
        });
        expect(
          await rejection(store.transaction(async (tx) => tx.users.create({ username: 'during-tx' }))),
        ).toMatchObject({
          kind: 'unavailable',
        });
      } finally {
        await restore();
      }
      await store.users.create({ username: 'after' });
      expect((await store.users.list()).map((u) => u.username)).toEqual(['after', 'before']);
      expect(await store.ping()).toBe(true);
    });
  });
}
