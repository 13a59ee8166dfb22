/**
 * Credentials inside every shell (DESIGN.md "Credentials"). Per environment, a unix socket in a
 * host directory that only that environment's container mounts (at /run/cove); inside, a small
 * forwarder on 127.0.0.1:1338 relays the SDKs' container-provider requests to it. Per terminal, a
 * token (credential-tokens.ts) in the shell's environment. The server answers a request only when
 * its token was issued for the container behind that very socket, its terminal still lives, and
 * the user still holds the assignment (re-checked every `accessRecheckS` and at once when the
 * directory says access changed). Credentials stay in memory: nothing here writes them anywhere,
 * and nothing logs a token or a body.
 *
 * Every assignment also becomes a named profile in the Cove-managed block of ~/.aws/config
 * (aws-config-block.ts), written at each terminal start by an exec as the environment user.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import { CoveError, errors } from '../errors.js';
import type { ServerEvent } from '../protocol/terminal-wire.js';
import type { EffectiveAccessEntry } from '../directory/effective-access.js';
import type { AccessChange } from '../directory/directory-service.js';
import type { EnvironmentOwner } from '../environments/environment-service.js';
import type { TerminalBinding } from '../terminals/terminal-service.js';
import type { IssuedCredentials } from './credential-broker.js';
import type {
  Disposable,
  EnvironmentKey,
  EnvironmentStatus,
  ExecOptions,
  ExecResult,
} from '../../sandbox/index.js';
import { hostDirectory } from '../../sandbox/index.js';
import { CredentialTokens, loadOrCreateTokenKey, type ContainerIncarnation } from './credential-tokens.js';
import { CredentialSocketServer, type SocketAnswer, type SocketRequest } from './credential-socket-server.js';
import { rewriteAwsConfig, type ManagedProfile } from './aws-config-block.js';

/** Where the SDKs inside the container ask (the forwarder listens there). */
export const CONTAINER_CREDENTIALS_URI = 'http://127.0.0.1:1338/v1/credentials';
export const SOCKET_FILE = 'creds.sock';

/** What delivery needs from the broker (app.credentials). */
export interface CredentialSource {
  forAssignment(
    userId: string,
    accountId: string,
    permissionSetName: string,
    options?: { minRemainingS?: number; purpose?: 'shell' | 'profile' },
  ): Promise<IssuedCredentials>;
}

/** What delivery needs from the directory (app.directory). */
export interface AccessSource {
  accessFor(
    userId: string,
    accountId: string,
    permissionSetName: string,
  ): Promise<EffectiveAccessEntry | undefined>;
  effectiveAccess(userId: string): Promise<EffectiveAccessEntry[]>;
  onAccessChanged(listener: (change: AccessChange) => void): Disposable;
}

/** The bits of a terminal delivery reads. */
export interface LiveTerminal {
  readonly id: string;
  readonly region: string;
  readonly accountId: string | undefined;
  readonly permissionSet: string | undefined;
  readonly attached: boolean;
  notify(event: ServerEvent): void;
}

/** What delivery needs from app.terminals. */
export interface TerminalLookup {
  get(ownerId: string, id: string): LiveTerminal | undefined;
  onAttached(listener: (terminal: LiveTerminal) => void): Disposable;
}

/** What delivery needs from app.environments. */
export interface EnvironmentLookup {
  list(): EnvironmentStatus[];
  exec(key: EnvironmentKey, cmd: readonly string[], options?: ExecOptions): Promise<ExecResult>;
}

export interface CredentialDeliveryOptions {
  readonly dataDir: string;
  /** How long an access check is trusted before the directory is asked again. */
  readonly accessRecheckS: number;
  /** Credentials handed out have at least this long left (the SDKs refetch below 15 min). */
  readonly minRemainingS: number;
  readonly credentials: CredentialSource;
  readonly access: AccessSource;
  readonly terminals: TerminalLookup;
  readonly environments: EnvironmentLookup;
  readonly log: FastifyBaseLogger;
  readonly now?: () => number;
  /** Tests pass a key; otherwise it lives in `<dataDir>/secrets/`. */
  readonly tokenKey?: Buffer;
}

interface AccessCheck {
  readonly allowed: Promise<boolean>;
  readonly checkedAt: number;
}

interface Listener {
  server?: CredentialSocketServer;
  ready: Promise<void>;
}

