/**
 * /metrics, /readyz and the instance id against a real app (real SQLite, the fake sandbox
 * driver, no Docker): the endpoint's switch and token, and real values after real actions.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { createTestApp, type TestApp } from '../../../helpers/test-app.js';
import { sampleValue } from '../../../helpers/prometheus-text.js';
import { FakeSandboxDriver } from '../../../unit/server/environments/fake-sandbox-driver.js';
import { TerminalTestClient } from '../../../unit/server/terminals/ws-test-client.js';

const token = 'metrics-token-0123456789abcdef-0123456789';
const instance = 'cove-test-1';
const region = 'us-east-1';
const origin = 'http://127.0.0.1:8080';

let t: TestApp | undefined;
const clients: TerminalTestClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  await t?.close();
  t = undefined;
});

async function start(raw: Record<string, unknown> = {}): Promise<TestApp> {
  const driver = new FakeSandboxDriver();
  t = await createTestApp(
    { instanceId: instance, homes: { enabled: false }, ...raw },
    { driverFactory: () => driver },
  );
  return t;
}

const scrape = (app: TestApp, authorization?: string) =>
  app.app.inject({
    method: 'GET',
    url: '/metrics',
    headers: authorization === undefined ? {} : { authorization },
  });

async function metricsText(app: TestApp): Promise<string> {
  const res = await scrape(app, `Bearer ${token}`);
  expect(res.statusCode).toBe(200);
  return res.body;
}

describe('/metrics', () => {
  it('is off by default: 404 with a code and how to turn it on, token or not', async () => {
    const app = await start();
    for (const auth of [undefined, `Bearer ${token}`]) {
      const res = await scrape(app, auth);
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({
        code: 'COVE_ERR_METRICS_DISABLED',
        message:
          'Metrics are off on this Cove server. To turn them on, set metrics.token (COVE_METRICS_TOKEN) to a secret of at least 32 characters.',
      });
    }
  });

  it('with a token: 401 without it or with a wrong one, 200 Prometheus text with it', async () => {
    const app = await start({ metrics: { token } });
    for (const auth of [undefined, 'Bearer wrong', `Bearer ${token.slice(0, -1)}`, `Basic ${token}`, token]) {
      const res = await scrape(app, auth);
      expect(res.statusCode, String(auth)).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="cove-metrics"');
      expect(res.json()).toEqual({
        code: 'COVE_ERR_METRICS_UNAUTHORIZED',
        message:
          'Metrics need the header "Authorization: Bearer <token>" with the token configured in metrics.token (COVE_METRICS_TOKEN); it was missing or wrong.',
      });
    }
    const res = await scrape(app, `Bearer ${token}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toContain('# TYPE cove_signin_failures_total counter');
    // Process metrics come with an enabled endpoint.
    expect(sampleValue(res.body, 'cove_process_start_time_seconds', { instance })).toBeGreaterThan(0);
  });

  it('counts failed sign-ins by reason and times store calls, labelled with the instance', async () => {
    const app = await start({ metrics: { token }, auth: { maxFailuresPerIp: 2 } });
    const login = (username: string) =>
      app.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        headers: { origin, 'content-type': 'application/json' },
        payload: JSON.stringify({ username, password: 'wrong password!' }),
      });
    expect((await login('nobody')).statusCode).toBe(401);
    expect((await login('someone')).statusCode).toBe(401);
    expect((await login('third')).statusCode).toBe(429);
    const text = await metricsText(app);
    expect(sampleValue(text, 'cove_signin_failures_total', { instance, reason: 'password' })).toBe(2);
    expect(sampleValue(text, 'cove_signin_failures_total', { instance, reason: 'throttled' })).toBe(1);
    // Two look-ups by name, each a real SQLite call through the timing decorator.
    expect(
      sampleValue(text, 'cove_store_operation_duration_seconds_count', {
        instance,
        operation: 'users.getByUsername',
      }),
    ).toBe(2);
    expect(
      sampleValue(text, 'cove_store_operation_duration_seconds_sum', {
        instance,
        operation: 'users.getByUsername',
      }),
    ).toBeGreaterThan(0);
    // The failures were audited through the same decorator.
    expect(
      sampleValue(text, 'cove_store_operation_duration_seconds_count', {
        instance,
        operation: 'audit.append',
      }),
    ).toBe(2);
    expect(
      sampleValue(text, 'cove_http_requests_total', {
        instance,
        method: 'POST',
        route: '/api/auth/login',
        status_class: '4xx',
      }),
    ).toBe(3);
  });

  it('counts open terminals, running environments and the bytes each way', async () => {
    const app = await start({ metrics: { token } });
    await app.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.app.server.address() as AddressInfo).port;
    const user = await app.store.users.create({ username: 'ada' });
    const { token: session } = await app.app.sessions.create(user.id, 'full');
    const cookie = `${app.app.sessionCookieName}=${session}`;
    const created = await app.app.inject({
      method: 'POST',
      url: `/api/environments/${region}/terminals`,
      headers: { origin, cookie, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json<{ terminalId: string }>().terminalId;
    const client = await TerminalTestClient.connect(
      `ws://127.0.0.1:${port}/api/environments/${region}/terminals/${id}/ws`,
      { origin, cookie },
    );
    clients.push(client);
    await client.waitFor(
      () => client.events.some((e) => e.type === 'status' && e.phase === 'ready'),
      'ready',
    );
    client.send('hello metrics\r');
    // The fake shell echoes: what was typed comes back as output.
    await client.waitForText('hello metrics');
    let text = await metricsText(app);
    expect(sampleValue(text, 'cove_terminals_open', { instance, region })).toBe(1);
    expect(sampleValue(text, 'cove_environments_running', { instance, region })).toBe(1);
    expect(sampleValue(text, 'cove_terminal_input_bytes_total', { instance })).toBe(14);
    expect(sampleValue(text, 'cove_terminal_output_bytes_total', { instance })).toBeGreaterThanOrEqual(14);

    const closed = await app.app.inject({
      method: 'DELETE',
      url: `/api/environments/${region}/terminals/${id}`,
      headers: { origin, cookie },
    });
    expect(closed.statusCode).toBe(204);
    text = await metricsText(app);
    expect(sampleValue(text, 'cove_terminals_open', { instance, region })).toBeUndefined();
  });
});

describe('instance id', () => {
  it('/readyz names the instance and reports the database as its own check', async () => {
    const app = await start();
    const res = await app.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      status: 'ready',
      instance,
      checks: { store: true, docker: true, network: true, capacity: true },
    });
    await app.store.close();
    const down = await app.app.inject({ method: 'GET', url: '/readyz' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({ status: 'degraded', instance, checks: { store: false } });
  });

  it('every log line carries it', async () => {
    const app = await start();
    await app.app.inject({ method: 'GET', url: '/healthz' });
    const lines = app.logs.flatMap((chunk) => chunk.split('\n').filter(Boolean));
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) expect(JSON.parse(line) as { instance?: string }).toMatchObject({ instance });
  });
});
