/**
 * PostgreSQL implementation of the Store (`pg`), for several Cove instances sharing one
 * directory. A pool of connections serves statements; a transaction checks out one connection
 * for its whole life, so only statements made through its `tx` run in it. Times are BIGINT epoch
 * milliseconds, parsed back into numbers; flags are BOOLEAN.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
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

export interface PostgresStoreOptions {
  readonly now?: () => number;
  /** Connections in the pool (default 10). */
  readonly poolSize?: number;
  /** How long a statement waits for a free or new connection before "unavailable" (default 5 s). */
  readonly connectTimeoutMs?: number;
  /**
   * How long a statement waits for a row or table another connection holds before "unavailable"
   * (default 5 s, like SQLite's busy timeout): a request answers 503 instead of hanging.
   */
  readonly lockTimeoutMs?: number;
  /** The longest any one statement may run before it is cancelled as "unavailable" (default 30 s). */
  readonly statementTimeoutMs?: number;
}

/** Runs SQL: through the pool, or on a transaction's one connection. */
interface Executor {
  query(sql: string, params?: readonly unknown[]): Promise<pg.QueryResult<Row>>;
  /** Several statements as one: their own transaction, or the one already open. */
  atomic<T>(fn: (q: Executor) => Promise<T>): Promise<T>;
}

/** Held by the instance that migrates; any other waits, then finds the work done. */
const migrationLockKey = '4354237001';

const bigintOid = 20;
/** Epoch ms and sizes fit a double exactly (below 2^53); pg would otherwise give strings. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === bigintOid && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/** Server-side SQLSTATEs and socket errors that mean "cannot serve now" rather than a bug. */
const unavailableCodes = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '53300', // too_many_connections
  '55P03', // lock_not_available
  '57014', // query_canceled (statement timeout)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '25006', // read_only_sql_transaction (a standby)
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOENT', // the unix socket is gone: the server is not running
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/** The driver's own words for a lost or unobtainable connection (these carry no code). */
const unavailableMessages =
  /timeout exceeded when trying to connect|Connection terminated|connection error|Cannot use a pool after calling end|Client was closed/i;

function storeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  if (code === '23505') return errors.storeConflict(error); // unique_violation
  // disk_full: said as a full disk, not as an unreachable database; the data is intact.
  if (code === '53100' || code === 'ENOSPC') return errors.storeDiskFull(error);
  if (typeof code === 'string' && (unavailableCodes.has(code) || code.startsWith('08')))
    return errors.storeUnavailable(error);
  if (code === undefined && unavailableMessages.test(error.message)) return errors.storeUnavailable(error);
  return error;
}

const mapped = <T>(work: Promise<T>): Promise<T> =>
  work.catch((error: unknown) => {
    throw storeError(error);
  });

export class PostgresStore implements Store {
  private readonly scope = new TransactionScope();
  private readonly repositories: StoreRepositories;
  readonly users: StoreRepositories['users'];
  readonly sessions: StoreRepositories['sessions'];
  readonly groups: StoreRepositories['groups'];
  readonly accounts: StoreRepositories['accounts'];
  readonly permissionSets: StoreRepositories['permissionSets'];
  readonly assignments: StoreRepositories['assignments'];
  readonly invites: StoreRepositories['invites'];
  readonly usage: StoreRepositories['usage'];
  readonly terminals: StoreRepositories['terminals'];
  readonly throttles: StoreRepositories['throttles'];
  readonly leases: StoreRepositories['leases'];
  readonly uploads: StoreRepositories['uploads'];
  readonly identities: StoreRepositories['identities'];
  readonly oidcLogins: StoreRepositories['oidcLogins'];
  readonly recordings: StoreRepositories['recordings'];
  readonly ssoClients: StoreRepositories['ssoClients'];
  readonly ssoGrants: StoreRepositories['ssoGrants'];
  readonly ssoTokens: StoreRepositories['ssoTokens'];
  readonly scimTokens: StoreRepositories['scimTokens'];
  readonly scimResources: StoreRepositories['scimResources'];
  readonly audit: StoreRepositories['audit'];

