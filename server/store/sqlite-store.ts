/**
 * SQLite implementation of the Store (better-sqlite3 12, WAL, foreign keys on). Calls are
 * synchronous under the hood, on one connection: a transaction therefore has the connection to
 * itself while it is open. Statements from outside it wait until it ends, and transactions run
 * one after another, so none joins another's.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { errors } from '../errors.js';
import { latestSchemaVersion, migrations } from './migrations.js';
import {
  type Row,
  auditPageSize,
  permissionSetColumns,
  recordingFilter,
  recordingPageSize,
  toAccount,
  toAssignment,
  toAudit,
  toGroup,
  toIdentity,
  toInvite,
  toOidcLogin,
  toPermissionSet,
  toRecording,
  toScimResource,
  toScimToken,
  toSession,
  toSsoClient,
  toSsoGrant,
  toSsoToken,
  toStagedUpload,
  throttleBlockedUntil,
  throttleForgetAt,
  toTerminal,
  toUser,
  userPatchColumns,
} from './rows.js';
import type { Store, StoreRepositories } from './store.js';
import { TransactionHandle, TransactionScope } from './transaction-scope.js';

type Runner = <T>(fn: () => T) => Promise<T>;

const sqlValue = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 1 : 0) : v);

/** SQLite errors that mean "the database cannot serve now" rather than a bug. */
const unavailableCodes = [
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_READONLY',
  'SQLITE_CANTOPEN',
];

