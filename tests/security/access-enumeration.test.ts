/**
 * SECURITY-TESTS H05 on the two routes that take a region, an account and a permission set: the
 * terminal create route and `POST /api/credentials`. A real app (real SQLite, real sessions,
 * the seeded directory) with the fake sandbox driver, so "no container created" is the driver's
 * call list, and a broker pointed at the local STS, so "no STS call" is the STS's request list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDirectory } from '../../server/directory/seed.js';
import { FakeSandboxDriver } from '../unit/server/environments/fake-sandbox-driver.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { localStsBroker, startLocalSts, type LocalSts } from '../helpers/local-sts.js';

const origin = 'http://127.0.0.1:8080';
const regions = ['us-east-1', 'eu-west-1'];
const prod = '111122223333';
const dev = '444455556666';

describe('H05 regions, accounts and permission sets a user may not name', () => {
  let sts: LocalSts;
  let t: TestApp;
  let driver: FakeSandboxDriver;
  let alice: string;
  let aliceId: string;

  beforeAll(async () => {
    sts = await startLocalSts();
    driver = new FakeSandboxDriver();
    t = await createTestApp(
      {
        regions: [
          { id: 'us-east-1', name: 'US East' },
          { id: 'eu-west-1', name: 'Europe' },
        ],
        defaultRegion: 'us-east-1',
        sandbox: { graceS: 30 },
        homes: { enabled: false },
      },
      {
        driverFactory: () => driver,
        credentialBroker: localStsBroker(sts, { requestTimeoutMs: 300, retryBudgetMs: 1000 }),
      },
    );
    await seedDirectory(t.app);
    const { directory } = t.app;
    await directory.createAccount({ accountId: prod, name: 'prod' });
    await directory.createAccount({ accountId: dev, name: 'dev' });
    const aliceUser = await t.store.users.create({ username: `alice-${process.pid}` });
    aliceId = aliceUser.id;
    const bobUser = await t.store.users.create({ username: `bob-${process.pid}` });
    await directory.createAssignment({
      principalType: 'user',
      principalId: aliceUser.id,
      accountId: prod,
      permissionSet: 'ReadOnlyAccess',
    });
    // Bob's assignment: an account and permission set that exist, just not for Alice.
    await directory.createAssignment({
      principalType: 'user',
      principalId: bobUser.id,
      accountId: dev,
      permissionSet: 'PowerUserAccess',
    });
    alice = `${t.app.sessionCookieName}=${(await t.app.sessions.create(aliceUser.id, 'full')).token}`;
  });
  afterAll(async () => {
    await t?.close();
    await sts?.close();
  });

  const post = (url: string, body: unknown) =>
    t.app.inject({
      method: 'POST',
      url,
      headers: { origin, cookie: alice, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });

  /** Not Alice's, each for a different reason; the answer must not say which. */
  const notHers = [
    { accountId: '000000000000', permissionSet: 'ReadOnlyAccess' },
    { accountId: prod, permissionSet: 'NoSuchPermissionSet' },
    { accountId: prod, permissionSet: 'AdministratorAccess' },
    { accountId: dev, permissionSet: 'PowerUserAccess' },
    { accountId: '000000000000', permissionSet: 'NoSuchPermissionSet' },
  ];

  const expectNothingHappened = (callsBefore: number, stsBefore: number) => {
    expect(driver.calls.slice(callsBefore)).toEqual([]);
    expect(driver.environments.size).toBe(0);
    expect(sts.requests.slice(stsBefore)).toEqual([]);
  };

  it('H05 POST /api/credentials: bad regions are 400 with the allowed list; unknown and unassigned are one identical 403 without an STS call', async () => {
    const stsBefore = sts.requests.length;
    for (const region of ['xx-fake-1', 'us-east-1/../x', 'US-EAST-1', ' ']) {
      const response = await post('/api/credentials', {
        accountId: prod,
        permissionSet: 'ReadOnlyAccess',
        region,
      });
      expect(response.statusCode, region).toBe(400);
      expect(response.json(), region).toMatchObject({ code: 'COVE_ERR_REQUEST_INVALID', regions });
      expect(response.headers['cache-control']).toBe('no-store');
    }
    const empty = await post('/api/credentials', {
      accountId: prod,
      permissionSet: 'ReadOnlyAccess',
      region: '',
    });
    // The schema refuses it before the region check, so without the list (credential-routes.ts
    // would need `region` without minLength to say it): still a 400 that names the field.
    expect(empty.statusCode).toBe(400);
    expect(empty.json()).toMatchObject({ code: 'COVE_ERR_REQUEST_INVALID', field: 'region' });
    expect(sts.requests.slice(stsBefore)).toEqual([]);

    const bodies = new Set<string>();
    for (const body of notHers) {
      const response = await post('/api/credentials', body);
      expect(response.statusCode, JSON.stringify(body)).toBe(403);
      bodies.add(response.body);
    }
    expect(bodies.size).toBe(1);
    const [only] = [...bodies];
    expect(JSON.parse(only ?? '{}')).toMatchObject({ code: 'COVE_ERR_CREDENTIALS_ACCESS' });
    expect(only).not.toMatch(/arn:aws|000000000000|444455556666|NoSuch|AdministratorAccess|PowerUser/);
    expect(sts.requests.slice(stsBefore)).toEqual([]);

    // The control: her own assignment reaches STS, once, as her.
    const mine = await post('/api/credentials', { accountId: prod, permissionSet: 'ReadOnlyAccess' });
    expect(mine.statusCode, mine.body).toBe(200);
    expect(sts.requests.slice(stsBefore).map((r) => r.roleArn)).toEqual([
      `arn:aws:iam::${prod}:role/Cove-ReadOnlyAccess`,
    ]);
  });

  it('H05 the terminal route: bad regions are 400 with the allowed list; unknown and unassigned are one identical 403; nothing starts, STS is not called', async () => {
    const callsBefore = driver.calls.length;
    const stsBefore = sts.requests.length;
    for (const region of ['xx-fake-1', 'us-east-1%2F..%2Fx', 'US-EAST-1', '%20']) {
      const response = await post(`/api/environments/${region}/terminals`, {});
      expect(response.statusCode, region).toBe(400);
      expect(response.json(), region).toMatchObject({ code: 'COVE_ERR_REQUEST_INVALID', regions });
      expect(response.json<{ message: string }>().message).toContain('Use one of: us-east-1, eu-west-1');
    }
    const empty = await post('/api/environments//terminals', {});
    expect(empty.statusCode).toBe(400);
    expect(empty.json()).toEqual({
      code: 'COVE_ERR_REQUEST_INVALID',
      message: 'There is no region "". Use one of: us-east-1, eu-west-1.',
      regions,
    });

    const bodies = new Set<string>();
    for (const body of notHers) {
      const response = await post('/api/environments/us-east-1/terminals', body);
      expect(response.statusCode, JSON.stringify(body)).toBe(403);
      bodies.add(response.body);
    }
    expect([...bodies]).toEqual([
      JSON.stringify({
        code: 'COVE_ERR_TERMINAL_ACCESS',
        message: 'You do not have that account and permission set. Pick one from the portal.',
      }),
    ]);
    expect(t.app.terminals.list(aliceId)).toEqual([]);
    expectNothingHappened(callsBefore, stsBefore);

    // The control: her own assignment is accepted by the same route.
    const mine = await post('/api/environments/us-east-1/terminals', {
      accountId: prod,
      permissionSet: 'ReadOnlyAccess',
    });
    expect(mine.statusCode, mine.body).toBe(201);
  });
});
