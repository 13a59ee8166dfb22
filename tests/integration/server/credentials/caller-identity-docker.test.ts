/**
 * R01 end to end: `aws sts get-caller-identity` and boto3's `get_caller_identity()` in real
 * shells, with the credentials the container provider serves. The container reaches no STS over
 * the network (the host never connects to container addresses), so the local STS also listens on
 * a unix socket the host puts into the environment's mounted credentials directory
 * (`/run/cove/local-sts/sts.sock` inside), and a two-line TCP→unix relay started as the user
 * inside the container gives the CLI an endpoint on the container's own 127.0.0.1. All traffic:
 * loopback and unix sockets. The local STS verifies the SigV4 signature with the secret it issued
 * and answers the assumed role of that very key, so the Arn names whose credentials signed.
 */
import type { AddressInfo } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GetCallerIdentityCommand, STSClient, AssumeRoleCommand } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../../helpers/test-app.js';
import {
  LOCAL_STS_CALLER,
  localStsBroker,
  startLocalSts,
  type LocalSts,
} from '../../../helpers/local-sts.js';
import { TerminalTestClient } from '../../../unit/server/terminals/ws-test-client.js';

const region = 'eu-west-1';
const prod = '111122223333';
const dev = '444455556666';
const ready = /everything else resets when the environment restarts/;
const run = `${process.pid}-${Date.now().toString(36)}`;
/** The relay's port on the container's own loopback (each container has its own). */
const relayPort = 4599;
const stsInside = `http://127.0.0.1:${relayPort}`;
/** Accepts on 127.0.0.1 and pipes each connection both ways to the local STS's unix socket. */
const relay = [
  'import socket,threading',
  'def pipe(a,b):',
  '  try:',
  '    while True:',
  '      d=a.recv(65536)',
  '      if not d: break',
  '      b.sendall(d)',
  '  except OSError: pass',
  '  try: b.shutdown(socket.SHUT_WR)',
  '  except OSError: pass',
  's=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)',
  `s.bind(("127.0.0.1",${relayPort})); s.listen(16)`,
  'while True:',
  '  c,_=s.accept(); u=socket.socket(socket.AF_UNIX); u.connect("/run/cove/local-sts/sts.sock")',
  '  threading.Thread(target=pipe,args=(c,u),daemon=True).start()',
  '  threading.Thread(target=pipe,args=(u,c),daemon=True).start()',
].join('\n');

let sts: LocalSts;
let t: TestApp;
let base: string;
const users = new Map<string, { id: string; cookie: string }>();
const clients: TerminalTestClient[] = [];

const user = (name: string) => users.get(name) as { id: string; cookie: string };

async function makeUser(name: string, accountId: string, permissionSet: string): Promise<void> {
  const { user: created } = await t.app.directory.createUser({
    username: `${name}-${run}`,
    password: `pw-${run}-Long!1`,
  });
  await t.app.directory.createAssignment({
    principalType: 'user',
    principalId: created.id,
    accountId,
    permissionSet,
  });
  const { token } = await t.app.sessions.create(created.id, 'full');
  users.set(name, { id: created.id, cookie: `cove_session=${token}` });
}

async function openShell(
  name: string,
  accountId: string,
  permissionSet: string,
): Promise<TerminalTestClient> {
  const response = await t.app.inject({
    method: 'POST',
    url: `/api/environments/${region}/terminals`,
    headers: {
      origin: t.config.publicUrl,
      cookie: user(name).cookie,
      'content-type': 'application/json',
    },
    payload: JSON.stringify({ accountId, permissionSet }),
  });
  expect(response.statusCode, response.body).toBe(201);
  const { terminalId } = response.json<{ terminalId: string }>();
  const client = await TerminalTestClient.connect(
    `ws://${base}/api/environments/${region}/terminals/${terminalId}/ws`,
    { origin: t.config.publicUrl, cookie: user(name).cookie, hello: { cols: 200, rows: 50 } },
  );
  clients.push(client);
  await client.waitForText(ready, 30_000);
  return client;
}

/** Runs a command in the shell and returns its one line of output. */
async function capture(client: TerminalTestClient, command: string): Promise<string> {
  const tag = Math.random().toString(36).slice(2, 8);
  client.clearOutput();
  client.send(`echo "<${tag}<$(${command})>${tag}>"\r`);
  const pattern = new RegExp(`<${tag}<([^\\r\\n]*)>${tag}>\\r\\n`);
  await client.waitForText(pattern, 90_000);
  return pattern.exec(client.text)?.[1] ?? '';
}