const keyOf = (key: EnvironmentKey): string => `${key.region}\u0000${key.ownerId}`;
const credentialsPath = /^\/v1\/credentials(?:\/(\d{12})\/([\w+=,.@-]{1,128}))?\/?$/;
/** A pending notice is dropped if no page attaches within this long. */
const pendingNoticeTtlMs = 15 * 60_000;
const execTimeoutMs = 10_000;
/** Exit code of the write script when the file changed since it was read. */
const changedUnderUs = 75;

const notFound = (): SocketAnswer => ({
  status: 404,
  body: { code: 'COVE_ERR_NOT_FOUND', message: 'Ask /v1/credentials or /v1/credentials/<account>/<set>.' },
});

/** The exact shape the SDKs' container provider reads. */
function containerCredentials(issued: IssuedCredentials): Record<string, string> {
  const c = issued.credentials;
  return {
    AccessKeyId: c.accessKeyId,
    SecretAccessKey: c.secretAccessKey,
    Token: c.sessionToken,
    Expiration: c.expiration.toISOString(),
  };
}

function errorAnswer(error: unknown): SocketAnswer {
  const coded = error instanceof CoveError ? error : errors.credentialsUnavailable(error);
  return { status: coded.statusCode, body: { code: coded.code, message: coded.message } };
}

/** Writes `~/.aws/config` only if it still has the content it was read with (else exit 75). */
const writeConfigScript = `set -eu
f="$HOME/.aws/config"
if [ -L "$f" ]; then f=$(readlink -f "$f"); fi
d=$(dirname "$f")
[ -d "$d" ] || mkdir -m 0700 -p "$d"
t="$d/.config.cove-$$"
trap 'rm -f "$t"' EXIT
# All of stdin first: exiting before reading it would break the server's pipe.
cat >"$t"
if [ -e "$f" ]; then cur=$(sha256sum <"$f" | cut -c1-64); else cur=absent; fi
[ "$cur" = "$1" ] || exit ${changedUnderUs}
if [ -e "$f" ]; then chmod --reference="$f" "$t"; else chmod 0600 "$t"; fi
mv -f "$t" "$f"
trap - EXIT`;
/** One byte saying whether the file exists (`1`/`0`), then its content: one exec, not two. */
const readConfigScript = 'f="$HOME/.aws/config"; if [ -e "$f" ]; then printf 1; cat "$f"; else printf 0; fi';

export class CredentialDelivery {
  private readonly root: string;
  private readonly tokens: CredentialTokens;
  private readonly listeners = new Map<string, Listener>();
  private readonly releasing = new Map<string, Promise<void>>();
  private readonly accessChecks = new Map<string, AccessCheck>();
  private readonly pendingNotices = new Map<string, { event: ServerEvent; at: number }>();
  private readonly subscriptions: Disposable[] = [];
  private readonly background = new Set<Promise<unknown>>();
  /** Per environment: the container and profile list last written into ~/.aws/config. */
  private readonly profilesWritten = new Map<string, string>();
  private readonly now: () => number;
  private closing = false;

  constructor(private readonly options: CredentialDeliveryOptions) {
    this.root = resolve(options.dataDir, 'run', 'credentials');
    this.tokens = new CredentialTokens(options.tokenKey ?? loadOrCreateTokenKey(options.dataDir));
    this.now = options.now ?? Date.now;
    this.subscriptions.push(
      options.access.onAccessChanged((change) => this.accessChanged(change)),
      options.terminals.onAttached((terminal) => this.deliverPendingNotice(terminal)),
    );
  }

  /** The host directory mounted at /run/cove: named by a hash of the key, never the user name. */
  directoryOf(key: EnvironmentKey): string {
    const id = createHash('sha256').update(`cove-env\0${key.ownerId}\0${key.region}`).digest('hex');
    return join(this.root, id.slice(0, 24));
  }

  /**
   * Makes the environment's directory and listens on its socket (idempotent). Called before its
   * container starts, and at server start for every environment that already exists.
   */
  async prepare(key: EnvironmentKey): Promise<string> {
    const dir = this.directoryOf(key);
    const id = keyOf(key);
    // A removal's cleanup must not delete the directory a new start just made.
    await this.releasing.get(id);
    let listener = this.listeners.get(id);
    if (!listener) {
      const created: Listener = { ready: Promise.resolve() };
      created.ready = this.listen(key, dir).then((server) => {
        created.server = server;
      });
      listener = created;
      this.listeners.set(id, listener);
      listener.ready.catch(() => {
        if (this.listeners.get(id) === created) this.listeners.delete(id);
      });
    }
    await listener.ready;
    return dir;
  }

