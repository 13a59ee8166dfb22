/**
 * SECURITY-TESTS F08, the engine's side: a second dockerd of this test's own whose data root
 * (what /var/lib/docker is for the main engine) is a small loop-mounted ext4, with Cove's sandbox
 * image (less its packages, below) loaded into it, and a real Cove server whose region points at that engine's socket. The
 * test fills the engine's filesystem from the host. A user with a shell keeps working (and can
 * open another tab: execs need no new layer), a new user's environment is refused with a coded
 * 507 that says the server is out of disk space (first over the terminal socket, then at once on
 * the next request), no container of theirs is left behind, /readyz says capacity, and after
 * the filler is removed the same user gets a working shell.
 *
 * The image is Cove's sandbox image without its package layer (awscli, python3, node: 700 of its
 * 825 MB), which a shell prompt does not need: `docker load` of the whole image took 85-110 s here,
 * the rest loads in about 7 s after a 25 s `docker save` (`loadSandboxImageWithoutPackages`). What fills up is the
 * engine's filesystem, whatever the image holds.
 *
 * The second engine (tests/helpers/second-dockerd.ts) has its own socket, data root, exec root,
 * pid file, containerd namespaces and bridge `cove-f08-<run>` with its own subnet, iptables off;
 * the main engine is only read (`docker save`). Everything is stopped, unmounted and removed in
 * afterAll.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/app.js';
import { buildConfig } from '../../server/config.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LoopHomeVolumes, mountedPaths } from '../../sandbox/homes/home-volumes.js';
import { regionBridgeName, regionNetworkOptions } from '../../sandbox/docker/region-network.js';
import { LABEL_OWNER, MANAGED_LABEL_FILTER } from '../../sandbox/names.js';
import { startSecondDockerd, type SecondDockerd } from '../helpers/second-dockerd.js';
import { TerminalTestClient } from '../unit/server/terminals/ws-test-client.js';

const run = promisify(execFile);
const DOCKER = '/usr/bin/docker';
const IMAGE = 'cove/sandbox:latest';
const SLIM_IMAGE = 'cove/sandbox:f08-slim';
const RUN = randomBytes(3).toString('hex');
const DIR = `/tmp/cove-f08d-${RUN}`;
const ENGINE_ROOT = join(DIR, 'docker');
const BRIDGE = `cove-f08-${RUN}`;
const SUBNET_BYTE = randomBytes(1)[0] ?? 7;
const BRIDGE_ADDRESS = `10.215.${SUBNET_BYTE}.1/24`;
const REGION_SUBNET = `10.216.${SUBNET_BYTE}.0/24`;
// A region of this run only: its network's bridge name derives from it, so it cannot meet a
// bridge of the main engine or of another run.
const region = `eu-full${[...RUN].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('')}-1`;
const origin = 'http://127.0.0.1:8080';
const MiB = 1024 ** 2;
// The slim image takes about 130 MiB once loaded; room for it and a few containers. Sparse, and
// the filler is allocated, not written. (The whole image would need 2.5 GiB: `docker load` needs
// about twice its 925 MiB while it unpacks.)
const ENGINE_FS_BYTES = 512 * MiB;

let second: SecondDockerd | undefined;
let engine: Docker;
let store: SqliteStore | undefined;
let volumes: LoopHomeVolumes | undefined;
let app: FastifyInstance | undefined;
let base = '';
const users: { id: string; cookie: string }[] = [];
const clients: TerminalTestClient[] = [];
const timings: Record<string, string> = {};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

/**
 * `docker save` of the sandbox image, minus its largest layer above the base (the apt packages),
 * loaded into the second engine as SLIM_IMAGE: the layers above it (dtach, the user, Cove's
 * scripts) are whole files, so they apply without it. The config drops the layer's diff id and
 * history entry and is renamed by its new digest, as `docker load` expects.
 */
async function loadSandboxImageWithoutPackages(): Promise<void> {
  const dir = join(DIR, 'image');
  // The main engine may stop mid-save (another suite restarts it): wait for it and save again.
  for (let attempt = 1; ; attempt++) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    await waitFor('the main engine', () => run(DOCKER, ['version']).then(() => true), 240_000);
    const saved = await run('bash', [
      '-c',
      `set -o pipefail; ${DOCKER} save ${IMAGE} | tar -x -C ${dir}`,
    ]).then(
      () => true,
      (error: unknown) => {
        if (attempt >= 3) throw error;
        return false;
      },
    );
    if (saved) break;
  }
  const [manifest] = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
    Config: string;
    Layers: string[];
  }[];
  if (!manifest) throw new Error('docker save wrote no manifest');
  const config = JSON.parse(readFileSync(join(dir, manifest.Config), 'utf8')) as {
    rootfs: { diff_ids: string[] };
    history: { empty_layer?: boolean }[];
  };
  const sizes = manifest.Layers.map((layer) => statSync(join(dir, layer)).size);
  const total = sizes.reduce((a, b) => a + b, 0);
  const packages = sizes.reduce((best, size, i) => (i > 0 && size > (sizes[best] ?? 0) ? i : best), 1);
  const layerHistory = config.history.flatMap((entry, i) => (entry.empty_layer ? [] : [i]));
  config.history.splice(layerHistory[packages] ?? -1, 1);
  config.rootfs.diff_ids.splice(packages, 1);
  const configText = JSON.stringify(config);
  const configName = `${createHash('sha256').update(configText).digest('hex')}.json`;
  writeFileSync(join(dir, configName), configText);
  const layers = manifest.Layers.filter((_layer, i) => i !== packages);
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify([{ Config: configName, RepoTags: [SLIM_IMAGE], Layers: layers }]),
  );
  await run('bash', [
    '-c',
    `set -o pipefail; tar -C ${dir} -c manifest.json ${configName} ${layers.join(' ')} | ${DOCKER} -H ${second!.host} load -q`,
  ]);
  timings.imageLoaded = `${((total - (sizes[packages] ?? 0)) / MiB).toFixed(0)} of ${(total / MiB).toFixed(0)} MiB`;
  rmSync(dir, { recursive: true, force: true });
}

