/**
 * Versioned schema migrations for both engines, in one ordered list: version N is the N-th entry,
 * the same change in each dialect. Each is applied in its own transaction and recorded (SQLite:
 * `PRAGMA user_version`; PostgreSQL: the `schema_migrations` table). Never edit a shipped
 * migration: add a new one. PostgreSQL keeps epoch-ms times and byte sizes in BIGINT and flags
 * in BOOLEAN; SQLite's INTEGER holds both.
 */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sqlite: string;
  readonly postgres: string;
}

const list: readonly Omit<Migration, 'version'>[] = [
  {
    description: 'directory, sessions, invites, audit',
    sqlite: `
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
    postgres: `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    password_hash TEXT,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    mfa_required BOOLEAN NOT NULL DEFAULT FALSE,
    totp_secret TEXT,
    totp_pending_secret TEXT,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT
  );
  CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stage TEXT NOT NULL CHECK (stage IN ('mfa', 'full')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    mfa_failures INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX sessions_user ON sessions(user_id);
  CREATE INDEX sessions_expires ON sessions(expires_at);
  CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
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
    created_at BIGINT NOT NULL
  );
  CREATE TABLE permission_sets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    session_duration_s INTEGER NOT NULL CHECK (session_duration_s BETWEEN 3600 AND 43200),
    role_arn_template TEXT NOT NULL,
    session_policy TEXT,
    role_overrides TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
  );
  CREATE TABLE assignments (
    id TEXT PRIMARY KEY,
    principal_type TEXT NOT NULL CHECK (principal_type IN ('user', 'group')),
    principal_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
    permission_set_id TEXT NOT NULL REFERENCES permission_sets(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    UNIQUE (principal_type, principal_id, account_id, permission_set_id)
  );
  CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL
  );
  CREATE INDEX invites_user ON invites(user_id);
  CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id TEXT,
    actor_name TEXT,
    action TEXT NOT NULL,
    target TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    ip TEXT
  );
  CREATE INDEX audit_action ON audit(action, id);
  `,
  },
  {
    description: "per-group home size (NULL: the region's or the default)",
    sqlite: `
  ALTER TABLE groups ADD COLUMN home_size_bytes INTEGER CHECK (home_size_bytes IS NULL OR home_size_bytes > 0);
  `,
    postgres: `
  ALTER TABLE groups ADD COLUMN home_size_bytes BIGINT CHECK (home_size_bytes IS NULL OR home_size_bytes > 0);
  `,
  },
  {
    description: 'weekly usage quota per group (NULL: unlimited) and shell time used per user per week',
    sqlite: `
  ALTER TABLE groups ADD COLUMN weekly_usage_limit_s INTEGER
    CHECK (weekly_usage_limit_s IS NULL OR weekly_usage_limit_s >= 0);
  CREATE TABLE usage (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    week_start INTEGER NOT NULL,
    used_s INTEGER NOT NULL DEFAULT 0 CHECK (used_s >= 0),
    PRIMARY KEY (user_id, week_start)
  );
  `,
    postgres: `
  ALTER TABLE groups ADD COLUMN weekly_usage_limit_s BIGINT
    CHECK (weekly_usage_limit_s IS NULL OR weekly_usage_limit_s >= 0);
  CREATE TABLE usage (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    week_start BIGINT NOT NULL,
    used_s BIGINT NOT NULL DEFAULT 0 CHECK (used_s >= 0),
    PRIMARY KEY (user_id, week_start)
  );
  `,
  },
  {
    description: 'terminals that outlive a server restart (the binding is never taken from the container)',
    sqlite: `
  CREATE TABLE terminals (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    region TEXT NOT NULL,
    account_id TEXT,
    permission_set TEXT,
    created_at INTEGER NOT NULL
  );
  `,
    postgres: `
  CREATE TABLE terminals (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    region TEXT NOT NULL,
    account_id TEXT,
    permission_set TEXT,
    created_at BIGINT NOT NULL
  );
  `,
  },
  {
    description: 'sign-in failures per account and per address, shared by every instance',
    sqlite: `
  CREATE TABLE throttles (
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    failures INTEGER NOT NULL CHECK (failures > 0),
    blocked_until INTEGER NOT NULL DEFAULT 0,
    forget_at INTEGER NOT NULL,
    PRIMARY KEY (scope, subject)
  );
  CREATE INDEX throttles_forget ON throttles(forget_at);
  `,
    postgres: `
  CREATE TABLE throttles (
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    failures INTEGER NOT NULL CHECK (failures > 0),
    blocked_until BIGINT NOT NULL DEFAULT 0,
    forget_at BIGINT NOT NULL,
    PRIMARY KEY (scope, subject)
  );
  CREATE INDEX throttles_forget ON throttles(forget_at);
  `,
  },
  {
    description: 'leases: which instance runs a periodic job, until when',
    sqlite: `
  CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  `,
    postgres: `
  CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  `,
  },
  {
    description: 'uploads between their URLs and their completion, for any instance to complete',
    sqlite: `
  CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    region TEXT NOT NULL,
    dir TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    replace_existing INTEGER NOT NULL,
    multipart INTEGER NOT NULL,
    key_prefix TEXT NOT NULL,
    parts TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    completing INTEGER NOT NULL DEFAULT 0,
    finished_at INTEGER,
    result TEXT
  );
  CREATE INDEX uploads_owner ON uploads(owner_id);
  `,
    postgres: `
  CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    region TEXT NOT NULL,
    dir TEXT NOT NULL,
    name TEXT NOT NULL,
    size BIGINT NOT NULL CHECK (size >= 0),
    replace_existing BOOLEAN NOT NULL,
    multipart BOOLEAN NOT NULL,
    key_prefix TEXT NOT NULL,
    parts TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    completing BOOLEAN NOT NULL DEFAULT FALSE,
    finished_at BIGINT,
    result TEXT
  );
  CREATE INDEX uploads_owner ON uploads(owner_id);
  `,
  },
  {
    description: 'OpenID Connect: federated identities, sign-ins in flight, what a session signed in with',
    sqlite: `
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
    postgres: `
  ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
  CREATE TABLE identities (
    provider_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
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
    expires_at BIGINT NOT NULL
  );
  ALTER TABLE sessions ADD COLUMN provider_id TEXT;
  ALTER TABLE sessions ADD COLUMN mfa_by_idp BOOLEAN NOT NULL DEFAULT FALSE;
  ALTER TABLE sessions ADD COLUMN id_token TEXT;
  `,
  },
  {
    description: 'session recordings: the policy on groups and permission sets, and what was recorded',
    sqlite: `
  ALTER TABLE groups ADD COLUMN record TEXT NOT NULL DEFAULT 'off';
  ALTER TABLE permission_sets ADD COLUMN record TEXT NOT NULL DEFAULT 'off';
  CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    region TEXT NOT NULL,
    account_id TEXT,
    permission_set TEXT,
    mode TEXT NOT NULL CHECK (mode IN ('output', 'output+input')),
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    bytes INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 1,
    storage TEXT NOT NULL,
    location TEXT NOT NULL
  );
  CREATE INDEX recordings_started ON recordings(started_at);
  CREATE INDEX recordings_user ON recordings(user_id, started_at);
  `,
    postgres: `
  ALTER TABLE groups ADD COLUMN record TEXT NOT NULL DEFAULT 'off';
  ALTER TABLE permission_sets ADD COLUMN record TEXT NOT NULL DEFAULT 'off';
  CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    region TEXT NOT NULL,
    account_id TEXT,
    permission_set TEXT,
    mode TEXT NOT NULL CHECK (mode IN ('output', 'output+input')),
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    bytes BIGINT NOT NULL DEFAULT 0,
    complete BOOLEAN NOT NULL DEFAULT TRUE,
    storage TEXT NOT NULL,
    location TEXT NOT NULL
  );
  CREATE INDEX recordings_started ON recordings(started_at);
  CREATE INDEX recordings_user ON recordings(user_id, started_at);
  `,
  },
  {
    description: 'AWS CLI sign-in (SSO OIDC): registered clients, requests awaiting a person, tokens',
    sqlite: `
  CREATE TABLE sso_clients (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE sso_grants (
    code_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_code TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending',
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri TEXT,
    state TEXT,
    code_challenge TEXT,
    last_polled_at INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE sso_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX sso_tokens_family ON sso_tokens(family_id);
  CREATE INDEX sso_tokens_user ON sso_tokens(user_id);
  `,
    postgres: `
  CREATE TABLE sso_clients (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE TABLE sso_grants (
    code_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_code TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending',
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri TEXT,
    state TEXT,
    code_challenge TEXT,
    last_polled_at BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE TABLE sso_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE INDEX sso_tokens_family ON sso_tokens(family_id);
  CREATE INDEX sso_tokens_user ON sso_tokens(user_id);
  `,
  },
  {
    description: 'SCIM provisioning: client tokens (hashed) and what SCIM knows of the resources it wrote',
    sqlite: `
  CREATE TABLE scim_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    provider_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  );
  CREATE TABLE scim_resources (
    kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    resource_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    external_id TEXT,
    token_id TEXT NOT NULL REFERENCES scim_tokens(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, resource_id)
  );
  CREATE INDEX scim_resources_provider ON scim_resources(provider_id, kind);
  `,
    postgres: `
  CREATE TABLE scim_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    provider_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
  );
  CREATE TABLE scim_resources (
    kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    resource_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    external_id TEXT,
    token_id TEXT NOT NULL REFERENCES scim_tokens(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, resource_id)
  );
  CREATE INDEX scim_resources_provider ON scim_resources(provider_id, kind);
  `,
  },
];

export const migrations: readonly Migration[] = list.map((m, index) => ({ version: index + 1, ...m }));

/** The version this code's schema is at: the last migration's. */
export const latestSchemaVersion = migrations.length;