  private async listen(key: EnvironmentKey, dir: string): Promise<CredentialSocketServer> {
    // 0711 up to the root, 0755 for the directory: the container user (1000, or 101000 under
    // userns-remap) traverses into it; nothing else lives there but the socket.
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    return CredentialSocketServer.listen(
      join(dir, SOCKET_FILE),
      (request) => this.answer(key, request),
      (error) => this.options.log.warn({ err: error, region: key.region }, 'credentials socket problem'),
    );
  }

  /** The environment was removed: stop listening and delete its directory. */
  release(key: EnvironmentKey): Promise<void> {
    const id = keyOf(key);
    this.profilesWritten.delete(id);
    const listener = this.listeners.get(id);
    this.listeners.delete(id);
    const done = (async () => {
      if (listener) {
        await listener.ready.catch(() => undefined);
        await listener.server?.close();
      }
      await rm(this.directoryOf(key), { recursive: true, force: true });
    })().finally(() => {
      if (this.releasing.get(id) === done) this.releasing.delete(id);
    });
    this.releasing.set(id, done);
    return done;
  }

  /** Listens for every environment the server knows (after a restart: the adopted ones). */
  async adoptAll(): Promise<void> {
    await Promise.all(
      this.options.environments
        .list()
        .map((status) =>
          this.prepare(status).catch((error: unknown) =>
            this.options.log.warn(
              { err: error, region: status.region },
              'could not open a credentials socket',
            ),
          ),
        ),
    );
  }

  /** Variables for a new shell: region, token, and the container provider when it has an account. */
  async shellEnv(
    owner: EnvironmentOwner,
    region: string,
    binding: TerminalBinding,
    terminalId: string,
  ): Promise<Record<string, string>> {
    const key = { ownerId: owner.id, region };
    const env: Record<string, string> = { AWS_REGION: region, AWS_DEFAULT_REGION: region };
    const incarnation = this.incarnation(key);
    if (!incarnation) {
      this.options.log.warn({ region, terminalId }, 'no running container known: shell gets no credentials');
      return env;
    }
    const started = this.now();
    const token = this.tokens.issue(incarnation, terminalId);
    env.COVE_CREDENTIALS_TOKEN = token;

    // Not awaited: two execs cost a loaded machine a second or more of prompt time, and the block
    // is already there from earlier tabs in all but a brand-new home. Skipped when this container
    // already got this very list: the execs would compete with the new shell's own for the engine.
    this.track(
      this.writeProfiles(key, incarnation.containerId).catch((error: unknown) => this.profileFailed(error)),
    );
    if (binding.accountId && binding.permissionSet) {
      env.AWS_CONTAINER_CREDENTIALS_FULL_URI = CONTAINER_CREDENTIALS_URI;
      env.AWS_CONTAINER_AUTHORIZATION_TOKEN = token;
      const access = await this.options.access.accessFor(owner.id, binding.accountId, binding.permissionSet);
      env.COVE_IDENTITY = access
        ? `${access.permissionSet} @ ${access.accountName} (${access.accountId})`
        : `${binding.permissionSet} @ ${binding.accountId}`;
      // Not awaited: the prompt never waits on STS (slow, throttled or unreachable). This first
      // fetch warms the broker's cache, so the shell's own first request is usually answered at
      // once, and a refusal reaches the page as a notice while the user is watching.
      this.track(
        this.options.credentials
          .forAssignment(owner.id, binding.accountId, binding.permissionSet, {
            minRemainingS: this.options.minRemainingS,
          })
          .then(
            (issued) => {
              if (issued.notice) this.notice(owner.id, terminalId, issued.notice);
            },
            (error: unknown) => this.notice(owner.id, terminalId, errorAnswer(error).body.message as string),
          ),
      );
    }
    this.options.log.debug({ terminalId, ms: this.now() - started }, 'shell credentials prepared');
    return env;
  }

