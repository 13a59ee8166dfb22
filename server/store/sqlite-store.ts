/**
 * SQLite implementation of the Store (better-sqlite3 12, WAL, foreign keys on). Calls are
 * synchronous under the hood; the async surface is the seam for PostgreSQL.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { errors } from '../errors.js';
import { migrations } from './migrations.js';
import type {
  AccountRecord,
  AssignmentRecord,
  AuditRecord,
  GroupRecord,
  IdentityRecord,
  InviteRecord,
  OidcLoginRecord,
  PermissionSetRecord,
  SessionRecord,
  Store,
  UserPatch,
  UserRecord,
} from './store.js';

type Row = Record<string, unknown>;

const toUser = (r: Row): UserRecord => ({
  id: r.id as string,
  username: r.username as string,
  email: (r.email as string | null) ?? null,
  passwordHash: (r.password_hash as string | null) ?? null,
  disabled: r.disabled === 1,
  mustChangePassword: r.must_change_password === 1,
  mfaRequired: r.mfa_required === 1,
  totpSecret: (r.totp_secret as string | null) ?? null,
  totpPendingSecret: (r.totp_pending_secret as string | null) ?? null,
  totpLastStep: r.totp_last_step as number,
  createdAt: r.created_at as number,
  lastLoginAt: (r.last_login_at as number | null) ?? null,
  source: r.source as string,
});

const toSession = (r: Row): SessionRecord => ({
  idHash: r.id_hash as string,
  userId: r.user_id as string,
  stage: r.stage as SessionRecord['stage'],
  createdAt: r.created_at as number,
  expiresAt: r.expires_at as number,
  mfaFailures: r.mfa_failures as number,
  providerId: (r.provider_id as string | null) ?? null,
  mfaByIdp: r.mfa_by_idp === 1,
  idToken: (r.id_token as string | null) ?? null,
});

const toIdentity = (r: Row): IdentityRecord => ({
  providerId: r.provider_id as string,
  subject: r.subject as string,
  userId: r.user_id as string,
  createdAt: r.created_at as number,
});

const toOidcLogin = (r: Row): OidcLoginRecord => ({
  idHash: r.id_hash as string,
  providerId: r.provider_id as string,
  state: r.state as string,
  nonce: r.nonce as string,
  codeVerifier: r.code_verifier as string,
  next: r.next as string,
  expiresAt: r.expires_at as number,
});

const toGroup = (r: Row): GroupRecord => ({
  id: r.id as string,
  name: r.name as string,
  description: r.description as string,
  homeSizeBytes: (r.home_size_bytes as number | null) ?? null,
  weeklyUsageLimitS: (r.weekly_usage_limit_s as number | null) ?? null,
  createdAt: r.created_at as number,
});

const toAccount = (r: Row): AccountRecord => ({
  accountId: r.account_id as string,
  name: r.name as string,
  createdAt: r.created_at as number,
});

const toPermissionSet = (r: Row): PermissionSetRecord => ({
  id: r.id as string,
  name: r.name as string,
  description: r.description as string,
  sessionDurationS: r.session_duration_s as number,
  roleArnTemplate: r.role_arn_template as string,
  sessionPolicy: (r.session_policy as string | null) ?? null,
  roleOverrides: JSON.parse(r.role_overrides as string) as Record<string, string>,
  createdAt: r.created_at as number,
});

const toAssignment = (r: Row): AssignmentRecord => ({
  id: r.id as string,
  principalType: r.principal_type as AssignmentRecord['principalType'],
  principalId: r.principal_id as string,
  accountId: r.account_id as string,
  permissionSetId: r.permission_set_id as string,
  createdAt: r.created_at as number,
});

const toInvite = (r: Row): InviteRecord => ({
  tokenHash: r.token_hash as string,
  userId: r.user_id as string,
  expiresAt: r.expires_at as number,
  usedAt: (r.used_at as number | null) ?? null,
  createdAt: r.created_at as number,
});

const toAudit = (r: Row): AuditRecord => ({
  id: r.id as number,
  at: r.at as number,
  actorId: (r.actor_id as string | null) ?? null,
  actorName: (r.actor_name as string | null) ?? null,
  action: r.action as string,
  target: (r.target as string | null) ?? null,
  details: JSON.parse(r.details as string) as Record<string, unknown>,
  ip: (r.ip as string | null) ?? null,
});

const userColumns: Record<keyof UserPatch, string> = {
  email: 'email',
  passwordHash: 'password_hash',
  disabled: 'disabled',
  mustChangePassword: 'must_change_password',
  mfaRequired: 'mfa_required',
  totpSecret: 'totp_secret',
  totpPendingSecret: 'totp_pending_secret',
  lastLoginAt: 'last_login_at',
};

const sqlValue = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 1 : 0) : v);

/** SQLite errors that mean "the database cannot serve now" rather than a bug. */
const unavailableCodes = new Set([
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_FULL',
  'SQLITE_IOERR',
  'SQLITE_READONLY',
  'SQLITE_CANTOPEN',
]);