/**
 * Puts the local STS's socket into the user's mounted credentials directory (host side) and
 * starts the relay inside the container as the user, then waits until it accepts.
 */
async function reachStsFrom(name: string): Promise<void> {
  const key = { ownerId: user(name).id, region };
  const dir = join(t.app.credentialDelivery.directoryOf(key), 'local-sts');
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await sts.listenUnix(join(dir, 'sts.sock'));
  const driver = t.app.environments.driver(region);
  await driver.exec(key, ['sh', '-c', 'python3 -c "$1" >/dev/null 2>&1 &', 'relay', relay]);
  const probe = await driver.exec(key, [
    'bash',
    '-c',
    `for i in $(seq 50); do (echo >/dev/tcp/127.0.0.1/${relayPort}) 2>/dev/null && exit 0; sleep 0.2; done; exit 1`,
  ]);
  expect(probe.exitCode).toBe(0);
}

const credentialRequests = (): number =>
  t.logs.filter((line) => line.includes('"msg":"credentials request"') && line.includes('"status":200'))
    .length;

const callerIdentityCalls = () =>
  sts.requests.filter((r) => r.action === 'GetCallerIdentity' && r.status === 200);

beforeAll(async () => {
  sts = await startLocalSts();
  t = await createTestApp(
    {
      logLevel: 'info',
      regions: [{ id: region, name: 'Europe (Ireland)' }],
      homes: { enabled: false },
      sandbox: { graceS: 5, memoryBytes: 512 * 1024 ** 2 },
    },
    {
      credentialBroker: localStsBroker(sts),
    },
  );
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  await t.app.directory.createAccount({ accountId: prod, name: 'Prod' });
  await t.app.directory.createAccount({ accountId: dev, name: 'Dev' });
  await t.app.directory.createPermissionSet({ name: 'AdministratorAccess', sessionDurationS: 3600 });
  await t.app.directory.createPermissionSet({ name: 'ReadOnly', sessionDurationS: 3600 });
  await makeUser('alice', prod, 'AdministratorAccess');
  await makeUser('bob', dev, 'ReadOnly');
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.ws.terminate();
  const driver = t?.app.environments.driver(region);
  await t?.close();
  await Promise.all(
    [...users.values()].map(({ id }) => driver?.remove({ ownerId: id, region }).catch(() => undefined)),
  );
  await sts?.close();
}, 60_000);

