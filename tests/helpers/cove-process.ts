/**
 * The real Cove process for fault tests: `server/main.ts` run by Node with the tsx loader, its
 * config in a JSON file (COVE_CONFIG) inside a temp data dir, listening on a fixed loopback port
 * so a second process can take over the same address and database. Tests stop it with SIGTERM or
 * SIGKILL and start another on the same data dir; `dispose` kills whatever still runs, removes the
 * containers and loop-mounted homes of the users it signed in, and deletes the data dir.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freeLoopbackPort } from './free-port.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { LoopHomeVolumes } from '../../sandbox/homes/home-volumes.js';
import { leakRecord } from './leak-record.js';

const run = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const docker = '/usr/bin/docker';
export const faultAdminPassword = 'faults-admin-password-1';

export interface CoveSite {
  readonly dataDir: string;
  readonly port: number;
  readonly origin: string;
  /** Config keys on top of the test defaults (written to the config file). */
  readonly config: Record<string, unknown>;
}

/** A data dir and port shared by the successive processes of one test file. */
export async function coveSite(config: Record<string, unknown> = {}): Promise<CoveSite> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cove-faults-'));
  const port = await freeLoopbackPort();
  const origin = `http://127.0.0.1:${port}`;
  const file = {
    host: '127.0.0.1',
    port,
    publicUrl: origin,
    dataDir,
    logLevel: 'info',
    regions: [{ id: 'us-east-1', name: 'US East (N. Virginia)' }],
    ...config,
    auth: { argon2MemoryKiB: 1024, argon2TimeCost: 1, ...((config.auth as object | undefined) ?? {}) },
  };
  writeFileSync(join(dataDir, 'cove.config.json'), JSON.stringify(file, null, 2));
  return { dataDir, port, origin, config: file };
}

export class CoveProcess {
  /** stdout and stderr lines, for failure messages. */
  readonly logs: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly site: CoveSite,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolveExit) =>
      child.once('exit', (code, signal) => resolveExit({ code, signal })),
    );
    // The R02 sweep after the whole suite greps every line the process wrote.
    const recordLog = leakRecord.logSink('cove-process');
    const collect = (chunk: Buffer) => {
      recordLog(chunk.toString());
      for (const line of chunk.toString().split('\n')) if (line) this.logs.push(line);
      // Enough to explain a failure; a chatty server must not grow the test's memory.
      if (this.logs.length > 4000) this.logs.splice(0, this.logs.length - 4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
  }

  /**
   * Starts `server/main.ts` on the site and waits until it answers `/readyz` (any status when
   * `ready` is false: an engine that is down makes it 503 on purpose).
   */
  static async start(site: CoveSite, options: { ready?: boolean; timeoutMs?: number } = {}) {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'server/main.ts')], {
      cwd: repoRoot,
      env: {
        ...process.env,
        COVE_CONFIG: join(site.dataDir, 'cove.config.json'),
        COVE_ADMIN_PASSWORD: faultAdminPassword,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const cove = new CoveProcess(site, child);
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    let exited = false;
    void cove.exited.then(() => (exited = true));
    while (Date.now() < deadline && !exited) {
      const status = await fetch(`${site.origin}/readyz`, { signal: AbortSignal.timeout(5000) }).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200 || (status !== 0 && options.ready === false)) return cove;
      await sleep(200);
    }
    child.kill('SIGKILL');
    await cove.exited;
    throw new Error(`Cove did not become ready; last log lines:\n${cove.logs.slice(-30).join('\n')}`);
  }

  /** Sends a signal and waits for the process to exit. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}

/** Signs in as the first admin (made from COVE_ADMIN_PASSWORD) and returns the cookie and user id. */
export async function signInAdmin(site: CoveSite): Promise<{ cookie: string; userId: string }> {
  const response = await fetch(`${site.origin}/api/auth/login`, {
    method: 'POST',
    headers: { origin: site.origin, 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: faultAdminPassword }),
  });
  if (response.status !== 200) throw new Error(`sign-in failed: ${response.status} ${await response.text()}`);
  const setCookie = response.headers.getSetCookie().find((c) => c.startsWith('cove_session='));
  if (!setCookie) throw new Error('sign-in gave no session cookie');
  const cookie = setCookie.split(';')[0] as string;
  leakRecord.secret('session-cookie', cookie.slice(cookie.indexOf('=') + 1));
  const me = (await (await fetch(`${site.origin}/api/me`, { headers: { cookie } })).json()) as { id: string };
  return { cookie, userId: me.id };
}

/** Containers labelled for this owner (running or not), by id. */
export async function containersOf(ownerId: string): Promise<string[]> {
  const { stdout } = await run(docker, ['ps', '-aq', '--filter', `label=cove.owner=${ownerId}`]);
  return stdout.split('\n').filter(Boolean);
}

/**
 * Everything a fault test made: kills any process still running, removes the owners' containers
 * and homes, deletes the data dir. Safe to call after a failure half-way.
 */
export async function disposeSite(
  site: CoveSite | undefined,
  processes: readonly CoveProcess[],
  ownerIds: readonly string[],
): Promise<void> {
  if (site) await leakRecord.snapshotContainers('cove-process', site.dataDir);
  for (const cove of processes) await cove.stop('SIGKILL').catch(() => undefined);
  for (const ownerId of ownerIds) {
    const ids = await containersOf(ownerId).catch(() => []);
    if (ids.length > 0) await run(docker, ['rm', '-f', ...ids]).catch(() => undefined);
  }
  if (!site) return;
  const volumes = new LoopHomeVolumes({ root: join(site.dataDir, 'homes'), reserveBytes: 0 });
  for (const home of await volumes.list().catch(() => [])) await volumes.delete(home).catch(() => undefined);
  rmSync(site.dataDir, { recursive: true, force: true });
}
