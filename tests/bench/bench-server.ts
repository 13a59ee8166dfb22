/**
 * The server under test for tests/bench/run.ts, as its own process so its memory can be read from
 * /proc. Builds Cove on a temp SQLite file, makes the bench users with sessions, prints one JSON
 * line ({port, origin, users, s3Credentials, s3Endpoint}) and serves until stdin closes or the time limit
 * passes. `s3Credentials` is the embedded S3's per-process key, for the transfer bench's baseline
 * (a plain PUT and GET against the same S3); it goes only to the parent's pipe.
 * Arguments: user count, lifetime in ms, the URL of dist/server/ (when run from elsewhere), and
 * optionally a JSON object: `webRoot` serves the built pages (the page-level figures in Chromium;
 * the origin is then the real listening address, as the WebSocket origin check wants),
 * `stsEndpoint` issues credentials from that local STS and gives every user the account × permission
 * set `benchAccess` names, so a tab bound to it goes through the whole credentials path;
 * `recordedUsers` puts the last that many users in a group whose terminals are recorded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { freeLoopbackPort } from '../helpers/free-port.js';
import type * as AppModule from '../../server/app.js';
import type * as ConfigModule from '../../server/config.js';
import type * as StoreModule from '../../server/store/sqlite-store.js';
import type * as HomesModule from '../../server/homes/home-service.js';
import type * as EmbeddedS3Module from '../../server/files/embedded-s3.js';
import type * as StsBrokerModule from '../../server/credentials/sts-credential-broker.js';

/** The account × permission set every bench user holds when a local STS is given. */
const benchAccess = { accountId: '111122223333', permissionSet: 'BenchAdmin' } as const;
/** Static caller credentials for the local STS (it only checks that requests are signed). */
const localStsCaller = { accessKeyId: 'AKIALOCALSTSCALLER00', secretAccessKey: 'local-sts-caller-secret' };

// The compiled server (npm run bench builds it first): what production runs, and its memory is
// not inflated by transpiling TypeScript on the fly.
const dist = new URL(process.argv[4] ?? '../../dist/server/', import.meta.url);
if (!existsSync(new URL('app.js', dist))) {
  process.stderr.write(
    'bench-server: dist/server is missing; run `npx tsc -b server` (npm run bench does).\n',
  );
  process.exit(1);
}
const { buildApp } = (await import(new URL('app.js', dist).href)) as typeof AppModule;
const { buildConfig } = (await import(new URL('config.js', dist).href)) as typeof ConfigModule;
const { SqliteStore } = (await import(new URL('store/sqlite-store.js', dist).href)) as typeof StoreModule;
const { loopHomeVolumesFor } = (await import(
  new URL('homes/home-service.js', dist).href
)) as typeof HomesModule;
const { embeddedCredentials } = (await import(
  new URL('files/embedded-s3.js', dist).href
)) as typeof EmbeddedS3Module;

const userCount = Number(process.argv[2] ?? 8);
const maxLifetimeMs = Number(process.argv[3] ?? 15 * 60_000);
const extra = JSON.parse(process.argv[5] ?? '{}') as {
  webRoot?: string;
  stsEndpoint?: string;
  logLevel?: 'info' | 'warn';
  maxConcurrentStarts?: number;
  recordedUsers?: number;
};

const port = extra.webRoot ? await freeLoopbackPort() : 0;
const dir = mkdtempSync(join(tmpdir(), 'cove-bench-'));
const store = new SqliteStore(join(dir, 'cove.db'));
const config = buildConfig({
  logLevel: extra.logLevel ?? 'warn',
  dataDir: dir,
  regions: [{ id: 'us-east-1', name: 'US East' }],
  sandbox: {
    graceS: 30,
    ...(extra.maxConcurrentStarts ? { maxConcurrentStarts: extra.maxConcurrentStarts } : {}),
  },
  // Large enough that the throughput runs are recorded whole, not cut at the default bound.
  recordings: { maxBytes: 4 * 1024 ** 3 },
  ...(port ? { port, publicUrl: `http://127.0.0.1:${port}` } : {}),
});
// Real loop-mounted homes as in production (`<dir>/homes`), deleted again in stop().
const homeVolumes = loopHomeVolumesFor(config);
let credentialBroker: StsBrokerModule.StsCredentialBroker | undefined;
if (extra.stsEndpoint) {
  const { StsCredentialBroker } = (await import(
    new URL('credentials/sts-credential-broker.js', dist).href
  )) as typeof StsBrokerModule;
  credentialBroker = new StsCredentialBroker({
    region: 'us-east-1',
    endpoint: extra.stsEndpoint,
    credentials: localStsCaller,
  });
}
const app = await buildApp({
  config,
  store,
  ...(homeVolumes ? { homeVolumes } : {}),
  ...(extra.webRoot ? { webRoot: extra.webRoot } : {}),
  ...(credentialBroker ? { credentialBroker } : {}),
});
await app.listen({ host: '127.0.0.1', port });
if (extra.stsEndpoint) {
  await app.directory.createAccount({ accountId: benchAccess.accountId, name: 'Bench' });
  await app.directory.createPermissionSet({ name: benchAccess.permissionSet, sessionDurationS: 3600 });
}
const users: { id: string; cookie: string }[] = [];
for (let i = 0; i < userCount; i++) {
  const user = await store.users.create({ username: `bench-${process.pid}-${i}` });
  const { token } = await app.sessions.create(user.id, 'full');
  users.push({ id: user.id, cookie: `cove_session=${token}` });
  if (extra.stsEndpoint)
    await app.directory.createAssignment({ principalType: 'user', principalId: user.id, ...benchAccess });
}

// The last `recordedUsers` users are in a group whose terminals are recorded (output).
if (extra.recordedUsers) {
  const group = await app.directory.createGroup({ name: 'bench-recorded', record: 'output' });
  for (const user of users.slice(-extra.recordedUsers)) await store.groups.addMember(group.id, user.id);
}

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  const driver = app.environments.driver('us-east-1');
  await app.close();
  // Whether recording kept up (or dropped events under the flood) belongs next to its cost.
  for (const r of extra.recordedUsers ? await store.recordings.search({}) : [])
    process.stderr.write(
      `bench-server: recording ${r.id}: ${(r.bytes / 1e6).toFixed(1)} MB, ${r.complete ? 'complete' : 'INCOMPLETE'}\n`,
    );
  await Promise.all(
    users.map((u) => driver.remove({ ownerId: u.id, region: 'us-east-1' }).catch(() => undefined)),
  );
  for (const home of (await homeVolumes?.list()) ?? [])
    await homeVolumes?.delete(home).catch(() => undefined);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.stdin.on('end', () => void stop());
process.stdin.on('close', () => void stop());
process.stdin.resume();
setTimeout(() => void stop(), maxLifetimeMs).unref();

process.stdout.write(
  `${JSON.stringify({
    port: (app.server.address() as AddressInfo).port,
    origin: config.publicUrl,
    users,
    s3Credentials: embeddedCredentials,
    s3Endpoint: app.files.embedded?.endpoint,
  })}\n`,
);