  /** One request on one environment's socket. */
  async answer(key: EnvironmentKey, request: SocketRequest): Promise<SocketAnswer> {
    const match = credentialsPath.exec(request.path);
    if (!match) return notFound();
    if (!request.authorization)
      return this.logged(key, undefined, errorAnswer(errors.credentialsTokenMissing()));
    const incarnation = this.incarnation(key);
    const terminalId = incarnation ? this.tokens.verify(request.authorization, incarnation) : undefined;
    const terminal = terminalId ? this.options.terminals.get(key.ownerId, terminalId) : undefined;
    if (!terminal || terminal.region !== key.region)
      return this.logged(key, terminalId, errorAnswer(errors.credentialsTokenInvalid()));

    const accountId = match[1] ?? terminal.accountId;
    const permissionSet = match[2] ?? terminal.permissionSet;
    if (!accountId || !permissionSet)
      return this.logged(key, terminalId, errorAnswer(errors.credentialsNoAccount()));
    if (!(await this.hasAccess(key.ownerId, accountId, permissionSet)))
      return this.logged(key, terminalId, errorAnswer(errors.credentialsNoAccess()));
    try {
      const issued = await this.options.credentials.forAssignment(key.ownerId, accountId, permissionSet, {
        minRemainingS: this.options.minRemainingS,
        purpose: match[1] ? 'profile' : 'shell',
      });
      return this.logged(key, terminalId, { status: 200, body: containerCredentials(issued) });
    } catch (error) {
      if (!(error instanceof CoveError))
        this.options.log.warn({ err: error, region: key.region }, 'credentials issue failed');
      return this.logged(key, terminalId, errorAnswer(error));
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const subscription of this.subscriptions.splice(0)) subscription.dispose();
    await Promise.all(this.background);
    const listeners = [...this.listeners.values()];
    this.listeners.clear();
    // The directories stay: running containers keep them mounted, and the next start listens again.
    await Promise.all(
      listeners.map(async (l) => {
        await l.ready.catch(() => undefined);
        await l.server?.close();
      }),
    );
  }

  /** Work that outlives the call that started it; close() waits for it. */
  private track(work: Promise<unknown>): void {
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }

  /** Profile writes still running (tests wait for them). */
  settled(): Promise<unknown> {
    return Promise.all(this.background);
  }

  private incarnation(key: EnvironmentKey): ContainerIncarnation | undefined {
    const status = this.options.environments
      .list()
      .find((s) => s.ownerId === key.ownerId && s.region === key.region && s.state === 'running');
    if (!status?.id) return undefined;
    return { containerId: status.id, startedAt: status.startedAt ?? new Date(0) };
  }

  private async hasAccess(userId: string, accountId: string, permissionSet: string): Promise<boolean> {
    const id = `${userId}\u0000${accountId}\u0000${permissionSet}`;
    const cached = this.accessChecks.get(id);
    if (cached && this.now() - cached.checkedAt < this.options.accessRecheckS * 1000) return cached.allowed;
    const allowed = this.options.access.accessFor(userId, accountId, permissionSet).then(Boolean);
    this.accessChecks.set(id, { allowed, checkedAt: this.now() });
    allowed.catch(() => {
      if (this.accessChecks.get(id)?.allowed === allowed) this.accessChecks.delete(id);
    });
    return allowed;
  }

  private accessChanged(change: AccessChange): void {
    if ('all' in change) {
      this.accessChecks.clear();
      return;
    }
    const users = new Set(change.userIds);
    for (const id of [...this.accessChecks.keys()])
      if (users.has(id.slice(0, id.indexOf('\u0000')))) this.accessChecks.delete(id);
  }

  private logged(key: EnvironmentKey, terminalId: string | undefined, answer: SocketAnswer): SocketAnswer {
    const code = answer.status === 200 ? undefined : (answer.body.code as string);
    this.options.log[answer.status >= 500 ? 'warn' : 'info'](
      { region: key.region, terminalId, status: answer.status, ...(code ? { errorCode: code } : {}) },
      'credentials request',
    );
    return answer;
  }

  /** Rewrites the managed block of ~/.aws/config, retrying if the user's file changes meanwhile. */
  private async writeProfiles(key: EnvironmentKey, containerId: string): Promise<void> {
    const entries = await this.options.access.effectiveAccess(key.ownerId);
    const profiles: ManagedProfile[] = entries.map((e) => ({
      accountId: e.accountId,
      accountName: e.accountName,
      permissionSet: e.permissionSet,
      region: key.region,
    }));
    const id = keyOf(key);
    const written = `${containerId}\u0000${JSON.stringify(profiles)}`;
    if (this.profilesWritten.get(id) === written) return;
    // Forgotten while a write is under way, so a failure leaves the next tab to try again.
    this.profilesWritten.delete(id);
    await this.writeProfilesOnce(key, profiles);
    this.profilesWritten.set(id, written);
  }

