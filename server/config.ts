/**
 * Cove's configuration: one schema (every key described and defaulted), read from
 * `cove.config.json` (path from COVE_CONFIG) and overridden by COVE_* environment variables.
 * This is the only module that reads process.env.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** Cove may manage the host firewall only as root on Linux. */
const linuxRoot = process.platform === 'linux' && process.getuid?.() === 0;

const dockerEndpoint = {
  socketPath: Type.Optional(Type.String({ description: 'Docker engine unix socket' })),
  host: Type.Optional(Type.String({ description: 'Remote Docker engine host (TLS)' })),
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  caPath: Type.Optional(Type.String()),
  certPath: Type.Optional(Type.String()),
  keyPath: Type.Optional(Type.String()),
};

const Region = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-\\d$', description: 'Region id such as eu-west-1' }),
    name: Type.String({ minLength: 1, description: 'Display name such as "Europe (Ireland)"' }),
    backend: Type.Optional(
      Type.Object(
        {
          type: Type.Literal('docker', { description: 'The backend kind; only docker so far' }),
          ...dockerEndpoint,
        },
        {
          additionalProperties: false,
          description:
            'What runs environments of this region; default { "type": "docker" } on the local socket (or at `docker`)',
        },
      ),
    ),
    docker: Type.Optional(
      Type.Object(dockerEndpoint, {
        additionalProperties: false,
        description:
          'Docker endpoint for this region, the spelling before `backend`; default the local socket',
      }),
    ),
    homeSizeBytes: Type.Optional(
      Type.Integer({ minimum: 64 * 1024 * 1024, description: 'Home size in this region' }),
    ),
    network: Type.Optional(
      Type.Object(
        {
          allow: Type.Array(
            Type.String({
              pattern: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$',
              description: 'IPv4 CIDR such as 10.20.0.0/16',
            }),
            {
              default: [],
              description:
                'Private or reserved IPv4 ranges environments of this region may reach anyway (an internal API, a proxy); everything else private stays blocked',
            },
          ),
        },
        { additionalProperties: false, description: 'Egress exceptions for this region (docs/hardening.md)' },
      ),
    ),
    runtime: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'OCI runtime for environments of this region, e.g. runsc (gVisor); it must be in the engine\'s daemon.json "runtimes". Default the engine\'s (runc)',
      }),
    ),
    s3: Type.Optional(
      Type.Object(
        {
          bucket: Type.String({
            minLength: 3,
            maxLength: 63,
            description: 'Staging bucket for file transfer',
          }),
          prefix: Type.String({
            default: 'cove-staging/',
            description: 'Key prefix of staging objects (keys are {prefix}{userId}/{transferId})',
          }),
          endpoint: Type.Optional(
            Type.String({ description: 'S3-compatible endpoint URL (MinIO, Ceph); default AWS' }),
          ),
          forcePathStyle: Type.Optional(
            Type.Boolean({ description: 'Path-style URLs (http://host/bucket/key), as MinIO usually needs' }),
          ),
          region: Type.Optional(
            Type.String({ description: "The bucket's region; default this region's id" }),
          ),
        },
        {
          additionalProperties: false,
          description:
            "S3 staging for upload/download in this region; credentials from the server's default AWS chain. None: the embedded S3",
        },
      ),
    ),
  },
  { additionalProperties: false },
);

/** Provider ids become URL path segments and environment variable names. */
export const oidcProviderIdPattern = '^[a-z0-9][a-z0-9-]{0,31}$';