const hasCode = (code: string, base: string): boolean => code === base || code.startsWith(`${base}_`);

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly scope = new TransactionScope();
  /** The open transaction; settles when it has committed or rolled back. */
  private current: Promise<void> | undefined;
  private readonly repositories = this.repositoriesOver((fn) => this.runOutside(fn));

  readonly users = this.repositories.users;
  readonly sessions = this.repositories.sessions;
  readonly groups = this.repositories.groups;
  readonly accounts = this.repositories.accounts;
  readonly permissionSets = this.repositories.permissionSets;
  readonly assignments = this.repositories.assignments;
  readonly invites = this.repositories.invites;
  readonly usage = this.repositories.usage;
  readonly terminals = this.repositories.terminals;
  readonly throttles = this.repositories.throttles;
  readonly leases = this.repositories.leases;
  readonly uploads = this.repositories.uploads;
  readonly identities = this.repositories.identities;
  readonly oidcLogins = this.repositories.oidcLogins;
  readonly recordings = this.repositories.recordings;
  readonly ssoClients = this.repositories.ssoClients;
  readonly ssoGrants = this.repositories.ssoGrants;
  readonly ssoTokens = this.repositories.ssoTokens;
  readonly scimTokens = this.repositories.scimTokens;
  readonly scimResources = this.repositories.scimResources;
  readonly audit = this.repositories.audit;

  /**
   * Opens (creating if needed) the database file and applies pending migrations; refuses a
   * database a newer Cove has migrated (COVE_ERR_STORE_SCHEMA_NEWER).
   */
  constructor(
    path: string,
    private readonly now: () => number = Date.now,
  ) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { timeout: 5000 });
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /** Each pending migration in its own write transaction, re-reading the version under the lock. */
  private migrate(): void {
    const found = this.schemaVersion;
    if (found > latestSchemaVersion) throw errors.storeSchemaNewer(found, latestSchemaVersion);
    for (const migration of migrations.slice(found)) {
      this.db
        .transaction(() => {
          if (this.schemaVersion >= migration.version) return;
          this.db.exec(migration.sqlite);
          this.db.pragma(`user_version = ${migration.version}`);
        })
        .immediate();
    }
  }

  /** Runs a statement, turning storage-level failures into typed store errors. */
  private run<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(this.storeError(error));
    }
  }

  private storeError(error: unknown): unknown {
    const code = (error as { code?: unknown }).code;
    const text = typeof code === 'string' ? code : '';
    if (text === 'SQLITE_CONSTRAINT_UNIQUE' || text === 'SQLITE_CONSTRAINT_PRIMARYKEY')
      return errors.storeConflict(error);
    // Said as a full disk, not as an unreachable database: the data is intact and reads still work.
    if (hasCode(text, 'SQLITE_FULL') || text === 'ENOSPC') return errors.storeDiskFull(error);
    // A closed connection (shutdown, or lost) throws a plain TypeError: still "cannot serve now".
    if (!this.db.open || unavailableCodes.some((base) => hasCode(text, base)))
      return errors.storeUnavailable(error);
    return error;
  }

  /** A statement from outside any transaction: waits until the open one (if any) has ended. */
  private async runOutside<T>(fn: () => T): Promise<T> {
    this.scope.refuseInside();
    while (this.current) await this.current;
    // No await between the check and the statement: nothing can begin in between.
    return this.run(fn);
  }

  async transaction<T>(fn: (tx: StoreRepositories) => Promise<T>): Promise<T> {
    this.scope.refuseInside();
    while (this.current) await this.current;
    let ended!: () => void;
    this.current = new Promise<void>((resolve) => (ended = resolve));
    const handle = new TransactionHandle();
    try {
      // Through run(): a write lock held too long by another process (SQLITE_BUSY) is a 503.
      await this.run(() => this.db.exec('BEGIN IMMEDIATE'));
      try {
        const tx = this.repositoriesOver((statement) => {
          try {
            handle.check();
          } catch (error) {
            return Promise.reject(error);
          }
          return this.run(statement);
        });
        const result = await this.scope.run(handle, () => fn(tx));
        await this.run(() => this.db.exec('COMMIT'));
        return result;
      } catch (error) {
        if (this.db.open && this.db.inTransaction) this.db.exec('ROLLBACK');
        throw error;
      }
    } finally {
      handle.end();
      this.current = undefined;
      ended();
    }
  }

  ping(): Promise<boolean> {
    return this.runOutside(() => (this.one('SELECT 1 AS ok') as Row).ok === 1).catch(() => false);
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }

  private all(sql: string, ...params: unknown[]): Row[] {
    return this.db.prepare(sql).all(...params) as Row[];
  }

  private one(sql: string, ...params: unknown[]): Row | undefined {
    return this.db.prepare(sql).get(...params) as Row | undefined;
  }

  private exec(sql: string, ...params: unknown[]): Database.RunResult {
    return this.db.prepare(sql).run(...params);
  }

  /**
   * Several statements as one: its own transaction outside any, a savepoint inside one
   * (better-sqlite3 nests them).
   */
  private atomic<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  private maybe<T>(row: Row | undefined, map: (r: Row) => T): T | undefined {
    return row === undefined ? undefined : map(row);
  }

  /** The repositories, each statement run through `run` (outside any transaction, or in one). */
  private repositoriesOver(run: Runner): StoreRepositories {
    return {
      users: {
        create: (u) =>
          run(() => {
            const id = randomUUID();
            this.exec(
              `INSERT INTO users (id, username, email, password_hash, must_change_password, mfa_required, created_at, source)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
              id,
              u.username,
              u.email ?? null,
              u.passwordHash ?? null,
              u.mustChangePassword ? 1 : 0,
              u.mfaRequired ? 1 : 0,
              this.now(),
              u.source ?? 'local',
            );
            return toUser(this.one('SELECT * FROM users WHERE id = ?', id) as Row);
          }),
        get: (id) => run(() => this.maybe(this.one('SELECT * FROM users WHERE id = ?', id), toUser)),
        getByUsername: (name) =>
          run(() => this.maybe(this.one('SELECT * FROM users WHERE username = ?', name), toUser)),
        list: () => run(() => this.all('SELECT * FROM users ORDER BY username').map(toUser)),
        count: () => run(() => (this.one('SELECT count(*) AS n FROM users') as Row).n as number),
        update: (id, patch) =>
          run(() => {
            const entries = userPatchColumns(patch);
            if (entries.length > 0) {
              const sets = entries.map(([column]) => `${column} = ?`).join(', ');
              this.exec(`UPDATE users SET ${sets} WHERE id = ?`, ...entries.map(([, v]) => sqlValue(v)), id);
            }
            return this.maybe(this.one('SELECT * FROM users WHERE id = ?', id), toUser);
          }),
        claimTotpStep: (id, step) =>
          run(
            () =>
              this.exec(
                'UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?',
                step,
                id,
                step,
              ).changes === 1,
          ),
        resetMfa: (id) =>
          run(() => {
            this.exec(
              'UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = 0 WHERE id = ?',
              id,
            );
          }),
        delete: (id) => run(() => this.exec('DELETE FROM users WHERE id = ?', id).changes === 1),
      },

      sessions: {
        create: (s) =>
          run(() => {
            this.exec(
              `INSERT INTO sessions (id_hash, user_id, stage, created_at, expires_at, provider_id, mfa_by_idp, id_token)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
              s.idHash,
              s.userId,
              s.stage,
              s.createdAt,
              s.expiresAt,
              s.providerId ?? null,
              s.mfaByIdp ? 1 : 0,
              s.idToken ?? null,
            );
          }),
        get: (idHash) =>
          run(() => this.maybe(this.one('SELECT * FROM sessions WHERE id_hash = ?', idHash), toSession)),
        rotate: (oldIdHash, next) =>
          run(
            () =>
              this.exec(
                'UPDATE sessions SET id_hash = ?, stage = ?, created_at = ?, expires_at = ?, mfa_failures = 0 WHERE id_hash = ?',
                next.idHash,
                next.stage,
                next.createdAt,
                next.expiresAt,
                oldIdHash,
              ).changes === 1,
          ),
        incrementMfaFailures: (idHash) =>
          run(
            () =>
              (this.one(
                'UPDATE sessions SET mfa_failures = mfa_failures + 1 WHERE id_hash = ? RETURNING mfa_failures',
                idHash,
              )?.mfa_failures as number | undefined) ?? 0,
          ),
        delete: (idHash) =>
          run(() => {
            this.exec('DELETE FROM sessions WHERE id_hash = ?', idHash);
          }),
        deleteForUser: (userId) =>
          run(() =>
            this.all('DELETE FROM sessions WHERE user_id = ? RETURNING id_hash', userId).map(
              (r) => r.id_hash as string,
            ),
          ),
        deleteExpired: (now) =>
          run(() => this.exec('DELETE FROM sessions WHERE expires_at <= ?', now).changes),
      },

      groups: {
        create: (g) =>
          run(() => {
            const id = randomUUID();
            this.exec(
              `INSERT INTO groups (id, name, description, home_size_bytes, weekly_usage_limit_s, record, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)`,
              id,
              g.name,
              g.description ?? '',
              g.homeSizeBytes ?? null,
              g.weeklyUsageLimitS ?? null,
              g.record ?? 'off',
              this.now(),
            );
            return toGroup(this.one('SELECT * FROM groups WHERE id = ?', id) as Row);
          }),
        get: (id) => run(() => this.maybe(this.one('SELECT * FROM groups WHERE id = ?', id), toGroup)),
        getByName: (name) =>
          run(() => this.maybe(this.one('SELECT * FROM groups WHERE name = ?', name), toGroup)),
        list: () => run(() => this.all('SELECT * FROM groups ORDER BY name').map(toGroup)),
        update: (id, patch) =>
          run(() => {
            const columns: [string, unknown][] = [
              ['name', patch.name],
              ['description', patch.description],
              ['home_size_bytes', patch.homeSizeBytes],
              ['weekly_usage_limit_s', patch.weeklyUsageLimitS],
              ['record', patch.record],
            ];
            const entries = columns.filter(([, v]) => v !== undefined);
            if (entries.length > 0)
              this.exec(
                `UPDATE groups SET ${entries.map(([k]) => `${k} = ?`).join(', ')} WHERE id = ?`,
                ...entries.map(([, v]) => v),
                id,
              );
            return this.maybe(this.one('SELECT * FROM groups WHERE id = ?', id), toGroup);
          }),
        delete: (id) =>
          run(() =>
            this.atomic(() => {
              this.exec("DELETE FROM assignments WHERE principal_type = 'group' AND principal_id = ?", id);
              return this.exec('DELETE FROM groups WHERE id = ?', id).changes === 1;
            }),
          ),
        members: (groupId) =>
          run(() =>
            this.all('SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id', groupId).map(
              (r) => r.user_id as string,
            ),
          ),
        setMembers: (groupId, userIds) =>
          run(() =>
            this.atomic(() => {
              this.exec('DELETE FROM group_members WHERE group_id = ?', groupId);
              const insert = this.db.prepare(
                'INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)',
              );
              for (const userId of userIds) insert.run(groupId, userId);
            }),
          ),
        addMember: (groupId, userId) =>
          run(() => {
            this.exec(
              'INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)',
              groupId,
              userId,
            );
          }),
        removeMember: (groupId, userId) =>
          run(() => {
            this.exec('DELETE FROM group_members WHERE group_id = ? AND user_id = ?', groupId, userId);
          }),
        groupsOf: (userId) =>
          run(() =>
            this.all(
              'SELECT g.* FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.name',
              userId,
            ).map(toGroup),
          ),
      },

      accounts: {
        create: (a) =>
          run(() => {
            this.exec(
              'INSERT INTO accounts (account_id, name, created_at) VALUES (?, ?, ?)',
              a.accountId,
              a.name,
              this.now(),
            );
            return toAccount(this.one('SELECT * FROM accounts WHERE account_id = ?', a.accountId) as Row);
          }),
        get: (accountId) =>
          run(() =>
            this.maybe(this.one('SELECT * FROM accounts WHERE account_id = ?', accountId), toAccount),
          ),
        list: () => run(() => this.all('SELECT * FROM accounts ORDER BY name, account_id').map(toAccount)),
        update: (accountId, patch) =>
          run(() => {
            if (patch.name !== undefined)
              this.exec('UPDATE accounts SET name = ? WHERE account_id = ?', patch.name, accountId);
            return this.maybe(this.one('SELECT * FROM accounts WHERE account_id = ?', accountId), toAccount);
          }),
        delete: (accountId) =>
          run(() => this.exec('DELETE FROM accounts WHERE account_id = ?', accountId).changes === 1),
      },

      permissionSets: {
        create: (p) =>
          run(() => {
            const id = randomUUID();
            this.exec(
              `INSERT INTO permission_sets (id, name, description, session_duration_s, role_arn_template, session_policy, role_overrides, record, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
              id,
              p.name,
              p.description ?? '',
              p.sessionDurationS,
              p.roleArnTemplate,
              p.sessionPolicy ?? null,
              JSON.stringify(p.roleOverrides ?? {}),
              p.record ?? 'off',
              this.now(),
            );
            return toPermissionSet(this.one('SELECT * FROM permission_sets WHERE id = ?', id) as Row);
          }),
        get: (id) =>
          run(() => this.maybe(this.one('SELECT * FROM permission_sets WHERE id = ?', id), toPermissionSet)),
        getByName: (name) =>
          run(() =>
            this.maybe(this.one('SELECT * FROM permission_sets WHERE name = ?', name), toPermissionSet),
          ),
        list: () => run(() => this.all('SELECT * FROM permission_sets ORDER BY name').map(toPermissionSet)),
        update: (id, patch) =>
          run(() => {
            const entries = permissionSetColumns(patch);
            if (entries.length > 0)
              this.exec(
                `UPDATE permission_sets SET ${entries.map(([k]) => `${k} = ?`).join(', ')} WHERE id = ?`,
                ...entries.map(([, v]) => v),
                id,
              );
            return this.maybe(this.one('SELECT * FROM permission_sets WHERE id = ?', id), toPermissionSet);
          }),
        delete: (id) => run(() => this.exec('DELETE FROM permission_sets WHERE id = ?', id).changes === 1),
      },

      assignments: {
        create: (a) =>
          run(() => {
            const id = randomUUID();
            this.exec(
              `INSERT INTO assignments (id, principal_type, principal_id, account_id, permission_set_id, created_at)
               VALUES (?, ?, ?, ?, ?, ?)`,
              id,
              a.principalType,
              a.principalId,
              a.accountId,
              a.permissionSetId,
              this.now(),
            );
            return toAssignment(this.one('SELECT * FROM assignments WHERE id = ?', id) as Row);
          }),
        get: (id) =>
          run(() => this.maybe(this.one('SELECT * FROM assignments WHERE id = ?', id), toAssignment)),
        list: () =>
          run(() => this.all('SELECT * FROM assignments ORDER BY created_at, id').map(toAssignment)),
        delete: (id) => run(() => this.exec('DELETE FROM assignments WHERE id = ?', id).changes === 1),
      },

      invites: {
        create: (i) =>
          run(() => {
            this.exec(
              'INSERT INTO invites (token_hash, user_id, expires_at, created_at) VALUES (?, ?, ?, ?)',
              i.tokenHash,
              i.userId,
              i.expiresAt,
              this.now(),
            );
          }),
        get: (tokenHash) =>
          run(() => this.maybe(this.one('SELECT * FROM invites WHERE token_hash = ?', tokenHash), toInvite)),
        consume: (tokenHash, now) =>
          run(
            () =>
              this.exec(
                'UPDATE invites SET used_at = ? WHERE token_hash = ? AND used_at IS NULL',
                now,
                tokenHash,
              ).changes === 1,
          ),
        deleteForUser: (userId) =>
          run(() => {
            this.exec('DELETE FROM invites WHERE user_id = ?', userId);
          }),
        pendingFor: (userId) =>
          run(() =>
            this.maybe(
              this.one(
                'SELECT * FROM invites WHERE user_id = ? AND used_at IS NULL ORDER BY created_at DESC, expires_at DESC LIMIT 1',
                userId,
              ),
              toInvite,
            ),
          ),
      },

      usage: {
        add: (increments) =>
          run(() =>
            this.atomic(() => {
              // Through SELECT: a user deleted since the tick has nothing to charge, and no FK error.
              const upsert = this.db.prepare(
                `INSERT INTO usage (user_id, week_start, used_s) SELECT id, ?, ? FROM users WHERE id = ?
                 ON CONFLICT (user_id, week_start) DO UPDATE SET used_s = used_s + excluded.used_s`,
              );
              for (const i of increments)
                if (i.seconds > 0) upsert.run(i.weekStart, Math.round(i.seconds), i.userId);
            }),
          ),
        get: (userId, weekStart) =>
          run(
            () =>
              (this.one('SELECT used_s FROM usage WHERE user_id = ? AND week_start = ?', userId, weekStart)
                ?.used_s as number | undefined) ?? 0,
          ),
        prune: (beforeWeekStart) =>
          run(() => this.exec('DELETE FROM usage WHERE week_start < ?', beforeWeekStart).changes),
      },

      terminals: {
        save: (t) =>
          run(() => {
            this.exec(
              'INSERT INTO terminals (id, owner_id, region, account_id, permission_set, created_at) VALUES (?, ?, ?, ?, ?, ?)',
              t.id,
              t.ownerId,
              t.region,
              t.accountId ?? null,
              t.permissionSet ?? null,
              t.createdAt,
            );
          }),
        delete: (id) =>
          run(() => {
            this.exec('DELETE FROM terminals WHERE id = ?', id);
          }),
        list: () => run(() => this.all('SELECT * FROM terminals ORDER BY created_at, id').map(toTerminal)),
      },

      recordings: {
        create: (r) =>
          run(() => {
            this.exec(
              `INSERT INTO recordings (id, terminal_id, user_id, username, region, account_id, permission_set, mode, started_at, storage, location)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
              r.id,
              r.terminalId,
              r.userId,
              r.username,
              r.region,
              r.accountId,
              r.permissionSet,
              r.mode,
              r.startedAt,
              r.storage,
              r.location,
            );
          }),
        finish: (id, end) =>
          run(
            () =>
              this.exec(
                'UPDATE recordings SET ended_at = ?, bytes = ?, complete = ? WHERE id = ?',
                end.endedAt,
                end.bytes,
                end.complete ? 1 : 0,
                id,
              ).changes === 1,
          ),
        get: (id) =>
          run(() => this.maybe(this.one('SELECT * FROM recordings WHERE id = ?', id), toRecording)),
        search: (query) =>
          run(() => {
            const { where, values } = recordingFilter(query);
            return this.all(
              `SELECT * FROM recordings ${where} ORDER BY started_at DESC, id LIMIT ?`,
              ...values,
              recordingPageSize(query.limit),
            ).map(toRecording);
          }),
        startedBefore: (startedBefore, limit) =>
          run(() =>
            this.all(
              'SELECT * FROM recordings WHERE started_at < ? ORDER BY started_at, id LIMIT ?',
              startedBefore,
              limit,
            ).map(toRecording),
          ),
        delete: (id) => run(() => this.exec('DELETE FROM recordings WHERE id = ?', id).changes === 1),
      },

      throttles: {
        recordFailure: (scope, subject, now, policy) =>
          run(() =>
            this.atomic(() => {
              // The upsert takes the write lock first, so a failure counted by another process
              // in between is never lost: the increment happens under the lock.
              const counted = this.one(
                `INSERT INTO throttles (scope, subject, failures, blocked_until, forget_at) VALUES (?, ?, 1, 0, ?)
                 ON CONFLICT (scope, subject) DO UPDATE SET
                   failures = CASE WHEN throttles.forget_at <= ? THEN 1 ELSE throttles.failures + 1 END,
                   forget_at = max(throttles.forget_at, excluded.forget_at)
                 RETURNING failures, blocked_until`,
                scope,
                subject,
                throttleForgetAt(policy, now, 0),
                now,
              ) as Row;
              const failures = counted.failures as number;
              const blockedUntil = throttleBlockedUntil(
                policy,
                failures,
                now,
                counted.blocked_until as number,
              );
              if (blockedUntil === counted.blocked_until) return { failures, blockedUntil };
              const blocked = this.one(
                `UPDATE throttles SET blocked_until = max(blocked_until, ?), forget_at = max(forget_at, ?)
                 WHERE scope = ? AND subject = ? RETURNING blocked_until`,
                blockedUntil,
                throttleForgetAt(policy, now, blockedUntil),
                scope,
                subject,
              ) as Row;
              return { failures, blockedUntil: blocked.blocked_until as number };
            }),
          ),
        retryAfter: (scope, subject, now) =>
          run(() => {
            const row = this.one(
              'SELECT blocked_until FROM throttles WHERE scope = ? AND subject = ?',
              scope,
              subject,
            );
            return Math.max(((row?.blocked_until as number | undefined) ?? 0) - now, 0);
          }),
        reset: (scope, subject) =>
          run(() => {
            this.exec('DELETE FROM throttles WHERE scope = ? AND subject = ?', scope, subject);
          }),
        prune: (now) => run(() => this.exec('DELETE FROM throttles WHERE forget_at <= ?', now).changes),
      },

      leases: {
        tryAcquire: (name, holder, now, ttlMs) =>
          run(
            () =>
              this.exec(
                `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
                name,
                holder,
                now + ttlMs,
                now,
              ).changes === 1,
          ),
        release: (name, holder) =>
          run(() => {
            this.exec('DELETE FROM leases WHERE name = ? AND holder = ?', name, holder);
          }),
      },

      uploads: {
        save: (u) =>
          run(() => {
            this.exec(
              `INSERT INTO uploads (id, owner_id, region, dir, name, size, replace_existing, multipart, key_prefix, parts, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
              u.id,
              u.ownerId,
              u.region,
              u.dir,
              u.name,
              u.size,
              u.replace ? 1 : 0,
              u.multipart ? 1 : 0,
              u.keyPrefix,
              JSON.stringify(u.parts),
              u.createdAt,
            );
          }),
        get: (id) =>
          run(() => this.maybe(this.one('SELECT * FROM uploads WHERE id = ?', id), toStagedUpload)),
        pendingFor: (ownerId) =>
          run(() =>
            this.all(
              'SELECT * FROM uploads WHERE owner_id = ? AND finished_at IS NULL ORDER BY created_at, id',
              ownerId,
            ).map(toStagedUpload),
          ),
        claim: (id) =>
          run(
            () =>
              this.exec(
                'UPDATE uploads SET completing = 1 WHERE id = ? AND completing = 0 AND finished_at IS NULL',
                id,
              ).changes === 1,
          ),
        unclaim: (id) =>
          run(() => {
            this.exec('UPDATE uploads SET completing = 0 WHERE id = ?', id);
          }),
        finish: (id, result, at) =>
          run(() => {
            this.exec(
              'UPDATE uploads SET completing = 0, finished_at = ?, result = ? WHERE id = ?',
              at,
              JSON.stringify(result),
              id,
            );
          }),
        delete: (id) => run(() => this.exec('DELETE FROM uploads WHERE id = ?', id).changes === 1),
        prune: (createdBefore, finishedBefore) =>
          run(
            () =>
              this.exec(
                `DELETE FROM uploads WHERE (finished_at IS NULL AND created_at < ?)
                 OR (finished_at IS NOT NULL AND finished_at < ?)`,
                createdBefore,
                finishedBefore,
              ).changes,
          ),
      },

      identities: {
        link: (i) =>
          run(
            () =>
              this.exec(
                `INSERT INTO identities (provider_id, subject, user_id, created_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (provider_id, subject) DO NOTHING`,
                i.providerId,
                i.subject,
                i.userId,
                this.now(),
              ).changes === 1,
          ),
        get: (providerId, subject) =>
          run(() =>
            this.maybe(
              this.one('SELECT * FROM identities WHERE provider_id = ? AND subject = ?', providerId, subject),
              toIdentity,
            ),
          ),
        listFor: (userId) =>
          run(() =>
            this.all('SELECT * FROM identities WHERE user_id = ? ORDER BY provider_id, subject', userId).map(
              toIdentity,
            ),
          ),
      },

      oidcLogins: {
        create: (l) =>
          run(() => {
            this.exec(
              `INSERT INTO oidc_logins (id_hash, provider_id, state, nonce, code_verifier, next, expires_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)`,
              l.idHash,
              l.providerId,
              l.state,
              l.nonce,
              l.codeVerifier,
              l.next,
              l.expiresAt,
            );
          }),
        // One statement: of two racing callbacks, only the one whose DELETE removed the row gets it.
        take: (idHash, now) =>
          run(() => {
            const row = this.one('DELETE FROM oidc_logins WHERE id_hash = ? RETURNING *', idHash);
            return row !== undefined && (row.expires_at as number) > now ? toOidcLogin(row) : undefined;
          }),
        deleteExpired: (now) =>
          run(() => this.exec('DELETE FROM oidc_logins WHERE expires_at <= ?', now).changes),
      },

      ssoClients: {
        create: (c) =>
          run(() => {
            this.exec(
              'INSERT INTO sso_clients (client_id, secret_hash, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
              c.clientId,
              c.secretHash,
              c.name,
              c.createdAt,
              c.expiresAt,
            );
          }),
        get: (clientId) =>
          run(() =>
            this.maybe(this.one('SELECT * FROM sso_clients WHERE client_id = ?', clientId), toSsoClient),
          ),
        deleteExpired: (now) =>
          run(() => this.exec('DELETE FROM sso_clients WHERE expires_at <= ?', now).changes),
      },

      ssoGrants: {
        create: (g) =>
          run(() => {
            this.exec(
              `INSERT INTO sso_grants (code_hash, kind, client_id, user_code, redirect_uri, state, code_challenge,
                 created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
              g.codeHash,
              g.kind,
              g.clientId,
              g.userCode,
              g.redirectUri,
              g.state,
              g.codeChallenge,
              g.createdAt,
              g.expiresAt,
            );
          }),
        get: (codeHash) =>
          run(() =>
            this.maybe(this.one('SELECT * FROM sso_grants WHERE code_hash = ?', codeHash), toSsoGrant),
          ),
        getByUserCode: (userCode) =>
          run(() =>
            this.maybe(this.one('SELECT * FROM sso_grants WHERE user_code = ?', userCode), toSsoGrant),
          ),
        decide: (userCode, answer, now) =>
          run(
            () =>
              this.exec(
                `UPDATE sso_grants SET status = ?, user_id = ?, code_hash = COALESCE(?, code_hash),
                   expires_at = COALESCE(?, expires_at)
                 WHERE user_code = ? AND status = 'pending' AND expires_at > ?`,
                answer.status,
                answer.userId,
                answer.codeHash ?? null,
                answer.expiresAt ?? null,
                userCode,
                now,
              ).changes === 1,
          ),
        recordPoll: (codeHash, now, minIntervalMs) =>
          run(
            () =>
              this.exec(
                `UPDATE sso_grants SET last_polled_at = ?
                 WHERE code_hash = ? AND (last_polled_at IS NULL OR last_polled_at <= ?)`,
                now,
                codeHash,
                now - minIntervalMs,
              ).changes === 1,
          ),
        take: (codeHash, now) =>
          run(() => {
            const row = this.one('DELETE FROM sso_grants WHERE code_hash = ? RETURNING *', codeHash);
            return row !== undefined && (row.expires_at as number) > now ? toSsoGrant(row) : undefined;
          }),
        deleteExpired: (now) =>
          run(() => this.exec('DELETE FROM sso_grants WHERE expires_at <= ?', now).changes),
      },

      ssoTokens: {
        create: (tokens) =>
          run(() =>
            this.atomic(() => {
              for (const t of tokens)
                this.exec(
                  `INSERT INTO sso_tokens (token_hash, kind, family_id, client_id, user_id, created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)`,
                  t.tokenHash,
                  t.kind,
                  t.familyId,
                  t.clientId,
                  t.userId,
                  t.createdAt,
                  t.expiresAt,
                );
            }),
          ),
        get: (tokenHash) =>
          run(() =>
            this.maybe(this.one('SELECT * FROM sso_tokens WHERE token_hash = ?', tokenHash), toSsoToken),
          ),
        take: (tokenHash, now) =>
          run(() => {
            const row = this.one('DELETE FROM sso_tokens WHERE token_hash = ? RETURNING *', tokenHash);
            return row !== undefined && (row.expires_at as number) > now ? toSsoToken(row) : undefined;
          }),
        deleteFamily: (familyId) =>
          run(() => this.exec('DELETE FROM sso_tokens WHERE family_id = ?', familyId).changes),
        deleteForUser: (userId) =>
          run(() => this.exec('DELETE FROM sso_tokens WHERE user_id = ?', userId).changes),
        deleteExpired: (now) =>
          run(() => this.exec('DELETE FROM sso_tokens WHERE expires_at <= ?', now).changes),
      },

      scimTokens: {
        create: (t) =>
          run(() => {
            const id = randomUUID();
            this.exec(
              'INSERT INTO scim_tokens (id, name, token_hash, provider_id, created_at) VALUES (?, ?, ?, ?, ?)',
              id,
              t.name,
              t.tokenHash,
              t.providerId,
              this.now(),
            );
            return toScimToken(this.one('SELECT * FROM scim_tokens WHERE id = ?', id) as Row);
          }),
        get: (id) =>
          run(() => this.maybe(this.one('SELECT * FROM scim_tokens WHERE id = ?', id), toScimToken)),
        getByHash: (tokenHash) =>
          run(() =>
            this.maybe(this.one('SELECT * FROM scim_tokens WHERE token_hash = ?', tokenHash), toScimToken),
          ),
        list: () => run(() => this.all('SELECT * FROM scim_tokens ORDER BY created_at, id').map(toScimToken)),
        revoke: (id, at) =>
          run(
            () =>
              this.exec('UPDATE scim_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', at, id)
                .changes === 1,
          ),
        touch: (id, at) =>
          run(() => {
            this.exec('UPDATE scim_tokens SET last_used_at = ? WHERE id = ? AND revoked_at IS NULL', at, id);
          }),
      },

      scimResources: {
        save: (r, at) =>
          run(() =>
            toScimResource(
              this.one(
                `INSERT INTO scim_resources (kind, resource_id, provider_id, external_id, token_id, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (kind, resource_id) DO UPDATE SET provider_id = excluded.provider_id,
                   external_id = excluded.external_id, token_id = excluded.token_id, updated_at = excluded.updated_at
                 RETURNING *`,
                r.kind,
                r.resourceId,
                r.providerId,
                r.externalId,
                r.tokenId,
                at,
                at,
              ) as Row,
            ),
          ),
        get: (kind, resourceId) =>
          run(() =>
            this.maybe(
              this.one('SELECT * FROM scim_resources WHERE kind = ? AND resource_id = ?', kind, resourceId),
              toScimResource,
            ),
          ),
        list: (kind, providerId) =>
          run(() =>
            this.all(
              'SELECT * FROM scim_resources WHERE kind = ? AND provider_id = ? ORDER BY resource_id',
              kind,
              providerId,
            ).map(toScimResource),
          ),
        delete: (kind, resourceId) =>
          run(
            () =>
              this.exec('DELETE FROM scim_resources WHERE kind = ? AND resource_id = ?', kind, resourceId)
                .changes === 1,
          ),
      },

      audit: {
        append: (e) =>
          run(() => {
            this.exec(
              'INSERT INTO audit (at, actor_id, actor_name, action, target, details, ip) VALUES (?, ?, ?, ?, ?, ?, ?)',
              e.at ?? this.now(),
              e.actorId,
              e.actorName,
              e.action,
              e.target,
              JSON.stringify(e.details),
              e.ip,
            );
          }),
        list: (q = {}) =>
          run(() => {
            const where: string[] = [];
            const params: unknown[] = [];
            if (q.beforeId !== undefined) {
              where.push('id < ?');
              params.push(q.beforeId);
            }
            if (q.action !== undefined) {
              where.push('action = ?');
              params.push(q.action);
            }
            return this.all(
              `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
              ...params,
              auditPageSize(q.limit),
            ).map(toAudit);
          }),
      },
    };
  }
}