  private async writeProfilesOnce(key: EnvironmentKey, profiles: ManagedProfile[]): Promise<void> {
    const exec = (cmd: readonly string[], options: ExecOptions = {}) =>
      this.options.environments.exec(key, cmd, { timeoutMs: execTimeoutMs, ...options });
    for (let attempt = 0; attempt < 3 && !this.closing; attempt++) {
      const read = await exec(['sh', '-c', readConfigScript]);
      const exists = read.stdout.subarray(0, 1).toString() === '1';
      const content = read.stdout.subarray(1);
      // latin1 both ways: every byte of the user's part comes back exactly as it was.
      const existing = content.toString('latin1');
      const next = rewriteAwsConfig(existing, profiles);
      if (next === existing) return;
      const expected = exists ? sha256(content) : 'absent';
      const write = await exec(['sh', '-c', writeConfigScript, 'cove-profiles', expected], {
        stdin: Buffer.from(next, 'latin1'),
      });
      if (write.exitCode === 0) return;
      if (write.exitCode !== changedUnderUs)
        throw new Error(`profile write exited ${write.exitCode}: ${write.stderr.toString().slice(0, 200)}`);
    }
  }

  private profileFailed(error: unknown): void {
    this.options.log.warn({ err: error }, 'could not write the managed profiles into ~/.aws/config');
  }

  private notice(ownerId: string, terminalId: string, message: string): void {
    const event: ServerEvent = { type: 'notice', kind: 'credentials', message };
    const terminal = this.options.terminals.get(ownerId, terminalId);
    if (terminal?.attached) {
      terminal.notify(event);
      return;
    }
    const now = this.now();
    for (const [id, pending] of this.pendingNotices)
      if (now - pending.at > pendingNoticeTtlMs) this.pendingNotices.delete(id);
    this.pendingNotices.set(terminalId, { event, at: now });
  }

  private deliverPendingNotice(terminal: LiveTerminal): void {
    const pending = this.pendingNotices.get(terminal.id);
    if (!pending) return;
    this.pendingNotices.delete(terminal.id);
    terminal.notify(pending.event);
  }
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

declare module 'fastify' {
  interface FastifyInstance {
    credentialDelivery: CredentialDelivery;
  }
}

export interface CredentialDeliveryPluginOptions {
  /** The broker; default `app.credentials`. */
  readonly credentials?: CredentialSource;
}

export default fp(
  async (app, opts: CredentialDeliveryPluginOptions) => {
    const source =
      opts.credentials ?? (app as unknown as { credentials?: CredentialSource }).credentials ?? undefined;
    if (!source) throw new Error('credential delivery needs the credentials broker (app.credentials)');
    const environments = app.environments;
    const delivery = new CredentialDelivery({
      dataDir: app.config.dataDir,
      accessRecheckS: app.config.credentials.accessRecheckS,
      minRemainingS: app.config.credentials.minRemainingS,
      credentials: source,
      access: app.directory,
      terminals: app.terminals,
      environments: {
        list: () => environments.list(),
        exec: (key, cmd, options) => environments.driver(key.region).exec(key, cmd, options),
      },
      log: app.log.child({ component: 'credentials' }),
      now: app.now,
    });
    app.decorate('credentialDelivery', delivery);
    const hooks = [
      environments.onStarting(async (key) => ({ credentials: hostDirectory(await delivery.prepare(key)) })),
      environments.onRemoved((key) => {
        delivery
          .release(key)
          .catch((error: unknown) =>
            app.log.warn({ err: error, region: key.region }, 'could not remove a credentials socket'),
          );
      }),
    ];
    // Registered after the environments plugin, so this runs after its reconcile.
    app.addHook('onReady', async () => delivery.adoptAll());
    app.addHook('onClose', async () => {
      for (const hook of hooks) hook.dispose();
      await delivery.close();
    });
  },
  { name: 'credential-delivery', dependencies: ['environments', 'terminals', 'directory'] },
);
