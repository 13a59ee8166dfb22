/**
 * The credentials endpoint over a real unix socket, with fakes for the broker, directory,
 * terminals and environments. The profile scripts run for real in `sh` with a temporary $HOME.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  mkdirSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CredentialDelivery,
  SOCKET_FILE,
  type CredentialSource,
  type LiveTerminal,
} from '../../../../server/credentials/credential-delivery.js';
import { errors, type CoveError } from '../../../../server/errors.js';
import type { AccessChange } from '../../../../server/directory/directory-service.js';
import type { EffectiveAccessEntry } from '../../../../server/directory/effective-access.js';
import type { ServerEvent } from '../../../../server/protocol/terminal-wire.js';
import type { EnvironmentStatus, ExecOptions, ExecResult } from '../../../../sandbox/sandbox-driver.js';

const region = 'eu-west-1';
const alice = { ownerId: 'user-alice', region };
const bob = { ownerId: 'user-bob', region };
const prod = { accountId: '111122223333', accountName: 'Prod', permissionSet: 'Admin' };
const dev = { accountId: '444455556666', accountName: 'Dev', permissionSet: 'ReadOnly' };

const entry = (a: typeof prod): EffectiveAccessEntry => ({
  ...a,
  permissionSetId: `ps-${a.permissionSet}`,
  permissionSetDescription: '',
  sessionDurationS: 3600,
  roleArn: `arn:aws:iam::${a.accountId}:role/${a.permissionSet}`,
  sessionPolicy: null,
});

class FakeTerminal implements LiveTerminal {
  readonly events: ServerEvent[] = [];
  attached = false;
  constructor(
    readonly id: string,
    readonly region: string,
    readonly accountId: string | undefined,
    readonly permissionSet: string | undefined,
  ) {}
  notify(event: ServerEvent): void {
    if (this.attached) this.events.push(event);
  }
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

function ask(socketPath: string, path: string, token?: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path,
        method,
        agent: false,
        headers: token === undefined ? {} : { authorization: token },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const terminalIdOf = (n: number): string => `T${String(n).padStart(21, '0')}`;

describe('credential delivery (socket answers)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cove-delivery-'));
  const homes = mkdtempSync(join(tmpdir(), 'cove-delivery-home-'));
  let now = 1_000_000;
  let statuses: EnvironmentStatus[];
  let terminals: Map<string, FakeTerminal>;
  let access: Map<string, EffectiveAccessEntry[]>;
  let accessListeners: Set<(change: AccessChange) => void>;
  let attachedListeners: Set<(t: LiveTerminal) => void>;
  let calls: { userId: string; accountId: string; set: string; options: unknown }[];
  let brokerFails: unknown;
  /** While set, the broker answers only once it resolves (a slow or blackholed STS). */
  let brokerGate: Promise<void> | undefined;
  let delivery: CredentialDelivery;
  const deliveries: CredentialDelivery[] = [];
  const logs: string[] = [];

  const credentials: CredentialSource = {
    forAssignment: async (userId, accountId, set, options) => {
      calls.push({ userId, accountId, set, options });
      if (brokerGate) await brokerGate;
      if (brokerFails) throw brokerFails;
      return {
        credentials: {
          accessKeyId: `ASIA${accountId}`,
          secretAccessKey: `secret-${userId}`,
          sessionToken: `token-${userId}`,
          expiration: new Date('2030-01-01T00:00:00Z'),
        },
      };
    },
  };

  const make = (keyFromDisk = false): CredentialDelivery => {
    const made = new CredentialDelivery({
      dataDir,
      accessRecheckS: 60,
      minRemainingS: 960,
      credentials,
      access: {
        accessFor: async (userId, accountId, set) =>
          (access.get(userId) ?? []).find((e) => e.accountId === accountId && e.permissionSet === set),
        effectiveAccess: async (userId) => access.get(userId) ?? [],
        onAccessChanged: (listener) => {
          accessListeners.add(listener);
          return { dispose: () => accessListeners.delete(listener) };
        },
      },
      terminals: {
        get: (_ownerId, id) => terminals.get(id),
        onAttached: (listener) => {
          attachedListeners.add(listener);
          return { dispose: () => attachedListeners.delete(listener) };
        },
      },
      environments: {
        list: () => statuses,
        exec: (key, cmd, options) => hostExec(join(homes, key.ownerId), cmd, options),
      },
      log: pino({ level: 'info' }, { write: (line: string) => logs.push(line) }),
      now: () => now,
      ...(keyFromDisk ? {} : { tokenKey: randomBytes(32) }),
    });
    deliveries.push(made);
    return made;
  };

  beforeEach(() => {
    statuses = [
      { ...alice, state: 'running', id: 'a'.repeat(64), startedAt: new Date(1000) },
      { ...bob, state: 'running', id: 'b'.repeat(64), startedAt: new Date(2000) },
    ];
    terminals = new Map();
    access = new Map([
      [alice.ownerId, [entry(prod), entry(dev)]],
      [bob.ownerId, [entry(prod)]],
    ]);
    accessListeners = new Set();
    attachedListeners = new Set();
    calls = [];
    brokerFails = undefined;
    brokerGate = undefined;
    delivery = make();
  });

  afterAll(async () => {
    for (const d of deliveries) await d.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(homes, { recursive: true, force: true });
  });

  const openTerminal = async (
    owner: { ownerId: string; region: string },
    n: number,
    binding: { accountId?: string; permissionSet?: string } = prod,
  ) => {
    const terminal = new FakeTerminal(
      terminalIdOf(n),
      owner.region,
      binding.accountId,
      binding.permissionSet,
    );
    terminals.set(terminal.id, terminal);
    const env = await delivery.shellEnv(
      { id: owner.ownerId, username: owner.ownerId },
      owner.region,
      binding,
      terminal.id,
    );
    const dir = await delivery.prepare(owner);
    return { terminal, env, socket: join(dir, SOCKET_FILE) };
  };

  it('R01 answers a live terminal with exactly the four fields the SDKs read, asking for >= 16 min left', async () => {
    const { env, socket } = await openTerminal(alice, 1);
    const answer = await ask(socket, '/v1/credentials', env.AWS_CONTAINER_AUTHORIZATION_TOKEN);
    expect(answer).toEqual({
      status: 200,
      body: {
        AccessKeyId: 'ASIA111122223333',
        SecretAccessKey: 'secret-user-alice',
        Token: 'token-user-alice',
        Expiration: '2030-01-01T00:00:00.000Z',
      },
    });
    expect(calls.at(-1)).toEqual({
      userId: alice.ownerId,
      accountId: prod.accountId,
      set: prod.permissionSet,
      options: { minRemainingS: 960, purpose: 'shell' },
    });
  });

  it('R01 gives a bound shell the container provider variables and the region', async () => {
    const { env, terminal } = await openTerminal(alice, 2);
    expect(env).toEqual({
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://127.0.0.1:1338/v1/credentials',
      AWS_CONTAINER_AUTHORIZATION_TOKEN: env.COVE_CREDENTIALS_TOKEN,
      COVE_CREDENTIALS_TOKEN: expect.stringMatching(new RegExp(`^${terminal.id}\\.`)) as string,
      COVE_IDENTITY: 'Admin @ Prod (111122223333)',
    });
  });

  it('gives a shell without an account no container provider, but its token still serves profiles', async () => {
    const { env, socket } = await openTerminal(alice, 3, {});
    expect(Object.keys(env).filter((k) => k.startsWith('AWS_CONTAINER'))).toEqual([]);
    const token = env.COVE_CREDENTIALS_TOKEN;
    const own = await ask(socket, '/v1/credentials', token);
    expect(own.status).toBe(403);
    expect(own.body.code).toBe('COVE_ERR_CREDENTIALS_NO_ACCOUNT');
    const profile = await ask(socket, `/v1/credentials/${dev.accountId}/${dev.permissionSet}`, token);
    expect(profile.status).toBe(200);
    expect(profile.body.AccessKeyId).toBe('ASIA444455556666');
    expect(calls.at(-1)?.options).toEqual({ minRemainingS: 960, purpose: 'profile' });
  });

  it('I04 401 without a token, 403 for a forged one and for a token used on another environment', async () => {
    const a = await openTerminal(alice, 4);
    const b = await openTerminal(bob, 5);
    const none = await ask(a.socket, '/v1/credentials');
    expect(none).toEqual({ status: 401, body: errors.credentialsTokenMissing().toJSON() });
    const forged = await ask(a.socket, '/v1/credentials', `${terminalIdOf(4)}.${'A'.repeat(43)}`);
    expect(forged).toEqual({ status: 403, body: errors.credentialsTokenInvalid().toJSON() });
    const foreign = await ask(b.socket, '/v1/credentials', a.env.AWS_CONTAINER_AUTHORIZATION_TOKEN);
    expect(foreign).toEqual({ status: 403, body: errors.credentialsTokenInvalid().toJSON() });
    expect(calls.filter((c) => c.options !== undefined && c.userId === bob.ownerId)).toHaveLength(1);
  });

  it('I04 F03 403 once the container restarted (new start time) and once the terminal is gone', async () => {
    const { env, socket } = await openTerminal(alice, 6);
    const token = env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    expect((await ask(socket, '/v1/credentials', token)).status).toBe(200);
    statuses[0] = { ...(statuses[0] as EnvironmentStatus), startedAt: new Date(9000) };
    expect((await ask(socket, '/v1/credentials', token)).status).toBe(403);
    const again = await openTerminal(alice, 7);
    expect((await ask(socket, '/v1/credentials', again.env.AWS_CONTAINER_AUTHORIZATION_TOKEN)).status).toBe(
      200,
    );
    terminals.delete(again.terminal.id);
    expect((await ask(socket, '/v1/credentials', again.env.AWS_CONTAINER_AUTHORIZATION_TOKEN)).status).toBe(
      403,
    );
  });

  it('A06 re-checks access after accessRecheckS, and at once when the directory says it changed', async () => {
    const { env, socket } = await openTerminal(alice, 8);
    const token = env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    expect((await ask(socket, '/v1/credentials', token)).status).toBe(200);
    access.set(alice.ownerId, [entry(dev)]);
    // Trusted for a while without a directory event...
    now += 30_000;
    expect((await ask(socket, '/v1/credentials', token)).status).toBe(200);
    now += 31_000;
    const late = await ask(socket, '/v1/credentials', token);
    expect(late).toEqual({ status: 403, body: errors.credentialsNoAccess().toJSON() });
    // ...and at once with one.
    const profile = `/v1/credentials/${dev.accountId}/${dev.permissionSet}`;
    expect((await ask(socket, profile, token)).status).toBe(200);
    access.set(alice.ownerId, []);
    for (const listener of accessListeners) listener({ userIds: [alice.ownerId] });
    expect((await ask(socket, profile, token)).status).toBe(403);
  });

  it('F06 passes a coded broker refusal on as {code, message}, and hides anything else behind a 503', async () => {
    const { env, socket } = await openTerminal(alice, 9);
    const token = env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    brokerFails = errors.credentialsAssumeRole('Admin', prod.accountId, 'AccessDenied');
    expect(await ask(socket, '/v1/credentials', token)).toEqual({
      status: 403,
      body: { code: 'COVE_ERR_CREDENTIALS_ASSUME_ROLE', message: (brokerFails as CoveError).message },
    });
    brokerFails = new Error('connect ECONNREFUSED arn:aws:iam::999999999999:role/Server secret');
    const hidden = await ask(socket, '/v1/credentials', token);
    expect(hidden).toEqual({ status: 503, body: errors.credentialsUnavailable().toJSON() });
    expect(JSON.stringify(hidden.body)).not.toContain('arn:');
  });

  it('gives a new shell its variables without waiting for STS; the credentials follow by themselves', async () => {
    let answer: () => void = () => {};
    brokerGate = new Promise((resolve) => (answer = resolve));
    const before = calls.length;
    // Resolves although the broker has not answered (the old code waited up to its start wait).
    const { env, socket } = await openTerminal(alice, 13);
    expect(env.AWS_CONTAINER_CREDENTIALS_FULL_URI).toBe('http://127.0.0.1:1338/v1/credentials');
    expect(env.AWS_CONTAINER_AUTHORIZATION_TOKEN).toBeTruthy();
    expect(calls.length).toBe(before + 1);
    const asked = ask(socket, '/v1/credentials', env.AWS_CONTAINER_AUTHORIZATION_TOKEN);
    answer();
    expect((await asked).status).toBe(200);
    await delivery.settled();
  });

  it('refuses other methods and paths', async () => {
    const { env, socket } = await openTerminal(alice, 10);
    const token = env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    expect((await ask(socket, '/v1/credentials', token, 'POST')).status).toBe(405);
    expect((await ask(socket, '/v1/other', token)).status).toBe(404);
    expect((await ask(socket, '/v1/credentials/12/x', token)).status).toBe(404);
  });

  it('F06 shows an AccessDenied at shell start as a notice once a page attaches (the shell does not wait for it)', async () => {
    brokerFails = errors.credentialsAssumeRole('Admin', prod.accountId, 'AccessDenied');
    const { env, terminal } = await openTerminal(alice, 11);
    expect(env.AWS_CONTAINER_CREDENTIALS_FULL_URI).toBeDefined();
    await delivery.settled();
    expect(terminal.events).toEqual([]);
    terminal.attached = true;
    for (const listener of attachedListeners) listener(terminal);
    expect(terminal.events).toEqual([
      { type: 'notice', kind: 'credentials', message: (brokerFails as CoveError).message },
    ]);
  });

  it('makes an opaque 0755 directory with a socket any uid can connect to, and removes it on release', async () => {
    const { socket } = await openTerminal(alice, 12);
    const dir = delivery.directoryOf(alice);
    expect(dir).not.toContain('alice');
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    expect(statSync(socket).mode & 0o777).toBe(0o666);
    await delivery.release(alice);
    expect(existsSync(dir)).toBe(false);
    // Idempotent, and a later start listens again.
    await delivery.release(alice);
    await delivery.prepare(alice);
    expect(statSync(socket).isSocket()).toBe(true);
  });

  it("writes every assignment as a profile into ~/.aws/config and keeps the user's own lines", async () => {
    const home = join(homes, alice.ownerId);
    mkdirSync(join(home, '.aws'), { recursive: true });
    const mine = '[default]\r\nregion = us-west-2\r\n[profile dev-readonly]\r\nregion = x\r\n';
    writeFileSync(join(home, '.aws', 'config'), mine);
    chmodSync(join(home, '.aws', 'config'), 0o640);
    await openTerminal(alice, 13, {});
    // The block is written in the background, so a prompt never waits for it.
    await delivery.settled();
    const written = readFileSync(join(home, '.aws', 'config'), 'latin1');
    expect(written.startsWith(mine)).toBe(true);
    expect(written).toContain('[profile prod-admin]\r\nregion = eu-west-1\r\n');
    expect(written).toContain(
      'credential_process = /usr/local/bin/cove-credential-process 111122223333 Admin\r\n',
    );
    expect(written).toContain('# [profile dev-readonly] skipped');
    expect(statSync(join(home, '.aws', 'config')).mode & 0o777).toBe(0o640);
    // A new file in a new home is private.
    await openTerminal(bob, 14, {});
    await delivery.settled();
    expect(statSync(join(homes, bob.ownerId, '.aws', 'config')).mode & 0o777).toBe(0o600);
    expect(statSync(join(homes, bob.ownerId, '.aws')).mode & 0o777).toBe(0o700);
  });

  it('F03 keeps serving a surviving terminal after a server restart: same key from disk, socket listened again', async () => {
    delivery = make(true);
    const { env, socket } = await openTerminal(alice, 15);
    const token = env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    expect((await ask(socket, '/v1/credentials', token)).status).toBe(200);
    await delivery.close();
    await expect(ask(socket, '/v1/credentials', token)).rejects.toThrow();
    delivery = make(true);
    await delivery.adoptAll();
    expect((await ask(socket, '/v1/credentials', token)).status).toBe(200);
  });

  it('R02 never logs a token or a secret', () => {
    const all = logs.join('\n');
    expect(all).toContain('credentials request');
    expect(all).not.toMatch(/secret-user|token-user|ASIA\d/);
    expect(all).not.toMatch(/T0{20}\d\.[A-Za-z0-9_-]{43}/);
  });
});

/** Runs the delivery's exec for real with `sh` on the host, $HOME standing in for the container's. */
function hostExec(home: string, cmd: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  mkdirSync(home, { recursive: true });
  return new Promise((resolve, reject) => {
    const [file, ...args] = cmd;
    const child = execFile(
      file as string,
      args,
      { env: { HOME: home, PATH: '/usr/bin:/bin' }, encoding: 'buffer' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        if (code === null) reject(error instanceof Error ? error : new Error(String(error)));
        else resolve({ exitCode: code, stdout, stderr });
      },
    );
    if (Buffer.isBuffer(options.stdin)) child.stdin?.end(options.stdin);
    else child.stdin?.end();
  });
}