describe('the local STS answers GetCallerIdentity like STS', () => {
  const client = (credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) =>
    new STSClient({ region: 'us-east-1', endpoint: sts.endpoint, credentials, maxAttempts: 1 });
  const assume = async (session: string) => {
    const answer = await client(LOCAL_STS_CALLER).send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${dev}:role/Probe`,
        RoleSessionName: session,
        DurationSeconds: 900,
      }),
    );
    const c = answer.Credentials;
    return {
      accessKeyId: c?.AccessKeyId ?? '',
      secretAccessKey: c?.SecretAccessKey ?? '',
      sessionToken: c?.SessionToken ?? '',
    };
  };
  const errorOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'no error',
      (e: { name: string; $metadata?: { httpStatusCode?: number } }) =>
        `${e.$metadata?.httpStatusCode} ${e.name}`,
    );

  it('R01 names the assumed role of the key that signed, and refuses a wrong secret, an unknown key and an expired token', async () => {
    const issued = await assume(`probe-${run}`);
    const me = await client(issued).send(new GetCallerIdentityCommand({}));
    expect(me.Arn).toBe(`arn:aws:sts::${dev}:assumed-role/Probe/probe-${run}`);
    expect(me.Account).toBe(dev);
    expect(me.UserId).toMatch(new RegExp(`^AROA[A-Z0-9]{17}:probe-${run}$`));

    const wrongSecret = { ...issued, secretAccessKey: `${issued.secretAccessKey.slice(0, -1)}x` };
    expect(await errorOf(client(wrongSecret).send(new GetCallerIdentityCommand({})))).toBe(
      '403 SignatureDoesNotMatch',
    );
    const unknown = { ...issued, accessKeyId: 'ASIAUNKNOWNUNKNOWN00' };
    expect(await errorOf(client(unknown).send(new GetCallerIdentityCommand({})))).toBe(
      '403 InvalidClientTokenId',
    );
    const otherToken = { ...issued, sessionToken: `${issued.sessionToken}x` };
    expect(await errorOf(client(otherToken).send(new GetCallerIdentityCommand({})))).toBe(
      '403 InvalidClientTokenId',
    );

    sts.setExpiresInS(1);
    let expiring: Awaited<ReturnType<typeof assume>>;
    try {
      expiring = await assume(`expiring-${run}`);
    } finally {
      sts.setExpiresInS(null);
    }
    await new Promise((r) => setTimeout(r, 1500));
    expect(await errorOf(client(expiring).send(new GetCallerIdentityCommand({})))).toBe('400 ExpiredToken');
  });
});

// The CLI and boto3 take seconds to start on a busy shared machine.
describe('R01 in a real shell', { timeout: 240_000 }, () => {
  it('R01 aws sts get-caller-identity and boto3 name the assigned role and the user, with the credentials the container provider served', async () => {
    const shell = await openShell('alice', prod, 'AdministratorAccess');
    await reachStsFrom('alice');
    expect(await capture(shell, 'aws configure list 2>&1 | grep access_key | tr -s " "')).toContain(
      'container-role',
    );
    const servedBefore = credentialRequests();
    const callsBefore = callerIdentityCalls().length;

    const cli = await capture(
      shell,
      `aws sts get-caller-identity --endpoint-url ${stsInside} --output json 2>&1 | tr -d '\\n '`,
    );
    const identity = JSON.parse(cli) as { UserId: string; Account: string; Arn: string };
    const session = `alice-${run}`;
    expect(identity.Arn).toBe(`arn:aws:sts::${prod}:assumed-role/Cove-AdministratorAccess/${session}`);
    expect(identity.Account).toBe(prod);
    expect(identity.UserId).toMatch(new RegExp(`^AROA[A-Z0-9]{17}:${session}$`));

    const boto = await capture(
      shell,
      `python3 -c "import boto3,json; i=boto3.client('sts',endpoint_url='${stsInside}').get_caller_identity(); print(json.dumps([i['Arn'],i['UserId']]))" 2>&1`,
    );
    expect(JSON.parse(boto)).toEqual([identity.Arn, identity.UserId]);

    // Both calls signed with a key the local STS issued for Alice's assignment, fetched through
    // the container provider (Cove's socket answered), never a key of anyone else.
    const calls = callerIdentityCalls().slice(callsBefore);
    expect(calls).toHaveLength(2);
    for (const call of calls) {
      const issued = sts.issued.get(call.callerAccessKeyId ?? '');
      expect(issued?.roleArn).toBe(`arn:aws:iam::${prod}:role/Cove-AdministratorAccess`);
      expect(issued?.roleSessionName).toBe(session);
      expect(issued?.sourceIdentity).toBe(session);
      expect(issued?.durationSeconds).toBe(3600);
    }
    expect(credentialRequests() - servedBefore).toBeGreaterThanOrEqual(2);
  });

  it("R01 two users: each shell's caller identity is its own user and role", async () => {
    const alice = await openShell('alice', prod, 'AdministratorAccess');
    const bob = await openShell('bob', dev, 'ReadOnly');
    await reachStsFrom('bob');
    const arnOf = (shell: TerminalTestClient) =>
      capture(
        shell,
        `aws sts get-caller-identity --endpoint-url ${stsInside} --query Arn --output text 2>&1`,
      );
    const callsBefore = callerIdentityCalls().length;
    const [aliceArn, bobArn] = await Promise.all([arnOf(alice), arnOf(bob)]);
    expect(aliceArn).toBe(`arn:aws:sts::${prod}:assumed-role/Cove-AdministratorAccess/alice-${run}`);
    expect(bobArn).toBe(`arn:aws:sts::${dev}:assumed-role/Cove-ReadOnly/bob-${run}`);
    const signers = callerIdentityCalls()
      .slice(callsBefore)
      .map((call) => sts.issued.get(call.callerAccessKeyId ?? '')?.roleSessionName)
      .sort();
    expect(signers).toEqual([`alice-${run}`, `bob-${run}`]);
  });
});