async function freeBytes(): Promise<number> {
  const { stdout } = await run('df', ['-B1', '--output=avail', ENGINE_ROOT]);
  return Number(stdout.trim().split('\n').at(-1));
}

beforeAll(async () => {
  mkdirSync(ENGINE_ROOT, { recursive: true });
  const image = join(DIR, 'engine.img');
  await run('truncate', ['-s', String(ENGINE_FS_BYTES), image]);
  await run('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
  await run('mount', ['-o', 'loop', image, ENGINE_ROOT]);
  second = await startSecondDockerd({
    name: `cove-f08-${RUN}`,
    dir: join(DIR, 'engine'),
    dataRoot: ENGINE_ROOT,
    bridge: BRIDGE,
    bridgeAddress: BRIDGE_ADDRESS,
  });
  engine = new Docker({ socketPath: second.socketPath });

  const loadStart = Date.now();
  await loadSandboxImageWithoutPackages();
  timings.imageLoad = `${((Date.now() - loadStart) / 1000).toFixed(1)} s`;
  // The region's network with a subnet of this run's own; Cove finds it fit and uses it.
  const network = regionNetworkOptions(region);
  await engine.createNetwork({
    ...network,
    IPAM: { Driver: 'default', Config: [{ Subnet: REGION_SUBNET }] },
  });

  const dataDir = join(DIR, 'cove');
  store = new SqliteStore(join(dataDir, 'cove.db'));
  volumes = new LoopHomeVolumes({ root: join(dataDir, 'homes'), reserveBytes: 0 });
  const config = buildConfig({
    logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    dataDir,
    regions: [{ id: region, name: 'Full Disk', docker: { socketPath: second.socketPath } }],
    sandbox: { image: SLIM_IMAGE, graceS: 5, memoryBytes: 256 * MiB },
    homes: { sizeBytes: 64 * MiB, reserveBytes: 0 },
  });
  app = await buildApp({ config, store, homeVolumes: volumes });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}, 600_000);

afterAll(async () => {
  for (const client of clients) client.ws.terminate();
  await app?.close().catch(() => undefined);
  // Its containers and the region's network go with it; a failed stop is reported after the
  // rest is cleaned up.
  const stopError = await second?.stop().then(
    () => undefined,
    (error: unknown) => error,
  );
  for (const home of (await volumes?.list().catch(() => [])) ?? [])
    await volumes?.delete(home).catch(() => undefined);
  await store?.close().catch(() => undefined);
  // Whatever is still mounted under the run's directory (the engine unmounts on a clean stop),
  // deepest first, then the engine's filesystem itself.
  const inside = [...(await mountedPaths())].filter((p) => p.startsWith(`${DIR}/`));
  for (const path of inside.sort((a, b) => b.length - a.length))
    await run('umount', [path]).catch(() => run('umount', ['-l', path]).catch(() => undefined));
  // The region network's bridge, if the engine died before removing it.
  await run('ip', ['link', 'del', regionBridgeName(region)]).catch(() => undefined);
  if ([...(await mountedPaths())].some((p) => p.startsWith(`${DIR}/`)))
    throw new Error(`still mounted under ${DIR}`);
  rmSync(DIR, { recursive: true, force: true });
  if (stopError) throw stopError;
  console.info(`F08 engine disk: ${JSON.stringify(timings)}`);
}, 120_000);

const user = async (name: string) => {
  const record = await store!.users.create({ username: `${name}-${RUN}` });
  const { token } = await app!.sessions.create(record.id, 'full');
  const u = { id: record.id, cookie: `${app!.sessionCookieName}=${token}` };
  users.push(u);
  return u;
};
const createTerminal = (u: { cookie: string }) =>
  app!.inject({
    method: 'POST',
    url: `/api/environments/${region}/terminals`,
    headers: { origin, cookie: u.cookie, 'content-type': 'application/json' },
    payload: '{}',
  });
const connect = async (u: { cookie: string }, terminalId: string) => {
  const client = await TerminalTestClient.connect(
    `ws://${base}/api/environments/${region}/terminals/${terminalId}/ws`,
    { origin, cookie: u.cookie },
  );
  clients.push(client);
  return client;
};
const shell = async (u: { cookie: string }) => {
  const created = await createTerminal(u);
  expect(created.statusCode, created.body).toBe(201);
  const client = await connect(u, created.json<{ terminalId: string }>().terminalId);
  await client.waitForPrompt(60_000);
  return client;
};
const echo = async (client: TerminalTestClient, tag: string) => {
  client.send(`echo ${tag}-$((40+2))\r`);
  await client.waitForScreen(`${tag}-42`, 20_000);
};
const containersOf = async (ownerId: string) =>
  engine.listContainers({
    all: true,
    filters: { label: [MANAGED_LABEL_FILTER, `${LABEL_OWNER}=${ownerId}`] },
  });
const readyz = async () => {
  const response = await app!.inject({ method: 'GET', url: '/readyz' });
  return {
    status: response.statusCode,
    body: response.json<{ status: string; checks: Record<string, boolean> }>(),
  };
};

const hostFullBody = {
  code: 'COVE_ERR_ENVIRONMENT_HOST_FULL',
  message:
    'The server that runs environments is out of disk space, so no new environment can start. Open terminals keep working; try again later and tell your administrator.',
};

describe('F08 the engine data root on its own small filesystem (a second dockerd)', () => {
  it('F08 a full engine filesystem: new environments get a coded 507, nothing half-made, open shells keep working, /readyz says capacity, and freeing space brings service back', async () => {
    const alice = await user('alice');
    const bob = await user('bob');
    const aliceShell = await shell(alice);
    await echo(aliceShell, 'before-full');
    expect(await containersOf(alice.id)).toHaveLength(1);

    // Fill the engine's filesystem from the host, as image pulls or container logs would.
    const fillStart = Date.now();
    const filler = join(ENGINE_ROOT, 'filler');
    await run('fallocate', ['-l', String(Math.max(0, (await freeBytes()) - 4 * MiB)), filler]);
    await run('dd', ['if=/dev/zero', `of=${filler}-tail`, 'bs=4k', 'status=none']).catch(() => undefined);
    timings.fill = `${((Date.now() - fillStart) / 1000).toFixed(1)} s`;
    const free = await freeBytes();
    timings.freeWhileFull = `${free} bytes`;
    expect(free).toBeLessThan(64 * 1024);

    await echo(aliceShell, 'while-full');

    // Bob's first environment: the 201 comes before the engine is asked, so the refusal reaches
    // his page over the socket. His start waits (behind this hold) until the page is attached,
    // so the event cannot be lost to a race; a page attaching later sees 4404 and asks again.
    let attached: () => void = () => undefined;
    const pageAttached = new Promise<void>((resolve) => (attached = resolve));
    const hold = app!.environments.exclusive({ ownerId: bob.id, region }, () => pageAttached);
    let bobPage: TerminalTestClient;
    try {
      const created = await createTerminal(bob);
      expect(created.statusCode, created.body).toBe(201);
      bobPage = await connect(bob, created.json<{ terminalId: string }>().terminalId);
    } finally {
      attached(); // also when the test failed above: nothing may stay queued behind the hold
    }
    await hold;
    const event = await bobPage.waitForEvent('error', 30_000);
    expect({ code: event.code, message: event.message }).toEqual(hostFullBody);
    await bobPage.closed;

    // Nothing half-made: no container of Bob's, not even one in `created`.
    expect(await containersOf(bob.id)).toEqual([]);

    // The next request is refused at once with the status, before any home or container work.
    const refused = await createTerminal(bob);
    expect(refused.statusCode).toBe(507);
    expect(refused.json()).toEqual(hostFullBody);
    expect(refused.body).not.toMatch(/no space|overlay2|\/tmp\/|cove-f08|docker/i);
    const degraded = await readyz();
    expect(degraded.status).toBe(503);
    expect(degraded.body).toMatchObject({
      status: 'degraded',
      checks: { docker: true, store: true, capacity: false },
    });

    // Alice's environment runs: another tab is an exec in it, which needs no space on the engine.
    const second = await shell(alice);
    await echo(second, 'second-tab-while-full');
    await echo(aliceShell, 'after-refusals');
    second.close();

    // Space back: once the hold after the last refusal has passed, Bob gets a working shell.
    await rm(filler);
    await rm(`${filler}-tail`);
    expect(await freeBytes()).toBeGreaterThan(100 * MiB);
    await waitFor('/readyz ready again', async () => (await readyz()).status === 200, 30_000);
    const bobShell = await shell(bob);
    await echo(bobShell, 'bob-after');
    await echo(aliceShell, 'alice-after');
    expect(await containersOf(bob.id)).toHaveLength(1);
    bobShell.close();
    aliceShell.close();
  }, 240_000);
});