const OidcProvider = Type.Object(
  {
    id: Type.String({
      pattern: oidcProviderIdPattern,
      description:
        'Short slug (lowercase letters, digits, -): the callback is <publicUrl>/auth/oidc/<id>/callback',
    }),
    name: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'Shown on the sign-in button: "Sign in with <name>"',
    }),
    issuer: Type.String({
      pattern: '^https?://',
      description:
        'Issuer URL; Cove reads <issuer>/.well-known/openid-configuration. https, or http only on a loopback address',
    }),
    clientId: Type.String({ minLength: 1, description: 'Client id registered at the provider' }),
    clientSecret: Type.String({
      default: '',
      description:
        'Client secret; better from COVE_AUTH_OIDC_<ID>_CLIENT_SECRET (id upper-cased, - as _) or clientSecretFile. Empty: a public client (PKCE only). Never logged',
    }),
    clientSecretFile: Type.String({
      default: '',
      description: 'File holding the client secret (a mounted secret); wins over clientSecret',
    }),
    scopes: Type.Array(Type.String({ pattern: '^[^\\s"\\\\]+$' }), {
      default: ['openid', 'profile', 'email'],
      description: 'Scopes to ask for; openid is always added',
    }),
    usernameClaim: Type.String({
      default: 'preferred_username',
      minLength: 1,
      description:
        'Claim that becomes the Cove user name: preferred_username, or email (then email_verified must be true)',
    }),
    emailClaim: Type.String({ default: 'email', minLength: 1, description: 'Claim with the email address' }),
    groupsClaim: Type.String({
      default: 'groups',
      description:
        "Claim listing the user's groups: at each sign-in the user's Cove groups are set to those of exactly these names (others ignored; a missing claim means none). Empty: groups are not taken from the provider, admins manage them in Cove",
    }),
    provisioning: Type.Union([Type.Literal('jit'), Type.Literal('preProvisioned')], {
      default: 'jit',
      description:
        'jit: make the Cove user at the first sign-in; preProvisioned: only users an administrator made for this provider may sign in',
    }),
    trustIdpMfa: Type.Boolean({
      default: false,
      description:
        "When the ID token's amr/acr says MFA happened at the provider, skip Cove's own TOTP; false: Cove's TOTP as for local users",
    }),
    mfaAmrValues: Type.Array(Type.String({ minLength: 1 }), {
      default: ['mfa', 'otp', 'hwk', 'swk'],
      description: 'amr values (RFC 8176) that count as MFA done at the provider',
    }),
    mfaAcrValues: Type.Array(Type.String({ minLength: 1 }), {
      default: ['http://schemas.openid.net/pape/policies/2007/06/multi-factor'],
      description: 'acr values that count as MFA done at the provider (they differ per provider)',
    }),
    adminsFromClaim: Type.Boolean({
      default: false,
      description:
        'Let the groups claim put users in the admins group; false: a claimed "admins" is ignored and logged',
    }),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', description: 'Address to listen on (COVE_HOST)' }),
    port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535, description: 'Port (COVE_PORT)' }),
    publicUrl: Type.String({
      default: '',
      description:
        'Public origin users reach Cove at, e.g. https://cove.example.com (COVE_PUBLIC_URL); default http://<host>:<port>',
    }),
    dataDir: Type.String({
      default: './data',
      description: 'Where the database and homes live (COVE_DATA_DIR)',
    }),
    database: Type.Object(
      {
        url: Type.String({
          default: '',
          description:
            'PostgreSQL to keep the directory, sessions and audit in, shared by every Cove instance that names it, e.g. postgres://cove:secret@db.example.com:5432/cove or postgres://cove@/cove?host=/run/postgresql (COVE_DATABASE_URL); empty: SQLite in dataDir/cove.db',
        }),
      },
      { default: {}, additionalProperties: false, description: 'Where Cove keeps its data' },
    ),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info', description: 'Log level (COVE_LOG_LEVEL)' },
    ),
    instanceId: Type.String({
      default: '',
      description:
        "This process's name in every log line, in /readyz and as the `instance` label of every metric; unique among the Cove servers sharing a database. 1-64 of A-Z a-z 0-9 . _ - (COVE_INSTANCE_ID); default <hostname>-<6 random hex digits>",
    }),
    trustedProxies: Type.Array(Type.String(), {
      default: [],
      description:
        'Reverse proxies whose X-Forwarded-For/-Host/-Proto Cove believes: addresses or CIDRs such as 127.0.0.1, 10.0.0.0/8, ::1, or loopback, linklocal, uniquelocal. Empty: the headers are ignored and the client is the TCP peer (COVE_TRUSTED_PROXIES, comma-separated)',
    }),
    metrics: Type.Object(
      {
        token: Type.String({
          default: '',
          description:
            'Turns on GET /metrics (Prometheus), which then needs "Authorization: Bearer <token>"; at least 32 characters. Empty: /metrics answers 404 (COVE_METRICS_TOKEN)',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    auth: Type.Object(
      {
        sessionTtlS: Type.Integer({
          default: 8 * 3600,
          minimum: 60,
          description: 'Portal session lifetime (COVE_AUTH_SESSION_TTL_S)',
        }),
        mfaPendingTtlS: Type.Integer({
          default: 300,
          minimum: 30,
          description: 'Time to enter the TOTP code after the password',
        }),
        requireMfa: Type.Boolean({
          default: false,
          description: 'Require TOTP MFA for every user (COVE_AUTH_REQUIRE_MFA)',
        }),
        inviteTtlS: Type.Integer({
          default: 7 * 86400,
          minimum: 60,
          description: 'Invite link lifetime (COVE_AUTH_INVITE_TTL_S)',
        }),
        argon2MemoryKiB: Type.Integer({
          default: 65536,
          minimum: 1024,
          description:
            'argon2id memory cost in KiB (64 MiB x 3 passes: ~80 ms per sign-in on an idle 2-core machine)',
        }),
        argon2TimeCost: Type.Integer({ default: 3, minimum: 1, description: 'argon2id iterations' }),
        maxFailuresPerAccount: Type.Integer({
          default: 5,
          minimum: 1,
          description: 'Failed sign-ins per account before backoff',
        }),
        maxFailuresPerIp: Type.Integer({
          default: 30,
          minimum: 1,
          description: 'Failed sign-ins per IP before backoff',
        }),
        throttleWindowS: Type.Integer({
          default: 900,
          minimum: 1,
          description: 'Window in which failures count',
        }),
        throttleBaseDelayS: Type.Integer({
          default: 30,
          minimum: 1,
          description: 'First backoff; doubles per further failure',
        }),
        throttleMaxDelayS: Type.Integer({ default: 900, minimum: 1, description: 'Longest backoff' }),
        sessionRecheckS: Type.Integer({
          default: 30,
          minimum: 1,
          maximum: 60,
          description:
            'How often open terminals re-check their session, user and access; an ended one closes within this (COVE_AUTH_SESSION_RECHECK_S)',
        }),
        oidc: Type.Array(OidcProvider, {
          default: [],
          description:
            "OpenID Connect providers users may sign in with, beside Cove's own directory (COVE_AUTH_OIDC as JSON)",
        }),
        oidcClockToleranceS: Type.Integer({
          default: 60,
          minimum: 0,
          maximum: 300,
          description:
            "Clock difference with the providers tolerated for ID tokens' exp and iat (COVE_AUTH_OIDC_CLOCK_TOLERANCE_S)",
        }),
        oidcLoginTtlS: Type.Integer({
          default: 600,
          minimum: 60,
          maximum: 3600,
          description: 'Time to finish signing in at the provider before the sign-in expires',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    regions: Type.Array(Region, {
      default: [{ id: 'us-east-1', name: 'US East (N. Virginia)' }],
      minItems: 1,
      description: 'Regions users can open shells in (COVE_REGIONS as JSON)',
    }),
    defaultRegion: Type.String({
      default: '',
      description: 'Region preselected in the portal; default the first',
    }),
    sandbox: Type.Object(
      {
        image: Type.String({
          default: 'cove/sandbox:latest',
          description: 'Environment image (COVE_SANDBOX_IMAGE)',
        }),
        pidsLimit: Type.Integer({ default: 512, minimum: 16, description: 'Max processes per environment' }),
        memoryBytes: Type.Integer({
          default: 2 * 1024 ** 3,
          minimum: 64 * 1024 ** 2,
          description: 'Memory per environment',
        }),
        cpuMillis: Type.Integer({
          default: 1000,
          minimum: 10,
          description: 'CPU per environment in millicores (1000 = 1 CPU)',
        }),
        nanoCpus: Type.Optional(
          Type.Integer({
            minimum: 10_000_000,
            description: 'Deprecated spelling of cpuMillis in nano CPUs (1e9 = 1 CPU); cpuMillis wins',
          }),
        ),
        tmpSizeBytes: Type.Integer({
          default: 256 * 1024 ** 2,
          minimum: 1024 ** 2,
          description: 'Size cap of /tmp',
        }),
        maxTerminalsPerUser: Type.Integer({
          default: 10,
          minimum: 1,
          description: 'Concurrent terminals per user per region (COVE_SANDBOX_MAX_TERMINALS)',
        }),
        idleTimeoutS: Type.Integer({
          default: 20 * 60,
          minimum: 10,
          description: 'Close a terminal after this long without input (COVE_SANDBOX_IDLE_TIMEOUT_S)',
        }),
        idleWarningS: Type.Integer({
          default: 120,
          minimum: 1,
          description: 'Warn this long before the idle timeout',
        }),
        maxSessionAgeS: Type.Integer({
          default: 12 * 3600,
          minimum: 10,
          description: 'Hard maximum terminal age, input or not',
        }),
        graceS: Type.Integer({
          default: 10 * 60,
          minimum: 0,
          description: 'Keep a detached terminal this long (COVE_SANDBOX_GRACE_S)',
        }),
        maxConcurrentStarts: Type.Integer({
          default: 4,
          minimum: 1,
          maximum: 256,
          description:
            'Environment starts that run at once per Cove server; more wait in order and their pages show their place (COVE_SANDBOX_MAX_CONCURRENT_STARTS)',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    homes: Type.Object(
      {
        sizeBytes: Type.Integer({
          default: 1024 ** 3,
          minimum: 64 * 1024 ** 2,
          description: 'Default home size (COVE_HOMES_SIZE_BYTES)',
        }),
        retentionDays: Type.Integer({
          default: 120,
          minimum: 1,
          description: 'Delete homes unused this long (COVE_HOMES_RETENTION_DAYS)',
        }),
        enabled: Type.Boolean({
          default: true,
          description:
            'Persistent loop-mounted homes (needs root on the host); false gives throwaway homes (COVE_HOMES_ENABLED)',
        }),
        reserveBytes: Type.Integer({
          default: 1024 ** 3,
          minimum: 0,
          description:
            'Free space the host must keep after creating a new home; existing homes may grow into it (COVE_HOMES_RESERVE_BYTES)',
        }),
        ownerUid: Type.Integer({
          default: 1000,
          minimum: 1,
          description:
            'Host uid that owns new homes: 1000, or the mapped uid under the engine\'s userns-remap (101000 for "default"; docs/hardening.md) (COVE_HOMES_OWNER_UID)',
        }),
        sweepIntervalS: Type.Integer({
          default: 86_400,
          minimum: 60,
          description: 'How often expired homes are deleted (COVE_HOMES_SWEEP_INTERVAL_S)',
        }),
        sweepDelayS: Type.Integer({
          default: 300,
          minimum: 0,
          description: 'Delay of the first retention sweep after start',
        }),
        usageCheckIntervalS: Type.Integer({
          default: 45,
          minimum: 5,
          description: 'How often open terminals check their home for the 90 % notice',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    files: Type.Object(
      {
        maxFileBytes: Type.Integer({
          default: 1024 ** 3,
          minimum: 1,
          description: 'Largest file a user may upload or download (COVE_FILES_MAX_FILE_BYTES)',
        }),
        multipartThresholdBytes: Type.Integer({
          default: 16 * 1024 ** 2,
          minimum: 5 * 1024 ** 2,
          description: 'Files above this size are uploaded in parts (COVE_FILES_MULTIPART_THRESHOLD_BYTES)',
        }),
        partSizeBytes: Type.Integer({
          default: 16 * 1024 ** 2,
          minimum: 5 * 1024 ** 2,
          maximum: 5 * 1024 ** 3,
          description:
            'Size of each part of a multipart transfer; S3 needs at least 5 MiB (COVE_FILES_PART_SIZE_BYTES)',
        }),
        presignExpiryS: Type.Integer({
          default: 900,
          minimum: 60,
          maximum: 7 * 86_400,
          description: 'How long presigned upload and download URLs work (COVE_FILES_PRESIGN_EXPIRY_S)',
        }),
        stagingRetentionS: Type.Integer({
          default: 86_400,
          minimum: 600,
          description:
            'Staging objects and unfinished multipart uploads older than this are deleted (COVE_FILES_STAGING_RETENTION_S)',
        }),
        sweepIntervalS: Type.Integer({
          default: 3600,
          minimum: 10,
          description: 'How often the staging sweep runs (it also runs at start)',
        }),
        s3TimeoutMs: Type.Integer({
          default: 5000,
          minimum: 100,
          description:
            'Connect and response timeout of S3 calls, and the longest an S3 body may move no bytes mid-transfer, so a dead or hung S3 gives a 503 quickly (COVE_FILES_S3_TIMEOUT_MS)',
        }),
        maxStagedBytesPerUser: Type.Integer({
          default: 2 * 1024 ** 3,
          minimum: 1,
          description:
            "Most bytes of one user's files Cove holds in staging at once: uploads not yet saved and downloads being copied or not yet fetched; a transfer that would pass it is refused (COVE_FILES_MAX_STAGED_BYTES_PER_USER)",
        }),
        maxConcurrentDownloadsPerUser: Type.Integer({
          default: 2,
          minimum: 1,
          maximum: 100,
          description:
            'Downloads one user may have being copied into staging at once (COVE_FILES_MAX_CONCURRENT_DOWNLOADS_PER_USER)',
        }),
        downloadExpiryS: Type.Integer({
          default: 300,
          minimum: 5,
          maximum: 86_400,
          description:
            "How long a download's presigned URL works; its staged copy is deleted then, or as soon as the embedded S3 has served it once (COVE_FILES_DOWNLOAD_EXPIRY_S)",
        }),
        stagingReserveBytes: Type.Integer({
          default: 1024 ** 3,
          minimum: 0,
          description:
            "Free disk the embedded S3's directory must keep after a transfer is staged; below it transfers are refused with 507 (COVE_FILES_STAGING_RESERVE_BYTES)",
        }),
        embeddedS3Port: Type.Integer({
          default: 0,
          minimum: 0,
          maximum: 65535,
          description:
            'Port of the embedded S3 on 127.0.0.1 when no region configures S3; 0 picks a free one (COVE_FILES_EMBEDDED_S3_PORT)',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    usage: Type.Object(
      {
        tickS: Type.Integer({
          default: 60,
          minimum: 1,
          maximum: 3600,
          description:
            'How often shell time is counted and saved; a crash loses at most this much (COVE_USAGE_TICK_S)',
        }),
        keepWeeks: Type.Integer({
          default: 26,
          minimum: 1,
          maximum: 520,
          description:
            'Weeks of shell time kept per user, the current one included; older weeks are deleted at the first count after start and once a week (COVE_USAGE_KEEP_WEEKS)',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    terminals: Type.Object(
      {
        mirrorScrollbackLines: Type.Integer({
          default: 1000,
          minimum: 0,
          maximum: 100_000,
          description:
            'Scrollback lines each live terminal keeps on the server to repaint a page that reattaches (about 1 MB at 80 columns) (COVE_TERMINALS_MIRROR_SCROLLBACK_LINES)',
        }),
        heartbeatS: Type.Integer({
          default: 15,
          minimum: 0,
          maximum: 300,
          description:
            'WebSocket ping interval; a socket that misses one is closed, so half-open ones go within two intervals; 0 turns it off (COVE_TERMINALS_HEARTBEAT_S)',
        }),
        maxSocketsPerUser: Type.Integer({
          default: 40,
          minimum: 1,
          maximum: 1000,
          description:
            'Open terminal WebSockets one user may hold at once, over all terminals, tabs and regions; one more closes with 4429 (COVE_TERMINALS_MAX_SOCKETS_PER_USER)',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    links: Type.Object(
      {
        gitAllowedPrefixes: Type.Array(Type.String({ pattern: '^https://(\\S*/)?$', maxLength: 512 }), {
          default: ['https://'],
          maxItems: 100,
          description:
            'Repositories an "Open in Cove" link may clone: a link\'s git URL must start with one of these. Each is https:// alone (any https host) or ends with "/" (https://github.com/my-org/), so a prefix cannot match a longer host name; [] turns cloning from links off (COVE_LINKS_GIT_ALLOWED_PREFIXES, comma-separated)',
        }),
        cloneTimeoutS: Type.Integer({
          default: 120,
          minimum: 5,
          maximum: 3600,
          description:
            'How long the clone a link asks for may take before it is stopped and the user is told (COVE_LINKS_CLONE_TIMEOUT_S)',
        }),
      },
      {
        default: {},
        additionalProperties: false,
        description: '"Open in Cove" links (README: Open in Cove)',
      },
    ),
    recordings: Type.Object(
      {
        maxBytes: Type.Integer({
          default: 50 * 1024 * 1024,
          minimum: 4096,
          maximum: 64 * 1024 ** 3,
          description:
            'Largest recording file; a longer session is cut there with a marker event and the recording is marked incomplete (COVE_RECORDINGS_MAX_BYTES)',
        }),
        retentionDays: Type.Integer({
          default: 90,
          minimum: 1,
          maximum: 3650,
          description:
            'Days a recording is kept after it started; older ones are deleted by an hourly sweep (COVE_RECORDINGS_RETENTION_DAYS)',
        }),
        queueBytes: Type.Integer({
          default: 4 * 1024 * 1024,
          minimum: 64 * 1024,
          maximum: 1024 ** 3,
          description:
            'Per terminal, recorded output waiting for the disk; past it the recording drops events and is marked incomplete rather than slow the terminal (COVE_RECORDINGS_QUEUE_BYTES)',
        }),
      },
      {
        default: {},
        additionalProperties: false,
        description:
          'Session recordings (asciicast v2 files under dataDir/recordings), turned on per group or permission set by an administrator',
      },
    ),
    sso: Type.Object(
      {
        accessTokenTtlS: Type.Integer({
          default: 3600,
          minimum: 300,
          maximum: 43_200,
          description:
            'Lifetime of an access token the AWS CLI gets from `aws sso login`; the SDKs refresh it themselves (COVE_SSO_ACCESS_TOKEN_TTL_S)',
        }),
        sessionTtlS: Type.Integer({
          default: 28_800,
          minimum: 900,
          maximum: 604_800,
          description:
            'How long after `aws sso login` refreshing keeps working; then the user signs in again (COVE_SSO_SESSION_TTL_S)',
        }),
        requestTtlS: Type.Integer({
          default: 600,
          minimum: 60,
          maximum: 1800,
          description:
            'Time to approve a sign-in request on the "Authorize request" page before its code expires (COVE_SSO_REQUEST_TTL_S)',
        }),
        pollIntervalS: Type.Integer({
          default: 5,
          minimum: 1,
          maximum: 60,
          description:
            'Seconds the CLI must wait between polls for a device sign-in; faster polls get SlowDownException (COVE_SSO_POLL_INTERVAL_S)',
        }),
        clientTtlS: Type.Integer({
          default: 7_776_000,
          minimum: 3600,
          maximum: 31_536_000,
          description:
            'How long a CLI registration (RegisterClient) stays valid; the CLI registers again after it (COVE_SSO_CLIENT_TTL_S)',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    credentials: Type.Object(
      {
        accessRecheckS: Type.Integer({
          default: 60,
          minimum: 1,
          maximum: 60,
          description:
            'How long the credentials endpoint trusts an access check before asking the directory again; a removed assignment or disabled user gets 403 within this (COVE_CREDENTIALS_ACCESS_RECHECK_S)',
        }),
        minRemainingS: Type.Integer({
          default: 16 * 60,
          minimum: 16 * 60,
          maximum: 3600,
          description:
            'Credentials handed to shells have at least this long left; the SDKs refetch on every call below 15 minutes (COVE_CREDENTIALS_MIN_REMAINING_S)',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    sts: Type.Object(
      {
        endpoint: Type.String({
          default: '',
          pattern: '^(https?://.+)?$',
          description:
            "STS endpoint URL; empty = AWS's endpoint for sts.region. Any STS-compatible endpoint works (COVE_STS_ENDPOINT)",
        }),
        region: Type.String({
          default: 'us-east-1',
          minLength: 1,
          description: 'Region STS is called (and requests signed) in (COVE_STS_REGION)',
        }),
        refreshBeforeS: Type.Integer({
          default: 300,
          minimum: 60,
          maximum: 1800,
          description:
            'Fetch new credentials when cached ones have less than this left; shells ask for more themselves (COVE_STS_REFRESH_BEFORE_S)',
        }),
        requestTimeoutMs: Type.Integer({
          default: 3000,
          minimum: 100,
          maximum: 30_000,
          description: 'Give up on one STS request after this long (COVE_STS_REQUEST_TIMEOUT_MS)',
        }),
        maxAttempts: Type.Integer({
          default: 4,
          minimum: 1,
          maximum: 10,
          description: 'Attempts per issue on throttling, 5xx or network errors, counting the first',
        }),
        retryBudgetMs: Type.Integer({
          default: 8000,
          minimum: 100,
          maximum: 60_000,
          description: 'No retry starts after this long since the first attempt (COVE_STS_RETRY_BUDGET_MS)',
        }),
      },
      {
        default: {},
        additionalProperties: false,
        description:
          "AssumeRole for users' credentials; the server's own AWS identity comes from the AWS SDK's default chain",
      },
    ),
    security: Type.Object(
      {
        egressPolicy: Type.Union(
          ['enforce', 'warn', 'off'].map((mode) => Type.Literal(mode)),
          {
            default: linuxRoot ? 'enforce' : 'warn',
            description:
              'Firewall rules that keep environments off the host, the metadata service, other containers and private ranges: enforce (install, check, refuse to start environments without them), warn (install and check, only log), off. Default enforce on Linux as root, else warn (COVE_SECURITY_EGRESS_POLICY)',
          },
        ),
        egressHelperSocket: Type.String({
          default: '',
          description:
            "Unix socket of Cove's firewall helper (sandbox/docker/egress-helper.ts), for a server that runs in a container and so cannot reach the host's firewall itself: the helper, on the host's network, installs and checks the rules on the server's behalf. docker-compose.yml sets /run/cove-egress/egress.sock; empty: the server runs iptables itself (COVE_SECURITY_EGRESS_HELPER_SOCKET)",
        }),
        versionGate: Type.Union(
          ['warn', 'refuse'].map((mode) => Type.Literal(mode)),
          {
            default: 'warn',
            description:
              'When the engine, containerd or runc is older than the releases fixing known escapes: warn in the log, or refuse to start environments (COVE_SECURITY_VERSION_GATE)',
          },
        ),
        versionGateAccept: Type.Array(Type.String({ pattern: '^(engine|containerd|runc) \\S+$' }), {
          default: [],
          description:
            'Builds an operator has checked carry the fixes though their version says otherwise, as "<component> <exact reported or package version>", e.g. "runc 1.1.5+ds1-1+deb12u9"',
        }),
      },
      {
        default: {},
        additionalProperties: false,
        description: 'Sandbox hardening checks (docs/hardening.md)',
      },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type RegionConfig = Config['regions'][number];

/** Environment variable → config path, with how to parse it. */
type EnvKind = 'string' | 'int' | 'bool' | 'json' | 'list';

const envKeys: Record<string, { path: string[]; kind: EnvKind }> = {
  COVE_HOST: { path: ['host'], kind: 'string' },
  COVE_PORT: { path: ['port'], kind: 'int' },
  COVE_PUBLIC_URL: { path: ['publicUrl'], kind: 'string' },
  COVE_DATA_DIR: { path: ['dataDir'], kind: 'string' },
  COVE_DATABASE_URL: { path: ['database', 'url'], kind: 'string' },
  COVE_LOG_LEVEL: { path: ['logLevel'], kind: 'string' },
  COVE_INSTANCE_ID: { path: ['instanceId'], kind: 'string' },
  COVE_TRUSTED_PROXIES: { path: ['trustedProxies'], kind: 'list' },
  COVE_METRICS_TOKEN: { path: ['metrics', 'token'], kind: 'string' },
  COVE_AUTH_SESSION_TTL_S: { path: ['auth', 'sessionTtlS'], kind: 'int' },
  COVE_AUTH_REQUIRE_MFA: { path: ['auth', 'requireMfa'], kind: 'bool' },
  COVE_AUTH_INVITE_TTL_S: { path: ['auth', 'inviteTtlS'], kind: 'int' },
  COVE_AUTH_ARGON2_MEMORY_KIB: { path: ['auth', 'argon2MemoryKiB'], kind: 'int' },
  COVE_AUTH_ARGON2_TIME_COST: { path: ['auth', 'argon2TimeCost'], kind: 'int' },
  COVE_AUTH_SESSION_RECHECK_S: { path: ['auth', 'sessionRecheckS'], kind: 'int' },
  COVE_AUTH_OIDC: { path: ['auth', 'oidc'], kind: 'json' },
  COVE_AUTH_OIDC_CLOCK_TOLERANCE_S: { path: ['auth', 'oidcClockToleranceS'], kind: 'int' },
  COVE_REGIONS: { path: ['regions'], kind: 'json' },
  COVE_DEFAULT_REGION: { path: ['defaultRegion'], kind: 'string' },
  COVE_SANDBOX_IMAGE: { path: ['sandbox', 'image'], kind: 'string' },
  COVE_SANDBOX_MAX_TERMINALS: { path: ['sandbox', 'maxTerminalsPerUser'], kind: 'int' },
  COVE_SANDBOX_IDLE_TIMEOUT_S: { path: ['sandbox', 'idleTimeoutS'], kind: 'int' },
  COVE_SANDBOX_GRACE_S: { path: ['sandbox', 'graceS'], kind: 'int' },
  COVE_HOMES_SIZE_BYTES: { path: ['homes', 'sizeBytes'], kind: 'int' },
  COVE_HOMES_RETENTION_DAYS: { path: ['homes', 'retentionDays'], kind: 'int' },
  COVE_HOMES_ENABLED: { path: ['homes', 'enabled'], kind: 'bool' },
  COVE_HOMES_RESERVE_BYTES: { path: ['homes', 'reserveBytes'], kind: 'int' },
  COVE_HOMES_OWNER_UID: { path: ['homes', 'ownerUid'], kind: 'int' },
  COVE_SECURITY_EGRESS_POLICY: { path: ['security', 'egressPolicy'], kind: 'string' },
  COVE_SECURITY_EGRESS_HELPER_SOCKET: { path: ['security', 'egressHelperSocket'], kind: 'string' },
  COVE_SECURITY_VERSION_GATE: { path: ['security', 'versionGate'], kind: 'string' },
  COVE_HOMES_SWEEP_INTERVAL_S: { path: ['homes', 'sweepIntervalS'], kind: 'int' },
  COVE_USAGE_TICK_S: { path: ['usage', 'tickS'], kind: 'int' },
  COVE_USAGE_KEEP_WEEKS: { path: ['usage', 'keepWeeks'], kind: 'int' },
  COVE_TERMINALS_MIRROR_SCROLLBACK_LINES: { path: ['terminals', 'mirrorScrollbackLines'], kind: 'int' },
  COVE_TERMINALS_HEARTBEAT_S: { path: ['terminals', 'heartbeatS'], kind: 'int' },
  COVE_SANDBOX_MAX_CONCURRENT_STARTS: { path: ['sandbox', 'maxConcurrentStarts'], kind: 'int' },
  COVE_TERMINALS_MAX_SOCKETS_PER_USER: { path: ['terminals', 'maxSocketsPerUser'], kind: 'int' },
  COVE_LINKS_GIT_ALLOWED_PREFIXES: { path: ['links', 'gitAllowedPrefixes'], kind: 'list' },
  COVE_LINKS_CLONE_TIMEOUT_S: { path: ['links', 'cloneTimeoutS'], kind: 'int' },
  COVE_RECORDINGS_MAX_BYTES: { path: ['recordings', 'maxBytes'], kind: 'int' },
  COVE_RECORDINGS_RETENTION_DAYS: { path: ['recordings', 'retentionDays'], kind: 'int' },
  COVE_RECORDINGS_QUEUE_BYTES: { path: ['recordings', 'queueBytes'], kind: 'int' },
  COVE_STS_ENDPOINT: { path: ['sts', 'endpoint'], kind: 'string' },
  COVE_STS_REGION: { path: ['sts', 'region'], kind: 'string' },
  COVE_STS_REFRESH_BEFORE_S: { path: ['sts', 'refreshBeforeS'], kind: 'int' },
  COVE_STS_REQUEST_TIMEOUT_MS: { path: ['sts', 'requestTimeoutMs'], kind: 'int' },
  COVE_STS_RETRY_BUDGET_MS: { path: ['sts', 'retryBudgetMs'], kind: 'int' },
  COVE_SSO_ACCESS_TOKEN_TTL_S: { path: ['sso', 'accessTokenTtlS'], kind: 'int' },
  COVE_SSO_SESSION_TTL_S: { path: ['sso', 'sessionTtlS'], kind: 'int' },
  COVE_SSO_REQUEST_TTL_S: { path: ['sso', 'requestTtlS'], kind: 'int' },
  COVE_SSO_POLL_INTERVAL_S: { path: ['sso', 'pollIntervalS'], kind: 'int' },
  COVE_SSO_CLIENT_TTL_S: { path: ['sso', 'clientTtlS'], kind: 'int' },
  COVE_CREDENTIALS_ACCESS_RECHECK_S: { path: ['credentials', 'accessRecheckS'], kind: 'int' },
  COVE_CREDENTIALS_MIN_REMAINING_S: { path: ['credentials', 'minRemainingS'], kind: 'int' },
  COVE_FILES_MAX_FILE_BYTES: { path: ['files', 'maxFileBytes'], kind: 'int' },
  COVE_FILES_MULTIPART_THRESHOLD_BYTES: { path: ['files', 'multipartThresholdBytes'], kind: 'int' },
  COVE_FILES_PART_SIZE_BYTES: { path: ['files', 'partSizeBytes'], kind: 'int' },
  COVE_FILES_PRESIGN_EXPIRY_S: { path: ['files', 'presignExpiryS'], kind: 'int' },
  COVE_FILES_STAGING_RETENTION_S: { path: ['files', 'stagingRetentionS'], kind: 'int' },
  COVE_FILES_S3_TIMEOUT_MS: { path: ['files', 's3TimeoutMs'], kind: 'int' },
  COVE_FILES_EMBEDDED_S3_PORT: { path: ['files', 'embeddedS3Port'], kind: 'int' },
  COVE_FILES_MAX_STAGED_BYTES_PER_USER: { path: ['files', 'maxStagedBytesPerUser'], kind: 'int' },
  COVE_FILES_MAX_CONCURRENT_DOWNLOADS_PER_USER: {
    path: ['files', 'maxConcurrentDownloadsPerUser'],
    kind: 'int',
  },
  COVE_FILES_DOWNLOAD_EXPIRY_S: { path: ['files', 'downloadExpiryS'], kind: 'int' },
  COVE_FILES_STAGING_RESERVE_BYTES: { path: ['files', 'stagingReserveBytes'], kind: 'int' },
};

/** Secrets and process settings that are not part of the config file. */
export interface ProcessSettings {
  /** First admin's password; a random one-time password is printed when unset. */
  readonly adminPassword?: string;
  readonly configPath: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Cove's configuration is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function parseEnvValue(name: string, raw: string, kind: EnvKind, problems: string[]): unknown {
  switch (kind) {
    case 'string':
      return raw;
    case 'list':
      return raw
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) problems.push(`${name}="${raw}" must be a whole number`);
      return Number(raw);
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
      problems.push(`${name}="${raw}" must be true or false`);
      return raw;
    }
    case 'json':
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        problems.push(`${name} must be valid JSON`);
        return undefined;
      }
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function describeSchemaPath(schema: TSchema, path: string): string | undefined {
  let node: TSchema | undefined = schema;
  for (const part of path.split('/').filter(Boolean)) {
    if (!node) return undefined;
    node =
      (node.properties as Record<string, TSchema> | undefined)?.[part] ?? (node.items as TSchema | undefined);
  }
  return node?.description as string | undefined;
}

/** `sun_path` holds 108 bytes with its NUL. */
const maxUnixSocketPathBytes = 107;
/**
 * The longest socket path Cove makes under the data dir: a file transfer's socket in an
 * environment's directory (server/credentials/credential-delivery.ts `directoryOf`,
 * server/files/transfer-socket.ts). A longer path fails at listen time with a misleading EACCES.
 */
const longestSocketSuffix = `/run/credentials/${'0'.repeat(24)}/xfer-${'0'.repeat(8)}`;

const instanceIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/** `<hostname>-<6 hex digits>`: readable, and two processes on one host still differ. */
export function defaultInstanceId(host: string = hostname()): string {
  const base = host.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 57) || 'cove';
  return `${base}-${randomBytes(3).toString('hex')}`;
}

/** proxy-addr's names for whole ranges, which Fastify's trustProxy accepts too. */
const proxyRangeNames = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** What is wrong with one `trustedProxies` entry, or undefined when Fastify can use it. */
export function trustedProxyProblem(entry: string): string | undefined {
  if (proxyRangeNames.has(entry)) return undefined;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0)
    return `"${entry}" is not an IP address or CIDR (examples: 127.0.0.1, 10.0.0.0/8, fd00::/8, loopback)`;
  if (prefix === undefined) return undefined;
  const bits = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits)
    return `"${entry}": the prefix length must be a number from 1 to ${bits}`;
  if (Number(prefix) === 0)
    return `"${entry}" trusts every address, so any client could forge its own; list your proxies`;
  return undefined;
}

const legacyTrustProxyMessage =
  'trustProxy (COVE_TRUST_PROXY) is no longer supported: trusting X-Forwarded-For from every sender lets any client ' +
  'choose its own address and dodge the per-address sign-in throttle. List your reverse proxies instead in ' +
  'trustedProxies (COVE_TRUSTED_PROXIES), e.g. COVE_TRUSTED_PROXIES=127.0.0.1 or 10.0.0.0/8';

/** Shortest metrics token: 32 characters, e.g. `openssl rand -hex 16` or longer. */
export const minMetricsTokenLength = 32;

/** Keys renamed since they were first documented keep working: their values move to the new key. */
function acceptOldSpellings(input: Record<string, unknown>): void {
  const sandbox = input.sandbox;
  if (typeof sandbox !== 'object' || sandbox === null) return;
  const limits = sandbox as Record<string, unknown>;
  if (limits.cpuMillis === undefined && typeof limits.nanoCpus === 'number')
    limits.cpuMillis = Math.round(limits.nanoCpus / 1_000_000);
}

/**
 * Builds and validates the config from a raw object plus environment overrides.
 * Throws ConfigError listing every bad key, each with what is wrong.
 */
export function buildConfig(raw: unknown, env: Readonly<Record<string, string | undefined>> = {}): Config {
  const problems: string[] = [];
  const input: Record<string, unknown> =
    typeof raw === 'object' && raw !== null && !Array.isArray(raw)
      ? structuredClone(raw as Record<string, unknown>)
      : {};
  // The old boolean: true is refused (see legacyTrustProxyMessage), false meant the default.
  const legacyTrust = input.trustProxy;
  delete input.trustProxy;
  const legacyTrustEnv = env.COVE_TRUST_PROXY;
  if (
    legacyTrust === true ||
    (legacyTrustEnv !== undefined && parseEnvValue('COVE_TRUST_PROXY', legacyTrustEnv, 'bool', []) !== false)
  )
    problems.push(legacyTrustProxyMessage);
  else if (legacyTrust !== undefined && legacyTrust !== false)
    problems.push('trustProxy: no longer supported; list your reverse proxies in trustedProxies');
  for (const [name, spec] of Object.entries(envKeys)) {
    const value = env[name];
    if (value === undefined) continue;
    setPath(input, spec.path, parseEnvValue(name, value, spec.kind, problems));
  }
  acceptOldSpellings(input);
  const withDefaults = Value.Default(ConfigSchema, input) as unknown;
  const oidcSecrets = oidcSecretsFromEnv(env);
  for (const error of Value.Errors(ConfigSchema, withDefaults)) {
    const key = error.path.replace(/^\//, '').replaceAll('/', '.') || '(root)';
    const hint = describeSchemaPath(ConfigSchema, error.path);
    problems.push(`${key}: ${error.message}${hint ? ` (${hint})` : ''}`);
  }
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
  const config = withDefaults as Config;

  if (!config.publicUrl)
    config.publicUrl = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  try {
    const url = new URL(config.publicUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      problems.push('publicUrl: must start with http:// or https://');
    config.publicUrl = url.origin;
  } catch {
    problems.push(`publicUrl: "${config.publicUrl}" is not a URL (example: https://cove.example.com)`);
  }
  if (config.database.url) {
    const problem = databaseUrlProblem(config.database.url);
    if (problem) problems.push(`database.url: ${problem}`);
  }
  if (!config.instanceId) config.instanceId = defaultInstanceId();
  else if (!instanceIdPattern.test(config.instanceId))
    problems.push(
      `instanceId: "${config.instanceId.slice(0, 80)}" must be 1 to 64 of A-Z, a-z, 0-9, ".", "_" and "-" (COVE_INSTANCE_ID)`,
    );
  for (const entry of config.trustedProxies) {
    const problem = trustedProxyProblem(entry);
    if (problem) problems.push(`trustedProxies: ${problem} (COVE_TRUSTED_PROXIES)`);
  }
  const { token } = config.metrics;
  if (token !== '' && (token.length < minMetricsTokenLength || !/^[\x21-\x7e]+$/.test(token)))
    problems.push(
      `metrics.token: must be at least ${minMetricsTokenLength} visible ASCII characters without spaces, e.g. the output of "openssl rand -hex 32" (COVE_METRICS_TOKEN); leave it empty to keep /metrics off`,
    );
  const ids = config.regions.map((r) => r.id);
  if (new Set(ids).size !== ids.length) problems.push('regions: region ids must be unique');
  for (const region of config.regions)
    if (region.backend && region.docker)
      problems.push(`regions: ${region.id} gives both backend and docker; put the endpoint in backend`);
  if (!config.defaultRegion) config.defaultRegion = config.regions[0]?.id ?? '';
  else if (!ids.includes(config.defaultRegion))
    problems.push(
      `defaultRegion: "${config.defaultRegion}" is not one of the configured regions (${ids.join(', ')})`,
    );
  if (config.sandbox.idleWarningS >= config.sandbox.idleTimeoutS)
    problems.push('sandbox.idleWarningS: must be shorter than sandbox.idleTimeoutS');
  const socketPathBytes = Buffer.byteLength(resolve(config.dataDir)) + longestSocketSuffix.length;
  if (socketPathBytes > maxUnixSocketPathBytes)
    problems.push(
      `dataDir: "${resolve(config.dataDir)}" is too long: Cove's unix sockets under it would be ${socketPathBytes} bytes and Linux allows ${maxUnixSocketPathBytes}; use a directory of at most ${maxUnixSocketPathBytes - longestSocketSuffix.length} bytes, e.g. /var/lib/cove`,
    );
  const providerIds = config.auth.oidc.map((p) => p.id);
  if (new Set(providerIds).size !== providerIds.length)
    problems.push('auth.oidc: provider ids must be unique');
  for (const [index, provider] of config.auth.oidc.entries()) {
    const secret = resolveOidcSecret(provider, oidcSecrets, problems, index);
    if (secret !== undefined) provider.clientSecret = secret;
    provider.clientSecretFile = '';
    if (!provider.scopes.includes('openid')) provider.scopes.unshift('openid');
    try {
      const issuer = new URL(provider.issuer);
      if (issuer.protocol === 'http:' && !isLoopbackHost(issuer.hostname))
        problems.push(
          `auth.oidc[${index}].issuer: "${provider.issuer}" must use https (http only on a loopback address)`,
        );
    } catch {
      problems.push(`auth.oidc[${index}].issuer: "${provider.issuer}" is not a URL`);
    }
  }
  // S3 allows at most 10,000 parts per multipart upload.
  if (Math.ceil(config.files.maxFileBytes / config.files.partSizeBytes) > 10_000)
    problems.push('files.partSizeBytes: too small for files.maxFileBytes (S3 allows at most 10000 parts)');
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** True for 127.0.0.0/8, ::1 and localhost: the only places an http issuer is accepted. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** The env name that carries a provider's client secret: `COVE_AUTH_OIDC_<ID>_CLIENT_SECRET`. */
export const oidcSecretEnvName = (providerId: string): string =>
  `COVE_AUTH_OIDC_${providerId.toUpperCase().replaceAll('-', '_')}_CLIENT_SECRET`;

function oidcSecretsFromEnv(env: Readonly<Record<string, string | undefined>>): Map<string, string> {
  const found = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    const match = /^COVE_AUTH_OIDC_([A-Z0-9_]+)_CLIENT_SECRET$/.exec(name);
    if (match?.[1] && value !== undefined) found.set(name, value);
  }
  return found;
}

/** The secret from the file, else the environment, else the config; problems say which failed. */
function resolveOidcSecret(
  provider: { id: string; clientSecretFile: string },
  fromEnv: Map<string, string>,
  problems: string[],
  index: number,
): string | undefined {
  if (provider.clientSecretFile) {
    try {
      return readFileSync(provider.clientSecretFile, 'utf8').trim();
    } catch (error) {
      problems.push(
        `auth.oidc[${index}].clientSecretFile: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
      return undefined;
    }
  }
  return fromEnv.get(oidcSecretEnvName(provider.id));
}

/** What is wrong with a PostgreSQL URL, said without repeating it (it may hold a password). */
function databaseUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a URL; write it as postgres://user:password@host:5432/database';
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')
    return `must start with postgres:// (not ${parsed.protocol}//); Cove keeps data in SQLite when it is empty`;
  if (parsed.pathname.length <= 1)
    return 'name the database after the host, e.g. postgres://user@host:5432/cove';
  return undefined;
}

/** The database URL fit for a log line: the password, if any, replaced by `***`. */
export function redactedDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

/** Reads cove.config.json (or COVE_CONFIG) and the environment. */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): {
  config: Config;
  settings: ProcessSettings;
} {
  const configPath = resolve(env.COVE_CONFIG ?? 'cove.config.json');
  let raw: unknown = {};
  if (existsSync(configPath)) {
    try {
      raw = JSON.parse(readFileSync(configPath, 'utf8')) as unknown;
    } catch (error) {
      throw new ConfigError([`${configPath}: not valid JSON (${(error as Error).message})`]);
    }
  } else if (env.COVE_CONFIG) {
    throw new ConfigError([`COVE_CONFIG points to ${configPath}, which does not exist`]);
  }
  const config = buildConfig(raw, env);
  const settings: ProcessSettings = { configPath };
  return {
    config,
    settings: env.COVE_ADMIN_PASSWORD ? { ...settings, adminPassword: env.COVE_ADMIN_PASSWORD } : settings,
  };
}
