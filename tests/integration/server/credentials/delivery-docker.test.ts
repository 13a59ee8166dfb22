/**
 * Credentials inside real shells: a listening Cove (real SQLite, real sessions), the real Docker
 * engine and cove/sandbox:latest, the broker talking to the local STS through the real SDK, and
 * the AWS CLI / boto3 inside the container reaching Cove through the forwarder and the socket.
 * Users are made per run; their containers are removed in afterAll.
 */
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../../helpers/test-app.js';
import { localStsBroker, startLocalSts, type LocalSts } from '../../../helpers/local-sts.js';
import { TerminalTestClient } from '../../../unit/server/terminals/ws-test-client.js';

const region = 'eu-west-1';
const prod = '111122223333';
const dev = '444455556666';
/** The motd's last line: the shell is up (typed commands queue until bash reads them). */
const ready = /everything else resets when the environment restarts/;
const run = `${process.pid}-${Date.now().toString(36)}`;

let sts: LocalSts;
let t: TestApp;
let base: string;
const users = new Map<string, { id: string; cookie: string }>();
const clients: TerminalTestClient[] = [];

const origin = (): string => t.config.publicUrl;

async function makeUser(name: string, assignments: [string, string][]): Promise<void> {
  const { user } = await t.app.directory.createUser({
    username: `${name}-${run}`,
    password: `pw-${run}-Long!1`,
  });
  for (const [accountId, permissionSet] of assignments)
    await t.app.directory.createAssignment({
      principalType: 'user',
      principalId: user.id,
      accountId,
      permissionSet,
    });
  const { token } = await t.app.sessions.create(user.id, 'full');
  users.set(name, { id: user.id, cookie: `cove_session=${token}` });
}

const user = (name: string) => users.get(name) as { id: string; cookie: string };

async function openShell(
  name: string,
  binding: { accountId?: string; permissionSet?: string } = {},
): Promise<TerminalTestClient> {
  const response = await t.app.inject({
    method: 'POST',
    url: `/api/environments/${region}/terminals`,
    headers: { origin: origin(), cookie: user(name).cookie, 'content-type': 'application/json' },
    payload: JSON.stringify(binding),
  });
  expect(response.statusCode, response.body).toBe(201);
  const { terminalId } = response.json<{ terminalId: string }>();
  const client = await TerminalTestClient.connect(
    `ws://${base}/api/environments/${region}/terminals/${terminalId}/ws`,
    { origin: origin(), cookie: user(name).cookie, hello: { cols: 200, rows: 50 } },
  );
  clients.push(client);
  await client.waitForText(ready, 30_000);
  return client;
}

/** Runs a command and returns what it printed between two markers (one line of output). */
async function capture(client: TerminalTestClient, command: string, timeoutMs = 60_000): Promise<string> {
  const tag = Math.random().toString(36).slice(2, 8);
  client.clearOutput();
  client.send(`echo "<${tag}<$(${command})>${tag}>"\r`);
  const pattern = new RegExp(`<${tag}<([^\\r\\n]*)>${tag}>\\r\\n`);
  await client.waitForText(pattern, timeoutMs);
  return pattern.exec(client.text)?.[1] ?? '';
}

const socketRequests = (): number =>
  t.logs.filter((line) => line.includes('"msg":"credentials request"') && line.includes('"status":200'))
    .length;

const exportCredentials = (profile?: string): string =>
  `python3 -c "import boto3,json; c=boto3.Session(${profile ? `profile_name='${profile}'` : ''}).get_credentials().get_frozen_credentials(); print(json.dumps([c.access_key,c.secret_key,c.token]))"`;

