/**
 * Versioned schema migrations, applied in order inside one transaction each; `PRAGMA
 * user_version` records the last one applied. Never edit a shipped migration: add a new one.
 */
export const migrations: readonly string[] = [
  /* 1: directory, sessions, invites, audit */ `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    mfa_required INTEGER NOT NULL DEFAULT 0,
    totp_secret TEXT,
    totp_pending_secret TEXT,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    last_login_at INTEGER
  );
  CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stage TEXT NOT NULL CHECK (stage IN ('mfa', 'full')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    mfa_failures INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX sessions_user ON sessions(user_id);
  CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
  );
  CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
  );
  CREATE INDEX group_members_user ON group_members(user_id);
  CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY CHECK (length(account_id) = 12),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE permission_sets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    session_duration_s INTEGER NOT NULL CHECK (session_duration_s BETWEEN 3600 AND 43200),
    role_arn_template TEXT NOT NULL,
    session_policy TEXT,
    role_overrides TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
  );
  CREATE TABLE assignments (
    id TEXT PRIMARY KEY,
    principal_type TEXT NOT NULL CHECK (principal_type IN ('user', 'group')),
    principal_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
    permission_set_id TEXT NOT NULL REFERENCES permission_sets(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    UNIQUE (principal_type, principal_id, account_id, permission_set_id)
  );
  CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor_id TEXT,
    actor_name TEXT,
    action TEXT NOT NULL,
    target TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    ip TEXT
  );
  CREATE INDEX audit_action ON audit(action, id);
  `,
  /* 2: per-group home size (NULL: the region's or the default) */ `
  ALTER TABLE groups ADD COLUMN home_size_bytes INTEGER CHECK (home_size_bytes IS NULL OR home_size_bytes > 0);
  `,
  /* 3: weekly usage quota per group (NULL: unlimited) and shell time used per user per week */ `
  ALTER TABLE groups ADD COLUMN weekly_usage_limit_s INTEGER
    CHECK (weekly_usage_limit_s IS NULL OR weekly_usage_limit_s >= 0);
  CREATE TABLE usage (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    week_start INTEGER NOT NULL,
    used_s INTEGER NOT NULL DEFAULT 0 CHECK (used_s >= 0),
    PRIMARY KEY (user_id, week_start)
  );
  `,
  /* 4: terminals that outlive a server restart (the binding is never taken from the container) */ `
  CREATE TABLE terminals (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    region TEXT NOT NULL,
    account_id TEXT,
    permission_set TEXT,
    created_at INTEGER NOT NULL
  );
  `,
  /* 5: OpenID Connect: federated identities, sign-ins in flight, and what a session signed in with */ `
  ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
  CREATE TABLE identities (
    provider_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (provider_id, subject)
  );
  CREATE INDEX identities_user ON identities(user_id);
  CREATE TABLE oidc_logins (
    id_hash TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    state TEXT NOT NULL,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    next TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  ALTER TABLE sessions ADD COLUMN provider_id TEXT;
  ALTER TABLE sessions ADD COLUMN mfa_by_idp INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE sessions ADD COLUMN id_token TEXT;
  `,
];
