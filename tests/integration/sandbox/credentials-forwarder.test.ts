/**
 * The image's credentials forwarder on the real engine: a real container (production spec, from
 * the Docker driver) with a test HTTP server on a unix socket in the mounted directory standing in
 * for Cove. Checks the relay, its answer when the socket is gone or recreated, that cove-init
 * restarts it, that it logs nothing, and how much memory it takes.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../../sandbox/environment-image.js';
import { hostDirectory } from '../../../sandbox/host-directory.js';
import { DockerSandboxDriver } from '../../../sandbox/docker/docker-sandbox-driver.js';
import type { EnvironmentKey } from '../../../sandbox/sandbox-driver.js';

const key: EnvironmentKey = { ownerId: `test-fwd-${randomBytes(4).toString('hex')}`, region: 'eu-west-1' };
const token = `tok-${randomBytes(8).toString('hex')}`;

interface Seen {
  method: string | undefined;
  url: string | undefined;
  authorization: string | undefined;
  extra: string | undefined;
}

describe('cove-credentials-forwarder in the sandbox image', () => {
  const driver = new DockerSandboxDriver();
  const dir = mkdtempSync(join(tmpdir(), 'cove-fwd-'));
  const socketPath = join(dir, 'creds.sock');
  const seen: Seen[] = [];
  let server: Server | undefined;

  const listen = async (): Promise<void> => {
    server = createServer((request, response) => {
      seen.push({
        method: request.method,
        url: request.url,
        authorization: request.headers.authorization,
        extra: request.headers['x-extra'] as string | undefined,
      });
      const body = JSON.stringify({ answered: request.url });
      response.writeHead(request.headers.authorization === token ? 200 : 403, {
        'content-type': 'application/json',
      });
      response.end(body);
    });
    await new Promise<void>((resolve) => server?.listen(socketPath, resolve));
    chmodSync(socketPath, 0o666);
  };
  const stop = async (): Promise<void> => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  };

  const inContainer = async (script: string): Promise<string> =>
    (await driver.exec(key, ['sh', '-c', script], { timeoutMs: 20_000 })).stdout.toString().trim();
  const curl = (extra = '') =>
    inContainer(`curl -s -m 10 -w ' %{http_code}' ${extra} http://127.0.0.1:1338/v1/credentials/x?y=1`);
  const waitForForwarder = async (): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if ((await curl()).endsWith(' 403')) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error('forwarder did not answer');
  };

  beforeAll(async () => {
    chmodSync(dir, 0o755);
    await listen();
    await driver.ensure({
      ...key,
      image: 'cove/sandbox:latest',
      limits: { ...DEFAULT_LIMITS, memoryBytes: 256 * 1024 ** 2 },
      credentials: hostDirectory(dir),
      // Loopback is all the forwarder needs; no bridge keeps the test apart from network set-up.
      network: 'none',
    });
    await waitForForwarder();
  }, 60_000);

  afterAll(async () => {
    await driver.remove(key).catch(() => undefined);
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('R01 relays method, path and Authorization (nothing else) and passes the answer back', async () => {
    seen.length = 0;
    expect(await curl(`-H "Authorization: ${token}" -H "X-Extra: 1"`)).toBe(
      `{"answered":"/v1/credentials/x?y=1"} 200`,
    );
    expect(seen).toEqual([
      { method: 'GET', url: '/v1/credentials/x?y=1', authorization: token, extra: undefined },
    ]);
    expect(await curl()).toBe(`{"answered":"/v1/credentials/x?y=1"} 403`);
  });

  it('F03 answers 503 JSON while the socket is gone, and works again once the server listens anew', async () => {
    await stop();
    // Closing a unix-socket server removes its file; make sure, as a crashed server would not.
    rmSync(socketPath, { force: true });
    const down = await curl(`-H "Authorization: ${token}"`);
    expect(down).toMatch(/^\{"code":"COVE_ERR_CREDENTIALS_UNAVAILABLE","message":"[^"]+"\} 503$/);
    await listen();
    expect(await curl(`-H "Authorization: ${token}"`)).toMatch(/ 200$/);
  });

  it('runs as the container user under cove-init, which restarts it when it dies', async () => {
    const find = 'ps -eo pid=,user=,args= | grep "[c]ove-credentials-forwarder"';
    const before = await inContainer(find);
    expect(before).toMatch(
      /^\s*\d+ cloudsh\S* \/usr\/bin\/python3 \/usr\/local\/bin\/cove-credentials-forwarder$/,
    );
    const pid = before.trim().split(/\s+/)[0] as string;
    await inContainer(`kill ${pid}`);
    await waitForForwarder();
    const after = (await inContainer(find)).trim().split(/\s+/)[0] as string;
    expect(after).not.toBe(pid);
    const rssKiB = Number(await inContainer(`ps -o rss= -p ${after}`));
    console.log(`forwarder RSS: ${(rssKiB / 1024).toFixed(1)} MiB`);
    expect(rssKiB).toBeGreaterThan(0);
  });

  it('R02 logs nothing (no token, no body) to the container log', async () => {
    await curl(`-H "Authorization: ${token}"`);
    const status = await driver.status(key);
    const logs = execFileSync('/usr/bin/docker', ['logs', status.id as string], { encoding: 'utf8' });
    expect(logs).not.toContain(token);
    expect(logs).not.toContain('answered');
  });
});