beforeAll(async () => {
  sts = await startLocalSts();
  t = await createTestApp(
    {
      logLevel: process.env.TEST_LOG_LEVEL ?? 'info',
      regions: [{ id: region, name: 'Europe (Ireland)' }],
      homes: { enabled: false },
      sandbox: { graceS: 5, memoryBytes: 512 * 1024 ** 2 },
      credentials: { accessRecheckS: 2 },
    },
    {
      // A hung STS request is given up on after 15 s (then retried), so a test can watch a shell
      // start while its first AssumeRole is still unanswered.
      credentialBroker: localStsBroker(sts, { requestTimeoutMs: 15_000, retryBudgetMs: 40_000 }),
    },
  );
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  base = `127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  await t.app.directory.createAccount({ accountId: prod, name: 'Prod' });
  await t.app.directory.createAccount({ accountId: dev, name: 'Dev' });
  await t.app.directory.createPermissionSet({ name: 'AdministratorAccess', sessionDurationS: 3600 });
  await t.app.directory.createPermissionSet({ name: 'ReadOnly', sessionDurationS: 3600 });
  await t.app.directory.createPermissionSet({ name: 'Denied', sessionDurationS: 3600 });
  await makeUser('alice', [
    [prod, 'AdministratorAccess'],
    [dev, 'ReadOnly'],
  ]);
  await makeUser('bob', [[prod, 'AdministratorAccess']]);
  await makeUser('carol', [[prod, 'Denied']]);
  await makeUser('dave', [[dev, 'ReadOnly']]);
  await makeUser('frank', [[dev, 'ReadOnly']]);
  await makeUser('erin', [[dev, 'ReadOnly']]);
  await makeUser('gina', [[dev, 'ReadOnly']]);
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

// The CLI and boto3 take seconds to start on a busy shared machine; several run per test.
describe('credentials in a real shell', { timeout: 240_000 }, () => {
  it('R01 serves the shell through the container provider with exactly what the local STS issued for that user', async () => {
    const shell = await openShell('alice', { accountId: prod, permissionSet: 'AdministratorAccess' });
    expect(shell.text).toContain('identity: AdministratorAccess @ Prod (111122223333)');
    expect(await capture(shell, 'echo $AWS_REGION $AWS_DEFAULT_REGION')).toBe(`${region} ${region}`);
    const list = await capture(shell, 'aws configure list 2>&1 | grep access_key | tr -s " "');
    expect(list).toContain('container-role');
    const [keyId, secret, token] = JSON.parse(await capture(shell, exportCredentials())) as string[];
    const issued = sts.issued.get(keyId as string);
    expect(issued).toBeDefined();
    expect([secret, token]).toEqual([issued?.secretAccessKey, issued?.sessionToken]);
    expect(issued?.roleArn).toBe(`arn:aws:iam::${prod}:role/Cove-AdministratorAccess`);
    expect(issued?.roleSessionName).toBe(`alice-${run}`);
  });

  it('R01 serves every other assignment as a named profile, in a tab with or without an account', async () => {
    const shell = await openShell('alice');
    await t.app.credentialDelivery.settled();
    expect(shell.text).toContain('No AWS credentials in this tab. Open one from the portal');
    expect(await capture(shell, 'env | grep -c ^AWS_CONTAINER_ || true')).toBe('0');
    const config = await capture(shell, 'grep "^\\[profile" ~/.aws/config | tr "\\n" " "');
    expect(config).toBe('[profile dev-readonly] [profile prod-administratoraccess] ');
    const [keyId] = JSON.parse(await capture(shell, exportCredentials('dev-readonly'))) as string[];
    expect(sts.issued.get(keyId as string)?.roleArn).toBe(`arn:aws:iam::${dev}:role/Cove-ReadOnly`);
    const cli = await capture(
      shell,
      'aws --profile prod-administratoraccess configure list 2>&1 | grep access_key',
    );
    expect(cli).toContain('custom-process');
  });

  it('R01 refetches while credentials have 15 minutes or less left, and not otherwise', async () => {
    const threeFetches =
      'python3 -c "import boto3,time; c=boto3.Session().get_credentials(); ' +
      "[(c.get_frozen_credentials(), time.sleep(2)) for _ in range(3)]; print('done')\"";
    const dave = await openShell('dave', { accountId: dev, permissionSet: 'ReadOnly' });
    const before = socketRequests();
    expect(await capture(dave, threeFetches)).toBe('done');
    expect(socketRequests() - before).toBe(1);

    // A user with nothing cached yet, so every answer carries the short expiry.
    sts.setExpiresInS(15 * 60 + 1);
    try {
      const frank = await openShell('frank', { accountId: dev, permissionSet: 'ReadOnly' });
      const short = socketRequests();
      expect(await capture(frank, threeFetches)).toBe('done');
      expect(socketRequests() - short).toBeGreaterThanOrEqual(3);
    } finally {
      sts.setExpiresInS(null);
    }
  });

  it("I04 refuses no token (401), another environment's token (403) and a token from before a restart (403)", async () => {
    const alice = await openShell('alice', { accountId: prod, permissionSet: 'AdministratorAccess' });
    const aliceToken = await capture(alice, 'echo $AWS_CONTAINER_AUTHORIZATION_TOKEN');
    const curl = (token?: string) =>
      `curl -s -o /dev/null -w %{http_code} ${token ? `-H "Authorization: ${token}"` : ''} http://127.0.0.1:1338/v1/credentials`;
    expect(await capture(alice, curl())).toBe('401');
    expect(await capture(alice, curl(aliceToken))).toBe('200');
    const bob = await openShell('bob', { accountId: prod, permissionSet: 'AdministratorAccess' });
    expect(await capture(bob, curl(aliceToken))).toBe('403');
    expect(await capture(bob, curl('$AWS_CONTAINER_AUTHORIZATION_TOKEN'))).toBe('200');

    await t.app.environments.stop({ ownerId: user('alice').id, region });
    const again = await openShell('alice', { accountId: prod, permissionSet: 'AdministratorAccess' });
    expect(await capture(again, curl(aliceToken))).toBe('403');
    expect(await capture(again, curl('$AWS_CONTAINER_AUTHORIZATION_TOKEN'))).toBe('200');
  });

  it('A06 cuts a profile off once the assignment is removed', async () => {
    const shell = await openShell('erin');
    const fetch = `cove-credential-process ${dev} ReadOnly >/dev/null 2>/tmp/err && echo ok || cat /tmp/err`;
    expect(await capture(shell, fetch)).toBe('ok');
    const assignment = (await t.app.directory.listAssignments()).find(
      (a) => a.principalId === user('erin').id,
    );
    await t.app.directory.deleteAssignment(assignment?.id as string);
    const deadline = Date.now() + 60_000;
    let answer = await capture(shell, fetch);
    while (answer === 'ok' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      answer = await capture(shell, fetch);
    }
    expect(answer).toBe(
      'cove-credential-process: You do not have that account and permission set. Pick one from the portal.',
    );
  });

  it('F06 tells the user when the role refuses AssumeRole, and the shell still works', async () => {
    sts.denyRole(`arn:aws:iam::${prod}:role/Cove-Denied`);
    const shell = await openShell('carol', { accountId: prod, permissionSet: 'Denied' });
    // The prompt does not wait for STS: the refusal reaches the page as a notice.
    await shell.waitFor(
      () => shell.events.some((e) => e.type === 'notice' && e.kind === 'credentials'),
      'a credentials notice',
    );
    const notice = shell.events.find((e) => e.type === 'notice' && e.kind === 'credentials');
    expect(notice && 'message' in notice ? notice.message : '').toMatch(
      /^could not assume role Cove-Denied in account 111122223333: AccessDenied\b/,
    );
    expect(await capture(shell, 'echo ok-$((1+1))')).toBe('ok-2');
  });

  it('R01 gives a shell bound to an account × permission set its prompt while STS does not answer; the credentials follow by themselves', async () => {
    const session = `gina-${run}`;
    const first = sts.requests.length;
    sts.hangNext(1);
    const shell = await openShell('gina', { accountId: dev, permissionSet: 'ReadOnly' });
    // The prompt is there while this shell's first AssumeRole is still open at the STS.
    await shell.waitForPrompt(30_000);
    const mine = sts.requests.slice(first).filter((r) => r.roleSessionName === session);
    expect(mine.map((r) => r.status)).toEqual([0]);
    expect([...sts.issued.values()].some((c) => c.roleSessionName === session)).toBe(false);
    expect(await capture(shell, 'echo typed-$((20+1))')).toBe('typed-21');
    // Nobody asks again: the broker retries by itself and the SDK in the shell gets what it issued.
    let keyId: string | undefined;
    for (let attempt = 0; attempt < 30 && !keyId; attempt++) {
      const out = await capture(shell, `${exportCredentials()} 2>/dev/null || echo not-yet`);
      if (out.startsWith('[')) keyId = (JSON.parse(out) as string[])[0];
      else await new Promise((r) => setTimeout(r, 2000));
    }
    expect(sts.issued.get(keyId as string)?.roleSessionName).toBe(session);
  });

  it('R02 leaves no key id, secret or session token in the logs, docker inspect, or the home', async () => {
    const secrets = [...sts.issued.values()].flatMap((c) => [
      c.accessKeyId,
      c.secretAccessKey,
      c.sessionToken,
    ]);
    expect(secrets.length).toBeGreaterThan(6);
    const leaks = (text: string) => secrets.filter((s) => text.includes(s));
    const logs = t.logs.join('');
    // With TEST_LOG_LEVEL=debug: what delivery adds to each tab's start (profiles + first fetch).
    const prepared = t.logs
      .filter((line) => line.includes('"msg":"shell credentials prepared"'))
      .map((line) => (JSON.parse(line) as { ms: number }).ms);
    if (prepared.length > 0) console.log(`shell credentials prepared (ms): ${prepared.join(', ')}`);
    expect(leaks(logs)).toEqual([]);
    expect(logs).not.toMatch(/\b(ASIA|AKIA)[A-Z0-9]{12,}/);

    const driver = t.app.environments.driver(region);
    let inspected = 0;
    for (const { id } of users.values()) {
      const status = await driver.status({ ownerId: id, region });
      if (status.state !== 'running' || !status.id) continue;
      let inspect: string;
      try {
        inspect = execFileSync('/usr/bin/docker', ['inspect', status.id], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        });
      } catch {
        continue; // removed since the status was read
      }
      inspected++;
      expect(leaks(inspect)).toEqual([]);
      const execIds = (JSON.parse(inspect) as { ExecIDs: string[] | null }[])[0]?.ExecIDs ?? [];
      for (const execId of execIds) {
        let exec: string;
        try {
          exec = execFileSync('/usr/bin/docker', ['inspect', execId], {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'ignore'],
          });
        } catch {
          continue; // an exec that ended is forgotten by the engine
        }
        expect(leaks(exec)).toEqual([]);
      }
      const home = await driver.exec({ ownerId: id, region }, [
        'sh',
        '-c',
        'find "$HOME" -type f -size -1M -exec cat {} + 2>/dev/null; true',
      ]);
      expect(leaks(home.stdout.toString('latin1'))).toEqual([]);
      expect(home.stdout.toString('latin1')).not.toMatch(/\b(ASIA|AKIA)[A-Z0-9]{16}\b/);
    }
    expect(inspected).toBeGreaterThan(2);
  });
});