  private constructor(
    private readonly pool: pg.Pool,
    private readonly now: () => number,
  ) {
    const root: Executor = {
      query: async (sql, params) => {
        this.scope.refuseInside();
        return mapped(this.pool.query<Row>(sql, params as unknown[]));
      },
      atomic: async (fn) => {
        this.scope.refuseInside();
        return this.inTransaction(fn);
      },
    };
    this.repositories = this.repositoriesOver(root);
    ({
      users: this.users,
      sessions: this.sessions,
      groups: this.groups,
      accounts: this.accounts,
      permissionSets: this.permissionSets,
      assignments: this.assignments,
      invites: this.invites,
      usage: this.usage,
      terminals: this.terminals,
      throttles: this.throttles,
      leases: this.leases,
      uploads: this.uploads,
      identities: this.identities,
      oidcLogins: this.oidcLogins,
      recordings: this.recordings,
      ssoClients: this.ssoClients,
      ssoGrants: this.ssoGrants,
      ssoTokens: this.ssoTokens,
      scimTokens: this.scimTokens,
      scimResources: this.scimResources,
      audit: this.audit,
    } = this.repositories);
  }

  /**
   * Connects, applies pending migrations (one instance at a time) and returns the store; refuses
   * a database a newer Cove has migrated (COVE_ERR_STORE_SCHEMA_NEWER).
   */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      lock_timeout: options.lockTimeoutMs ?? 5000,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      types,
    });
    // An idle connection the server drops (restart, failover) is removed from the pool; without
    // a listener the 'error' event would end the process.
    pool.on('error', () => undefined);
    const store = new PostgresStore(pool, options.now ?? Date.now);
    try {
      await store.migrate();
    } catch (error) {
      await pool.end();
      throw error;
    }
    return store;
  }

  /** The version recorded in `schema_migrations`; 0 for an empty database. */
  async schemaVersion(): Promise<number> {
    const { rows } = await mapped(
      this.pool.query<Row>(
        `SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0
                ELSE (SELECT coalesce(max(version), 0) FROM schema_migrations) END AS version`,
      ),
    );
    return Number(rows[0]?.version ?? 0);
  }

  /**
   * Each pending migration in its own transaction, under an advisory lock that instances starting
   * at once queue on; the version is re-read under the lock, so a migration runs once.
   */
  private async migrate(): Promise<void> {
    for (;;) {
      const done = await this.inTransaction(async (q) => {
        // Another instance may be migrating: wait for it however long it takes, not lock_timeout.
        await q.query('SET LOCAL lock_timeout = 0');
        await q.query('SET LOCAL statement_timeout = 0');
        await q.query('SELECT pg_advisory_xact_lock($1::bigint)', [migrationLockKey]);
        await q.query(
          `CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             description TEXT NOT NULL,
             applied_at BIGINT NOT NULL
           )`,
        );
        const { rows } = await q.query('SELECT coalesce(max(version), 0) AS version FROM schema_migrations');
        const found = Number(rows[0]?.version ?? 0);
        if (found > latestSchemaVersion) throw errors.storeSchemaNewer(found, latestSchemaVersion);
        const next = migrations[found];
        if (next === undefined) return true;
        await q.query(next.postgres);
        await q.query(
          'INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)',
          [next.version, next.description, this.now()],
        );
        return false;
      });
      if (done) return;
    }
  }

  /** BEGIN … COMMIT on one checked-out connection; ROLLBACK when `fn` throws. */
  private async inTransaction<T>(
    fn: (q: Executor) => Promise<T>,
    handle = new TransactionHandle(),
  ): Promise<T> {
    const client = await mapped(this.pool.connect());
    let broken: Error | undefined;
    try {
      const q: Executor = {
        query: (sql, params) => {
          handle.check();
          return mapped(client.query<Row>(sql, params as unknown[]));
        },
        atomic: (inner) => inner(q),
      };
      await q.query('BEGIN');
      try {
        const result = await fn(q);
        await q.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          // The connection is gone or unusable: it must not go back to the pool.
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
        throw error;
      }
    } finally {
      handle.end();
      client.release(broken);
    }
  }

  async transaction<T>(fn: (tx: StoreRepositories) => Promise<T>): Promise<T> {
    this.scope.refuseInside();
    const handle = new TransactionHandle();
    return this.inTransaction((q) => this.scope.run(handle, () => fn(this.repositoriesOver(q))), handle);
  }

  async ping(): Promise<boolean> {
    try {
      const { rows } = await mapped(this.pool.query<Row>('SELECT 1 AS ok'));
      return rows[0]?.ok === 1;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }

  private repositoriesOver(q: Executor): StoreRepositories {
    const one = async (sql: string, params: readonly unknown[] = []): Promise<Row | undefined> =>
      (await q.query(sql, params)).rows[0];
    const all = async (sql: string, params: readonly unknown[] = []): Promise<Row[]> =>
      (await q.query(sql, params)).rows;
    const changed = async (sql: string, params: readonly unknown[] = []): Promise<number> =>
      (await q.query(sql, params)).rowCount ?? 0;
    const maybe = <T>(row: Row | undefined, map: (r: Row) => T): T | undefined =>
      row === undefined ? undefined : map(row);
    const sets = (entries: readonly [string, unknown][], first: number): string =>
      entries.map(([column], i) => `${column} = $${first + i}`).join(', ');

    return {
      users: {
        create: async (u) =>
          toUser(
            (await one(
              `INSERT INTO users (id, username, email, password_hash, must_change_password, mfa_required, created_at, source)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
              [
                randomUUID(),
                u.username,
                u.email ?? null,
                u.passwordHash ?? null,
                u.mustChangePassword ?? false,
                u.mfaRequired ?? false,
                this.now(),
                u.source ?? 'local',
              ],
            )) as Row,
          ),
        get: async (id) => maybe(await one('SELECT * FROM users WHERE id = $1', [id]), toUser),
        getByUsername: async (name) =>
          maybe(await one('SELECT * FROM users WHERE username = $1', [name]), toUser),
        list: async () => (await all('SELECT * FROM users ORDER BY username COLLATE "C"')).map(toUser),
        count: async () => (await one('SELECT count(*) AS n FROM users'))?.n as number,
        update: async (id, patch) => {
          const entries = userPatchColumns(patch);
          if (entries.length === 0)
            return maybe(await one('SELECT * FROM users WHERE id = $1', [id]), toUser);
          return maybe(
            await one(`UPDATE users SET ${sets(entries, 2)} WHERE id = $1 RETURNING *`, [
              id,
              ...entries.map(([, v]) => v),
            ]),
            toUser,
          );
        },
        claimTotpStep: async (id, step) =>
          (await changed('UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1', [
            step,
            id,
          ])) === 1,
        resetMfa: async (id) => {
          await q.query(
            'UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = 0 WHERE id = $1',
            [id],
          );
        },
        delete: async (id) => (await changed('DELETE FROM users WHERE id = $1', [id])) === 1,
      },

      sessions: {
        create: async (s) => {
          await q.query(
            `INSERT INTO sessions (id_hash, user_id, stage, created_at, expires_at, provider_id, mfa_by_idp, id_token)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
            [
              s.idHash,
              s.userId,
              s.stage,
              s.createdAt,
              s.expiresAt,
              s.providerId ?? null,
              s.mfaByIdp ?? false,
              s.idToken ?? null,
            ],
          );
        },
        get: async (idHash) =>
          maybe(await one('SELECT * FROM sessions WHERE id_hash = $1', [idHash]), toSession),
        rotate: async (oldIdHash, next) =>
          (await changed(
            `UPDATE sessions SET id_hash = $1, stage = $2, created_at = $3, expires_at = $4, mfa_failures = 0
             WHERE id_hash = $5`,
            [next.idHash, next.stage, next.createdAt, next.expiresAt, oldIdHash],
          )) === 1,
        incrementMfaFailures: async (idHash) =>
          ((
            await one(
              'UPDATE sessions SET mfa_failures = mfa_failures + 1 WHERE id_hash = $1 RETURNING mfa_failures',
              [idHash],
            )
          )?.mfa_failures as number | undefined) ?? 0,
        delete: async (idHash) => {
          await q.query('DELETE FROM sessions WHERE id_hash = $1', [idHash]);
        },
        deleteForUser: async (userId) =>
          (await all('DELETE FROM sessions WHERE user_id = $1 RETURNING id_hash', [userId])).map(
            (r) => r.id_hash as string,
          ),
        deleteExpired: (now) => changed('DELETE FROM sessions WHERE expires_at <= $1', [now]),
      },

      groups: {
        create: async (g) =>
          toGroup(
            (await one(
              `INSERT INTO groups (id, name, description, home_size_bytes, weekly_usage_limit_s, record, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
              [
                randomUUID(),
                g.name,
                g.description ?? '',
                g.homeSizeBytes ?? null,
                g.weeklyUsageLimitS ?? null,
                g.record ?? 'off',
                this.now(),
              ],
            )) as Row,
          ),
        get: async (id) => maybe(await one('SELECT * FROM groups WHERE id = $1', [id]), toGroup),
        getByName: async (name) => maybe(await one('SELECT * FROM groups WHERE name = $1', [name]), toGroup),
        list: async () => (await all('SELECT * FROM groups ORDER BY name COLLATE "C"')).map(toGroup),
        update: async (id, patch) => {
          const entries = (
            [
              ['name', patch.name],
              ['description', patch.description],
              ['home_size_bytes', patch.homeSizeBytes],
              ['weekly_usage_limit_s', patch.weeklyUsageLimitS],
              ['record', patch.record],
            ] as [string, unknown][]
          ).filter(([, v]) => v !== undefined);
          if (entries.length === 0)
            return maybe(await one('SELECT * FROM groups WHERE id = $1', [id]), toGroup);
          return maybe(
            await one(`UPDATE groups SET ${sets(entries, 2)} WHERE id = $1 RETURNING *`, [
              id,
              ...entries.map(([, v]) => v),
            ]),
            toGroup,
          );
        },
        delete: (id) =>
          q.atomic(async (t) => {
            await t.query("DELETE FROM assignments WHERE principal_type = 'group' AND principal_id = $1", [
              id,
            ]);
            return ((await t.query('DELETE FROM groups WHERE id = $1', [id])).rowCount ?? 0) === 1;
          }),
        members: async (groupId) =>
          (
            await all('SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id COLLATE "C"', [
              groupId,
            ])
          ).map((r) => r.user_id as string),
        setMembers: (groupId, userIds) =>
          q.atomic(async (t) => {
            await t.query('DELETE FROM group_members WHERE group_id = $1', [groupId]);
            if (userIds.length > 0)
              await t.query(
                `INSERT INTO group_members (group_id, user_id) SELECT $1, unnest($2::text[])
                 ON CONFLICT DO NOTHING`,
                [groupId, userIds],
              );
          }),
        addMember: async (groupId, userId) => {
          await q.query(
            'INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
            [groupId, userId],
          );
        },
        removeMember: async (groupId, userId) => {
          await q.query('DELETE FROM group_members WHERE group_id = $1 AND user_id = $2', [groupId, userId]);
        },
        groupsOf: async (userId) =>
          (
            await all(
              `SELECT g.* FROM groups g JOIN group_members m ON m.group_id = g.id
               WHERE m.user_id = $1 ORDER BY g.name COLLATE "C"`,
              [userId],
            )
          ).map(toGroup),
      },

      accounts: {
        create: async (a) =>
          toAccount(
            (await one(
              'INSERT INTO accounts (account_id, name, created_at) VALUES ($1, $2, $3) RETURNING *',
              [a.accountId, a.name, this.now()],
            )) as Row,
          ),
        get: async (accountId) =>
          maybe(await one('SELECT * FROM accounts WHERE account_id = $1', [accountId]), toAccount),
        list: async () =>
          (await all('SELECT * FROM accounts ORDER BY name COLLATE "C", account_id COLLATE "C"')).map(
            toAccount,
          ),
        update: async (accountId, patch) =>
          maybe(
            patch.name === undefined
              ? await one('SELECT * FROM accounts WHERE account_id = $1', [accountId])
              : await one('UPDATE accounts SET name = $2 WHERE account_id = $1 RETURNING *', [
                  accountId,
                  patch.name,
                ]),
            toAccount,
          ),
        delete: async (accountId) =>
          (await changed('DELETE FROM accounts WHERE account_id = $1', [accountId])) === 1,
      },

      permissionSets: {
        create: async (p) =>
          toPermissionSet(
            (await one(
              `INSERT INTO permission_sets (id, name, description, session_duration_s, role_arn_template, session_policy, role_overrides, record, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
              [
                randomUUID(),
                p.name,
                p.description ?? '',
                p.sessionDurationS,
                p.roleArnTemplate,
                p.sessionPolicy ?? null,
                JSON.stringify(p.roleOverrides ?? {}),
                p.record ?? 'off',
                this.now(),
              ],
            )) as Row,
          ),
        get: async (id) =>
          maybe(await one('SELECT * FROM permission_sets WHERE id = $1', [id]), toPermissionSet),
        getByName: async (name) =>
          maybe(await one('SELECT * FROM permission_sets WHERE name = $1', [name]), toPermissionSet),
        list: async () =>
          (await all('SELECT * FROM permission_sets ORDER BY name COLLATE "C"')).map(toPermissionSet),
        update: async (id, patch) => {
          const entries = permissionSetColumns(patch);
          if (entries.length === 0)
            return maybe(await one('SELECT * FROM permission_sets WHERE id = $1', [id]), toPermissionSet);
          return maybe(
            await one(`UPDATE permission_sets SET ${sets(entries, 2)} WHERE id = $1 RETURNING *`, [
              id,
              ...entries.map(([, v]) => v),
            ]),
            toPermissionSet,
          );
        },
        delete: async (id) => (await changed('DELETE FROM permission_sets WHERE id = $1', [id])) === 1,
      },

      assignments: {
        create: async (a) =>
          toAssignment(
            (await one(
              `INSERT INTO assignments (id, principal_type, principal_id, account_id, permission_set_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
              [randomUUID(), a.principalType, a.principalId, a.accountId, a.permissionSetId, this.now()],
            )) as Row,
          ),
        get: async (id) => maybe(await one('SELECT * FROM assignments WHERE id = $1', [id]), toAssignment),
        list: async () =>
          (await all('SELECT * FROM assignments ORDER BY created_at, id COLLATE "C"')).map(toAssignment),
        delete: async (id) => (await changed('DELETE FROM assignments WHERE id = $1', [id])) === 1,
      },

      invites: {
        create: async (i) => {
          await q.query(
            'INSERT INTO invites (token_hash, user_id, expires_at, created_at) VALUES ($1, $2, $3, $4)',
            [i.tokenHash, i.userId, i.expiresAt, this.now()],
          );
        },
        get: async (tokenHash) =>
          maybe(await one('SELECT * FROM invites WHERE token_hash = $1', [tokenHash]), toInvite),
        consume: async (tokenHash, now) =>
          (await changed('UPDATE invites SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL', [
            now,
            tokenHash,
          ])) === 1,
        deleteForUser: async (userId) => {
          await q.query('DELETE FROM invites WHERE user_id = $1', [userId]);
        },
        pendingFor: async (userId) =>
          maybe(
            await one(
              `SELECT * FROM invites WHERE user_id = $1 AND used_at IS NULL
               ORDER BY created_at DESC, expires_at DESC LIMIT 1`,
              [userId],
            ),
            toInvite,
          ),
      },

      usage: {
        add: (increments) =>
          q.atomic(async (t) => {
            for (const i of increments)
              if (i.seconds > 0)
                // Through SELECT: a user deleted since the tick has nothing to charge, and no FK error.
                await t.query(
                  `INSERT INTO usage (user_id, week_start, used_s) SELECT id, $1, $2 FROM users WHERE id = $3
                   ON CONFLICT (user_id, week_start) DO UPDATE SET used_s = usage.used_s + excluded.used_s`,
                  [i.weekStart, Math.round(i.seconds), i.userId],
                );
          }),
        get: async (userId, weekStart) =>
          ((await one('SELECT used_s FROM usage WHERE user_id = $1 AND week_start = $2', [userId, weekStart]))
            ?.used_s as number | undefined) ?? 0,
        prune: (beforeWeekStart) => changed('DELETE FROM usage WHERE week_start < $1', [beforeWeekStart]),
      },

      terminals: {
        save: async (t) => {
          await q.query(
            `INSERT INTO terminals (id, owner_id, region, account_id, permission_set, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)`,
            [t.id, t.ownerId, t.region, t.accountId ?? null, t.permissionSet ?? null, t.createdAt],
          );
        },
        delete: async (id) => {
          await q.query('DELETE FROM terminals WHERE id = $1', [id]);
        },
        list: async () =>
          (await all('SELECT * FROM terminals ORDER BY created_at, id COLLATE "C"')).map(toTerminal),
      },

      recordings: {
        create: async (r) => {
          await q.query(
            `INSERT INTO recordings (id, terminal_id, user_id, username, region, account_id, permission_set, mode, started_at, storage, location)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
            [
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
            ],
          );
        },
        finish: async (id, end) =>
          (await changed('UPDATE recordings SET ended_at = $2, bytes = $3, complete = $4 WHERE id = $1', [
            id,
            end.endedAt,
            end.bytes,
            end.complete,
          ])) === 1,
        get: async (id) => maybe(await one('SELECT * FROM recordings WHERE id = $1', [id]), toRecording),
        search: async (query) => {
          const { where, values } = recordingFilter(query);
          let n = 0;
          const numbered = where.replaceAll('?', () => `$${++n}`);
          return (
            await all(
              `SELECT * FROM recordings ${numbered} ORDER BY started_at DESC, id COLLATE "C" LIMIT $${n + 1}`,
              [...values, recordingPageSize(query.limit)],
            )
          ).map(toRecording);
        },
        startedBefore: async (startedBefore, limit) =>
          (
            await all(
              'SELECT * FROM recordings WHERE started_at < $1 ORDER BY started_at, id COLLATE "C" LIMIT $2',
              [startedBefore, limit],
            )
          ).map(toRecording),
        delete: async (id) => (await changed('DELETE FROM recordings WHERE id = $1', [id])) === 1,
      },

      throttles: {
        recordFailure: (scope, subject, now, policy) =>
          q.atomic(async (t) => {
            // The upsert locks the row until the commit, so concurrent failures from any instance
            // queue on it and each one counts.
            const counted = (
              await t.query(
                `INSERT INTO throttles (scope, subject, failures, blocked_until, forget_at) VALUES ($1, $2, 1, 0, $3)
                 ON CONFLICT (scope, subject) DO UPDATE SET
                   failures = CASE WHEN throttles.forget_at <= $4 THEN 1 ELSE throttles.failures + 1 END,
                   forget_at = GREATEST(throttles.forget_at, excluded.forget_at)
                 RETURNING failures, blocked_until`,
                [scope, subject, throttleForgetAt(policy, now, 0), now],
              )
            ).rows[0] as Row;
            const failures = counted.failures as number;
            const blockedUntil = throttleBlockedUntil(policy, failures, now, counted.blocked_until as number);
            if (blockedUntil === counted.blocked_until) return { failures, blockedUntil };
            const blocked = (
              await t.query(
                `UPDATE throttles SET blocked_until = GREATEST(blocked_until, $1), forget_at = GREATEST(forget_at, $2)
                 WHERE scope = $3 AND subject = $4 RETURNING blocked_until`,
                [blockedUntil, throttleForgetAt(policy, now, blockedUntil), scope, subject],
              )
            ).rows[0] as Row;
            return { failures, blockedUntil: blocked.blocked_until as number };
          }),
        retryAfter: async (scope, subject, now) => {
          const row = await one('SELECT blocked_until FROM throttles WHERE scope = $1 AND subject = $2', [
            scope,
            subject,
          ]);
          return Math.max(((row?.blocked_until as number | undefined) ?? 0) - now, 0);
        },
        reset: async (scope, subject) => {
          await q.query('DELETE FROM throttles WHERE scope = $1 AND subject = $2', [scope, subject]);
        },
        prune: (now) => changed('DELETE FROM throttles WHERE forget_at <= $1', [now]),
      },

      leases: {
        tryAcquire: async (name, holder, now, ttlMs) =>
          (await changed(
            `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4`,
            [name, holder, now + ttlMs, now],
          )) === 1,
        release: async (name, holder) => {
          await q.query('DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]);
        },
      },

      uploads: {
        save: async (u) => {
          await q.query(
            `INSERT INTO uploads (id, owner_id, region, dir, name, size, replace_existing, multipart, key_prefix, parts, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
            [
              u.id,
              u.ownerId,
              u.region,
              u.dir,
              u.name,
              u.size,
              u.replace,
              u.multipart,
              u.keyPrefix,
              JSON.stringify(u.parts),
              u.createdAt,
            ],
          );
        },
        get: async (id) => maybe(await one('SELECT * FROM uploads WHERE id = $1', [id]), toStagedUpload),
        pendingFor: async (ownerId) =>
          (
            await all(
              'SELECT * FROM uploads WHERE owner_id = $1 AND finished_at IS NULL ORDER BY created_at, id COLLATE "C"',
              [ownerId],
            )
          ).map(toStagedUpload),
        claim: async (id) =>
          (await changed(
            'UPDATE uploads SET completing = TRUE WHERE id = $1 AND NOT completing AND finished_at IS NULL',
            [id],
          )) === 1,
        unclaim: async (id) => {
          await q.query('UPDATE uploads SET completing = FALSE WHERE id = $1', [id]);
        },
        finish: async (id, result, at) => {
          await q.query(
            'UPDATE uploads SET completing = FALSE, finished_at = $2, result = $3 WHERE id = $1',
            [id, at, JSON.stringify(result)],
          );
        },
        delete: async (id) => (await changed('DELETE FROM uploads WHERE id = $1', [id])) === 1,
        prune: (createdBefore, finishedBefore) =>
          changed(
            `DELETE FROM uploads WHERE (finished_at IS NULL AND created_at < $1)
             OR (finished_at IS NOT NULL AND finished_at < $2)`,
            [createdBefore, finishedBefore],
          ),
      },

      identities: {
        link: async (i) =>
          (await changed(
            `INSERT INTO identities (provider_id, subject, user_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (provider_id, subject) DO NOTHING`,
            [i.providerId, i.subject, i.userId, this.now()],
          )) === 1,
        get: async (providerId, subject) =>
          maybe(
            await one('SELECT * FROM identities WHERE provider_id = $1 AND subject = $2', [
              providerId,
              subject,
            ]),
            toIdentity,
          ),
        listFor: async (userId) =>
          (
            await all(
              'SELECT * FROM identities WHERE user_id = $1 ORDER BY provider_id COLLATE "C", subject COLLATE "C"',
              [userId],
            )
          ).map(toIdentity),
      },

      oidcLogins: {
        create: async (l) => {
          await q.query(
            `INSERT INTO oidc_logins (id_hash, provider_id, state, nonce, code_verifier, next, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)`,
            [l.idHash, l.providerId, l.state, l.nonce, l.codeVerifier, l.next, l.expiresAt],
          );
        },
        // One statement: of two racing callbacks, only the one whose DELETE removed the row gets it.
        take: async (idHash, now) => {
          const row = await one('DELETE FROM oidc_logins WHERE id_hash = $1 RETURNING *', [idHash]);
          return row !== undefined && (row.expires_at as number) > now ? toOidcLogin(row) : undefined;
        },
        deleteExpired: (now) => changed('DELETE FROM oidc_logins WHERE expires_at <= $1', [now]),
      },

      ssoClients: {
        create: async (c) => {
          await q.query(
            'INSERT INTO sso_clients (client_id, secret_hash, name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
            [c.clientId, c.secretHash, c.name, c.createdAt, c.expiresAt],
          );
        },
        get: async (clientId) =>
          maybe(await one('SELECT * FROM sso_clients WHERE client_id = $1', [clientId]), toSsoClient),
        deleteExpired: (now) => changed('DELETE FROM sso_clients WHERE expires_at <= $1', [now]),
      },

      ssoGrants: {
        create: async (g) => {
          await q.query(
            `INSERT INTO sso_grants (code_hash, kind, client_id, user_code, redirect_uri, state, code_challenge,
               created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
            [
              g.codeHash,
              g.kind,
              g.clientId,
              g.userCode,
              g.redirectUri,
              g.state,
              g.codeChallenge,
              g.createdAt,
              g.expiresAt,
            ],
          );
        },
        get: async (codeHash) =>
          maybe(await one('SELECT * FROM sso_grants WHERE code_hash = $1', [codeHash]), toSsoGrant),
        getByUserCode: async (userCode) =>
          maybe(await one('SELECT * FROM sso_grants WHERE user_code = $1', [userCode]), toSsoGrant),
        decide: async (userCode, answer, now) =>
          (await changed(
            `UPDATE sso_grants SET status = $1, user_id = $2, code_hash = COALESCE($3, code_hash),
               expires_at = COALESCE($4::BIGINT, expires_at)
             WHERE user_code = $5 AND status = 'pending' AND expires_at > $6`,
            [answer.status, answer.userId, answer.codeHash ?? null, answer.expiresAt ?? null, userCode, now],
          )) === 1,
        recordPoll: async (codeHash, now, minIntervalMs) =>
          (await changed(
            `UPDATE sso_grants SET last_polled_at = $1
             WHERE code_hash = $2 AND (last_polled_at IS NULL OR last_polled_at <= $3)`,
            [now, codeHash, now - minIntervalMs],
          )) === 1,
        take: async (codeHash, now) => {
          const row = await one('DELETE FROM sso_grants WHERE code_hash = $1 RETURNING *', [codeHash]);
          return row !== undefined && (row.expires_at as number) > now ? toSsoGrant(row) : undefined;
        },
        deleteExpired: (now) => changed('DELETE FROM sso_grants WHERE expires_at <= $1', [now]),
      },

      ssoTokens: {
        create: (tokens) =>
          q.atomic(async (t) => {
            for (const token of tokens)
              await t.query(
                `INSERT INTO sso_tokens (token_hash, kind, family_id, client_id, user_id, created_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)`,
                [
                  token.tokenHash,
                  token.kind,
                  token.familyId,
                  token.clientId,
                  token.userId,
                  token.createdAt,
                  token.expiresAt,
                ],
              );
          }),
        get: async (tokenHash) =>
          maybe(await one('SELECT * FROM sso_tokens WHERE token_hash = $1', [tokenHash]), toSsoToken),
        take: async (tokenHash, now) => {
          const row = await one('DELETE FROM sso_tokens WHERE token_hash = $1 RETURNING *', [tokenHash]);
          return row !== undefined && (row.expires_at as number) > now ? toSsoToken(row) : undefined;
        },
        deleteFamily: (familyId) => changed('DELETE FROM sso_tokens WHERE family_id = $1', [familyId]),
        deleteForUser: (userId) => changed('DELETE FROM sso_tokens WHERE user_id = $1', [userId]),
        deleteExpired: (now) => changed('DELETE FROM sso_tokens WHERE expires_at <= $1', [now]),
      },

      scimTokens: {
        create: async (t) =>
          toScimToken(
            (await one(
              `INSERT INTO scim_tokens (id, name, token_hash, provider_id, created_at)
               VALUES ($1, $2, $3, $4, $5) RETURNING *`,
              [randomUUID(), t.name, t.tokenHash, t.providerId, this.now()],
            )) as Row,
          ),
        get: async (id) => maybe(await one('SELECT * FROM scim_tokens WHERE id = $1', [id]), toScimToken),
        getByHash: async (tokenHash) =>
          maybe(await one('SELECT * FROM scim_tokens WHERE token_hash = $1', [tokenHash]), toScimToken),
        list: async () =>
          (await all('SELECT * FROM scim_tokens ORDER BY created_at, id COLLATE "C"')).map(toScimToken),
        revoke: async (id, at) =>
          (await changed('UPDATE scim_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [
            id,
            at,
          ])) === 1,
        touch: async (id, at) => {
          await q.query('UPDATE scim_tokens SET last_used_at = $2 WHERE id = $1 AND revoked_at IS NULL', [
            id,
            at,
          ]);
        },
      },

      scimResources: {
        save: async (r, at) =>
          toScimResource(
            (await one(
              `INSERT INTO scim_resources (kind, resource_id, provider_id, external_id, token_id, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $6)
               ON CONFLICT (kind, resource_id) DO UPDATE SET provider_id = excluded.provider_id,
                 external_id = excluded.external_id, token_id = excluded.token_id, updated_at = excluded.updated_at
               RETURNING *`,
              [r.kind, r.resourceId, r.providerId, r.externalId, r.tokenId, at],
            )) as Row,
          ),
        get: async (kind, resourceId) =>
          maybe(
            await one('SELECT * FROM scim_resources WHERE kind = $1 AND resource_id = $2', [
              kind,
              resourceId,
            ]),
            toScimResource,
          ),
        list: async (kind, providerId) =>
          (
            await all(
              'SELECT * FROM scim_resources WHERE kind = $1 AND provider_id = $2 ORDER BY resource_id COLLATE "C"',
              [kind, providerId],
            )
          ).map(toScimResource),
        delete: async (kind, resourceId) =>
          (await changed('DELETE FROM scim_resources WHERE kind = $1 AND resource_id = $2', [
            kind,
            resourceId,
          ])) === 1,
      },

      audit: {
        append: async (e) => {
          await q.query(
            `INSERT INTO audit (at, actor_id, actor_name, action, target, details, ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7)`,
            [e.at ?? this.now(), e.actorId, e.actorName, e.action, e.target, JSON.stringify(e.details), e.ip],
          );
        },
        list: async (query = {}) => {
          const where: string[] = [];
          const params: unknown[] = [];
          if (query.beforeId !== undefined) {
            params.push(query.beforeId);
            where.push(`id < $${params.length}`);
          }
          if (query.action !== undefined) {
            params.push(query.action);
            where.push(`action = $${params.length}`);
          }
          params.push(auditPageSize(query.limit));
          return (
            await all(
              `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`,
              params,
            )
          ).map(toAudit);
        },
      },
    };
  }
}