/** SQLITE_FULL (and its extended codes): SQLite's word for ENOSPC on the database, journal or WAL. */
const isDiskFull = (code: string): boolean =>
  code === 'SQLITE_FULL' || code.startsWith('SQLITE_FULL_') || code === 'ENOSPC';

export class SqliteStore implements Store {
  private readonly db: Database.Database;

  /** Opens (creating if needed) the database file and applies pending migrations. */
  constructor(
    path: string,
    private readonly now: () => number = Date.now,
  ) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.migrate();
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private migrate(): void {
    const current = this.schemaVersion;
    migrations.slice(current).forEach((sql, index) => {
      this.db.transaction(() => {
        this.db.exec(sql);
        this.db.pragma(`user_version = ${current + index + 1}`);
      })();
    });
  }

  /** Runs a statement, turning storage-level failures into a 503 instead of a crash. */
  private run<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      // Said as a full disk, not as an unreachable database: the data is intact and reads still work.
      if (isDiskFull(code)) return Promise.reject(errors.storeDiskFull(error));
      // A closed connection (shutdown, or lost) throws a plain TypeError: still "cannot serve now".
      if (
        !this.db.open ||
        unavailableCodes.has(code) ||
        [...unavailableCodes].some((c) => code.startsWith(`${c}_`))
      )
        return Promise.reject(errors.storeUnavailable(error));
      return Promise.reject(error);
    }
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

  readonly users: Store['users'] = {
    create: (u) =>
      this.run(() => {
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
    get: (id) => this.run(() => this.maybe(this.one('SELECT * FROM users WHERE id = ?', id), toUser)),
    getByUsername: (name) =>
      this.run(() => this.maybe(this.one('SELECT * FROM users WHERE username = ?', name), toUser)),
    list: () => this.run(() => this.all('SELECT * FROM users ORDER BY username').map(toUser)),
    count: () => this.run(() => (this.one('SELECT count(*) AS n FROM users') as Row).n as number),
    update: (id, patch) =>
      this.run(() => {
        const entries = Object.entries(patch).filter(([k, v]) => v !== undefined && k in userColumns);
        if (entries.length > 0) {
          const sets = entries.map(([k]) => `${userColumns[k as keyof UserPatch]} = ?`).join(', ');
          this.exec(`UPDATE users SET ${sets} WHERE id = ?`, ...entries.map(([, v]) => sqlValue(v)), id);
        }
        return this.maybe(this.one('SELECT * FROM users WHERE id = ?', id), toUser);
      }),
    claimTotpStep: (id, step) =>
      this.run(
        () =>
          this.exec('UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?', step, id, step)
            .changes === 1,
      ),
    resetMfa: (id) =>
      this.run(() => {
        this.exec(
          'UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = 0 WHERE id = ?',
          id,
        );
      }),
    delete: (id) => this.run(() => this.exec('DELETE FROM users WHERE id = ?', id).changes === 1),
  };

  readonly sessions: Store['sessions'] = {
    create: (s) =>
      this.run(() => {
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
      this.run(() => this.maybe(this.one('SELECT * FROM sessions WHERE id_hash = ?', idHash), toSession)),
    rotate: (oldIdHash, next) =>
      this.run(
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
      this.run(() => {
        this.exec('UPDATE sessions SET mfa_failures = mfa_failures + 1 WHERE id_hash = ?', idHash);
        return (
          (this.one('SELECT mfa_failures FROM sessions WHERE id_hash = ?', idHash)?.mfa_failures as number) ??
          0
        );
      }),
    delete: (idHash) =>
      this.run(() => {
        this.exec('DELETE FROM sessions WHERE id_hash = ?', idHash);
      }),
    deleteForUser: (userId) =>
      this.run(() =>
        this.db.transaction(() => {
          const ids = this.all('SELECT id_hash FROM sessions WHERE user_id = ?', userId).map(
            (r) => r.id_hash as string,
          );
          this.exec('DELETE FROM sessions WHERE user_id = ?', userId);
          return ids;
        })(),
      ),
    deleteExpired: (now) =>
      this.run(() => this.exec('DELETE FROM sessions WHERE expires_at <= ?', now).changes),
  };

  readonly groups: Store['groups'] = {
    create: (g) =>
      this.run(() => {
        const id = randomUUID();
        this.exec(
          `INSERT INTO groups (id, name, description, home_size_bytes, weekly_usage_limit_s, created_at)
           VALUES (?, ?, ?, ?, ?, ?)`,
          id,
          g.name,
          g.description ?? '',
          g.homeSizeBytes ?? null,
          g.weeklyUsageLimitS ?? null,
          this.now(),
        );
        return toGroup(this.one('SELECT * FROM groups WHERE id = ?', id) as Row);
      }),
    get: (id) => this.run(() => this.maybe(this.one('SELECT * FROM groups WHERE id = ?', id), toGroup)),
    getByName: (name) =>
      this.run(() => this.maybe(this.one('SELECT * FROM groups WHERE name = ?', name), toGroup)),
    list: () => this.run(() => this.all('SELECT * FROM groups ORDER BY name').map(toGroup)),
    update: (id, patch) =>
      this.run(() => {
        if (patch.name !== undefined) this.exec('UPDATE groups SET name = ? WHERE id = ?', patch.name, id);
        if (patch.description !== undefined)
          this.exec('UPDATE groups SET description = ? WHERE id = ?', patch.description, id);
        if (patch.homeSizeBytes !== undefined)
          this.exec('UPDATE groups SET home_size_bytes = ? WHERE id = ?', patch.homeSizeBytes, id);
        if (patch.weeklyUsageLimitS !== undefined)
          this.exec('UPDATE groups SET weekly_usage_limit_s = ? WHERE id = ?', patch.weeklyUsageLimitS, id);
        return this.maybe(this.one('SELECT * FROM groups WHERE id = ?', id), toGroup);
      }),
    delete: (id) =>
      this.run(() =>
        this.db.transaction(() => {
          this.exec("DELETE FROM assignments WHERE principal_type = 'group' AND principal_id = ?", id);
          return this.exec('DELETE FROM groups WHERE id = ?', id).changes === 1;
        })(),
      ),
    members: (groupId) =>
      this.run(() =>
        this.all('SELECT user_id FROM group_members WHERE group_id = ?', groupId).map(
          (r) => r.user_id as string,
        ),
      ),
    setMembers: (groupId, userIds) =>
      this.run(() =>
        this.db.transaction(() => {
          this.exec('DELETE FROM group_members WHERE group_id = ?', groupId);
          const insert = this.db.prepare(
            'INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)',
          );
          for (const userId of userIds) insert.run(groupId, userId);
        })(),
      ),
    addMember: (groupId, userId) =>
      this.run(() => {
        this.exec('INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)', groupId, userId);
      }),
    removeMember: (groupId, userId) =>
      this.run(() => {
        this.exec('DELETE FROM group_members WHERE group_id = ? AND user_id = ?', groupId, userId);
      }),
    groupsOf: (userId) =>
      this.run(() =>
        this.all(
          'SELECT g.* FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.name',
          userId,
        ).map(toGroup),
      ),
  };

  readonly accounts: Store['accounts'] = {
    create: (a) =>
      this.run(() => {
        this.exec(
          'INSERT INTO accounts (account_id, name, created_at) VALUES (?, ?, ?)',
          a.accountId,
          a.name,
          this.now(),
        );
        return toAccount(this.one('SELECT * FROM accounts WHERE account_id = ?', a.accountId) as Row);
      }),
    get: (accountId) =>
      this.run(() =>
        this.maybe(this.one('SELECT * FROM accounts WHERE account_id = ?', accountId), toAccount),
      ),
    list: () => this.run(() => this.all('SELECT * FROM accounts ORDER BY name, account_id').map(toAccount)),
    update: (accountId, patch) =>
      this.run(() => {
        if (patch.name !== undefined)
          this.exec('UPDATE accounts SET name = ? WHERE account_id = ?', patch.name, accountId);
        return this.maybe(this.one('SELECT * FROM accounts WHERE account_id = ?', accountId), toAccount);
      }),
    delete: (accountId) =>
      this.run(() => this.exec('DELETE FROM accounts WHERE account_id = ?', accountId).changes === 1),
  };

  readonly permissionSets: Store['permissionSets'] = {
    create: (p) =>
      this.run(() => {
        const id = randomUUID();
        this.exec(
          `INSERT INTO permission_sets (id, name, description, session_duration_s, role_arn_template, session_policy, role_overrides, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          id,
          p.name,
          p.description ?? '',
          p.sessionDurationS,
          p.roleArnTemplate,
          p.sessionPolicy ?? null,
          JSON.stringify(p.roleOverrides ?? {}),
          this.now(),
        );
        return toPermissionSet(this.one('SELECT * FROM permission_sets WHERE id = ?', id) as Row);
      }),
    get: (id) =>
      this.run(() => this.maybe(this.one('SELECT * FROM permission_sets WHERE id = ?', id), toPermissionSet)),
    getByName: (name) =>
      this.run(() =>
        this.maybe(this.one('SELECT * FROM permission_sets WHERE name = ?', name), toPermissionSet),
      ),
    list: () => this.run(() => this.all('SELECT * FROM permission_sets ORDER BY name').map(toPermissionSet)),
    update: (id, patch) =>
      this.run(() => {
        const columns: Record<string, unknown> = {
          name: patch.name,
          description: patch.description,
          session_duration_s: patch.sessionDurationS,
          role_arn_template: patch.roleArnTemplate,
          session_policy: patch.sessionPolicy,
          role_overrides: patch.roleOverrides === undefined ? undefined : JSON.stringify(patch.roleOverrides),
        };
        const entries = Object.entries(columns).filter(([, v]) => v !== undefined);
        if (entries.length > 0)
          this.exec(
            `UPDATE permission_sets SET ${entries.map(([k]) => `${k} = ?`).join(', ')} WHERE id = ?`,
            ...entries.map(([, v]) => v),
            id,
          );
        return this.maybe(this.one('SELECT * FROM permission_sets WHERE id = ?', id), toPermissionSet);
      }),
    delete: (id) => this.run(() => this.exec('DELETE FROM permission_sets WHERE id = ?', id).changes === 1),
  };

  readonly assignments: Store['assignments'] = {
    create: (a) =>
      this.run(() => {
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
      this.run(() => this.maybe(this.one('SELECT * FROM assignments WHERE id = ?', id), toAssignment)),
    list: () =>
      this.run(() => this.all('SELECT * FROM assignments ORDER BY created_at, id').map(toAssignment)),
    delete: (id) => this.run(() => this.exec('DELETE FROM assignments WHERE id = ?', id).changes === 1),
  };

  readonly invites: Store['invites'] = {
    create: (i) =>
      this.run(() => {
        this.exec(
          'INSERT INTO invites (token_hash, user_id, expires_at, created_at) VALUES (?, ?, ?, ?)',
          i.tokenHash,
          i.userId,
          i.expiresAt,
          this.now(),
        );
      }),
    get: (tokenHash) =>
      this.run(() => this.maybe(this.one('SELECT * FROM invites WHERE token_hash = ?', tokenHash), toInvite)),
    consume: (tokenHash, now) =>
      this.run(
        () =>
          this.exec('UPDATE invites SET used_at = ? WHERE token_hash = ? AND used_at IS NULL', now, tokenHash)
            .changes === 1,
      ),
    deleteForUser: (userId) =>
      this.run(() => {
        this.exec('DELETE FROM invites WHERE user_id = ?', userId);
      }),
    pendingFor: (userId) =>
      this.run(() =>
        this.maybe(
          this.one(
            'SELECT * FROM invites WHERE user_id = ? AND used_at IS NULL ORDER BY created_at DESC, expires_at DESC LIMIT 1',
            userId,
          ),
          toInvite,
        ),
      ),
  };

  readonly usage: Store['usage'] = {
    add: (increments) =>
      this.run(() =>
        this.db.transaction(() => {
          // Through SELECT: a user deleted since the tick has nothing to charge, and no FK error.
          const upsert = this.db.prepare(
            `INSERT INTO usage (user_id, week_start, used_s) SELECT id, ?, ? FROM users WHERE id = ?
             ON CONFLICT (user_id, week_start) DO UPDATE SET used_s = used_s + excluded.used_s`,
          );
          for (const i of increments)
            if (i.seconds > 0) upsert.run(i.weekStart, Math.round(i.seconds), i.userId);
        })(),
      ),
    get: (userId, weekStart) =>
      this.run(
        () =>
          (this.one('SELECT used_s FROM usage WHERE user_id = ? AND week_start = ?', userId, weekStart)
            ?.used_s as number | undefined) ?? 0,
      ),
    prune: (beforeWeekStart) =>
      this.run(() => this.db.prepare('DELETE FROM usage WHERE week_start < ?').run(beforeWeekStart).changes),
  };

  readonly terminals: Store['terminals'] = {
    save: (t) =>
      this.run(() => {
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
      this.run(() => {
        this.exec('DELETE FROM terminals WHERE id = ?', id);
      }),
    list: () =>
      this.run(() =>
        this.all('SELECT * FROM terminals ORDER BY created_at').map((row) => ({
          id: row.id as string,
          ownerId: row.owner_id as string,
          region: row.region as string,
          ...(row.account_id ? { accountId: row.account_id as string } : {}),
          ...(row.permission_set ? { permissionSet: row.permission_set as string } : {}),
          createdAt: row.created_at as number,
        })),
      ),
  };

  readonly identities: Store['identities'] = {
    link: (i) =>
      this.run(
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
      this.run(() =>
        this.maybe(
          this.one('SELECT * FROM identities WHERE provider_id = ? AND subject = ?', providerId, subject),
          toIdentity,
        ),
      ),
    listFor: (userId) =>
      this.run(() =>
        this.all('SELECT * FROM identities WHERE user_id = ? ORDER BY provider_id, subject', userId).map(
          toIdentity,
        ),
      ),
  };

  readonly oidcLogins: Store['oidcLogins'] = {
    create: (l) =>
      this.run(() => {
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
    take: (idHash, now) =>
      this.run(() => {
        const row = this.one('DELETE FROM oidc_logins WHERE id_hash = ? RETURNING *', idHash);
        return row && (row.expires_at as number) > now ? toOidcLogin(row) : undefined;
      }),
    deleteExpired: (now) =>
      this.run(() => this.exec('DELETE FROM oidc_logins WHERE expires_at <= ?', now).changes),
  };

  readonly audit: Store['audit'] = {
    append: (e) =>
      this.run(() => {
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
      this.run(() => {
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
        const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
        return this.all(
          `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${limit}`,
          ...params,
        ).map(toAudit);
      }),
  };

  /**
   * All-or-nothing. `fn` must await only store calls: the connection is shared, so unrelated I/O
   * inside the transaction would let other requests' statements join it.
   */
  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    // Through run(): a write lock held too long elsewhere (SQLITE_BUSY) is a 503, not a 500.
    await this.run(() => this.db.exec('BEGIN IMMEDIATE'));
    try {
      const result = await fn();
      await this.run(() => this.db.exec('COMMIT'));
      return result;
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw error;
    }
  }

  ping(): Promise<boolean> {
    return this.run(() => (this.one('SELECT 1 AS ok') as Row).ok === 1).catch(() => false);
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }

  private maybe<T>(row: Row | undefined, map: (r: Row) => T): T | undefined {
    return row === undefined ? undefined : map(row);
  }
}
