/**
 * Stops and starts the machine's Docker engine for fault tests. Stopping sends SIGTERM to the pid
 * in /var/run/docker.pid and waits for the process to be gone (live-restore keeps containers);
 * starting runs scripts/ensure-docker.sh, the one way Cove's set-up starts dockerd, in a session
 * of its own so the engine does not belong to the test's process group.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { docker } from '../helpers/cove-process.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ensureScript = resolve(import.meta.dirname, '../../scripts/ensure-docker.sh');

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export async function engineUp(): Promise<boolean> {
  return run(docker, ['info', '--format', '{{.ServerVersion}}'], { timeout: 10_000 }).then(
    () => true,
    () => false,
  );
}

/** SIGTERM to dockerd, then waits until the process has exited. */
export async function stopEngine(timeoutMs = 60_000): Promise<void> {
  const pid = Number(readFileSync('/var/run/docker.pid', 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error('no dockerd pid in /var/run/docker.pid');
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`dockerd (pid ${pid}) did not exit after SIGTERM`);
    await sleep(100);
  }
}

/** Starts dockerd the way scripts/ensure-docker.sh does and waits until `docker info` answers. */
export async function startEngine(timeoutMs = 90_000): Promise<void> {
  const child = spawn('bash', [ensureScript], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  if (code !== 0) throw new Error(`ensure-docker.sh failed (${code}): ${stderr}`);
  const deadline = Date.now() + timeoutMs;
  while (!(await engineUp())) {
    if (Date.now() > deadline) throw new Error('the Docker engine did not come back');
    await sleep(250);
  }
}

/** For afterAll/finally: the engine runs again whatever happened. */
export async function ensureEngine(): Promise<void> {
  if (!(await engineUp())) await startEngine();
}
