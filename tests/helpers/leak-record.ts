/**
 * What the whole test run saw, for the one R02 sweep that runs after every other group
 * (tests/sweep/leak-sweep.test.ts). The harnesses (createTestApp, startCove, CoveProcess, the
 * local STS) append here: every secret that went out (AWS keys the local STS issued, session
 * cookies, TOTP secrets, presigned signatures and tokens seen in responses), every line the
 * servers logged, every HTTP error body (status >= 400) a client received, and, when a harness
 * closes, `docker inspect` of its containers and execs plus the small files in their homes (the
 * tests remove those right after). The sweep then greps all of it for the secrets and for the
 * patterns that must never show.
 *
 * The run directory comes from tests/setup/leak-record-dir.ts (vitest globalSetup) through
 * TEST_LEAK_RECORD_DIR; without it (bench, a script) every call here does nothing. Writes are
 * synchronous appends, so a worker killed mid-test keeps what it wrote.
 */
import { mkdirSync, openSync, readdirSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';

export const LEAK_RECORD_ENV = 'TEST_LEAK_RECORD_DIR';

export type SecretKind =
  | 'aws-access-key-id'
  | 'aws-secret-access-key'
  | 'aws-session-token'
  | 'session-cookie'
  | 'totp-secret'
  | 'presigned-signature'
  | 'presigned-security-token'
  | 'scim-token';

/** Sub-directories of the run directory. */
export const RECORD_DIRS = {
  secrets: 'secrets',
  logs: 'logs',
  bodies: 'bodies',
  snapshots: 'snapshots',
  /** Data dirs of the harnesses that closed, one a line: whose containers belong to this run. */
  dataDirs: 'data-dirs',
} as const;

/** Shorter values would match by chance (a forged `cove_session=x` in an attack test, say). */
const MIN_SECRET_LENGTH = 12;
const MAX_SCANNED_PAYLOAD = 1024 * 1024;
const DOCKER_SOCKET = '/var/run/docker.sock';
const DOCKER_TIMEOUT_MS = 5000;
/** The home dump of one container: bounded, since some tests fill a home on purpose. */
const HOME_DUMP =
  'find "$HOME" -xdev -type f -size -256k -print0 2>/dev/null | head -z -n 2000 | ' +
  'xargs -0 -r cat 2>/dev/null | head -c 8388608; true';

const runDir = (): string | undefined => process.env[LEAK_RECORD_ENV] || undefined;

const files = new Map<string, number>();
const seenSecrets = new Set<string>();
let sequence = 0;

function append(path: string, text: string): void {
  let fd = files.get(path);
  if (fd === undefined) {
    fd = openSync(path, 'a', 0o600);
    files.set(path, fd);
  }
  writeSync(fd, text);
}

function fileIn(dir: keyof typeof RECORD_DIRS, name: string): string | undefined {
  const root = runDir();
  if (!root) return undefined;
  const path = join(root, RECORD_DIRS[dir]);
  mkdirSync(path, { recursive: true, mode: 0o700 });
  return join(path, name);
}

/** File-name-safe label: `<pid>-<n>-<source>` keeps every harness instance apart. */
function label(source: string): string {
  return `${process.pid}-${++sequence}-${source.replace(/[^\w.-]+/g, '_').slice(0, 60)}`;
}

function recordSecret(kind: SecretKind, value: string | undefined): void {
  if (!value || value.length < MIN_SECRET_LENGTH || seenSecrets.has(value) || /[\t\n]/.test(value)) return;
  const path = fileIn('secrets', `${process.pid}.tsv`);
  if (!path) return;
  seenSecrets.add(value);
  append(path, `${kind}\t${value}\n`);
}

/** A sink for one harness instance's log lines (kept in the order written). */
function logSink(source: string): (text: string) => void {
  const path = fileIn('logs', `${label(source)}.log`);
  if (!path) return () => undefined;
  return (text) => append(path, text.endsWith('\n') ? text : `${text}\n`);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Secrets that travel in response bodies and headers, picked out so the sweep knows them. */
function secretsInText(text: string): void {
  // Before the generic "secret" field below: the admin API answers a new SCIM token as `secret`.
  for (const m of text.matchAll(/cove_scim_[A-Za-z0-9_-]{43}/g)) recordSecret('scim-token', m[0]);
  for (const m of text.matchAll(/otpauth:\/\/[^"\s]*?[?&]secret=([A-Z2-7]+)/g))
    recordSecret('totp-secret', m[1]);
  for (const m of text.matchAll(/X-Amz-Signature=([0-9a-f]{64})/g)) recordSecret('presigned-signature', m[1]);
  for (const m of text.matchAll(/X-Amz-Security-Token=([^&"\s]+)/g)) {
    // As it travels in the URL, and as a log would show it once decoded.
    recordSecret('presigned-security-token', m[1]);
    recordSecret('presigned-security-token', safeDecode(m[1] ?? ''));
  }
  for (const m of text.matchAll(
    /"(accessKeyId|AccessKeyId|secretAccessKey|SecretAccessKey|sessionToken|SessionToken|Token|secret)"\s*:\s*"([^"]+)"/g,
  )) {
    const field = (m[1] ?? '').toLowerCase();
    const kind: SecretKind =
      field === 'accesskeyid'
        ? 'aws-access-key-id'
        : field === 'secretaccesskey'
          ? 'aws-secret-access-key'
          : field === 'secret'
            ? 'totp-secret'
            : 'aws-session-token';
    recordSecret(kind, m[2]);
  }
}

function cookieValues(header: string | string[] | number | undefined): string[] {
  const lines = Array.isArray(header) ? header : typeof header === 'string' ? [header] : [];
  return lines.flatMap((line) =>
    line.split(/;\s*/).flatMap((pair) => {
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      return at > 0 && /session/i.test(name) ? [pair.slice(at + 1)] : [];
    }),
  );
}

/**
 * Hooks on a test server: session cookies it set or was sent, secrets in its answers, and every
 * error body it sent (with the route's pattern, never the URL a test may have stuffed with a
 * secret on purpose).
 */
function watchApp(app: FastifyInstance, source: string): void {
  const bodies = fileIn('bodies', `${label(source)}.jsonl`);
  if (!bodies) return;
  app.addHook('onRequest', async (req) => {
    for (const value of cookieValues(req.headers.cookie)) recordSecret('session-cookie', value);
  });
  app.addHook('onSend', async (req, reply, payload) => {
    for (const value of cookieValues(reply.getHeader('set-cookie'))) recordSecret('session-cookie', value);
    const text =
      typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : undefined;
    if (text === undefined || text.length > MAX_SCANNED_PAYLOAD) return payload;
    secretsInText(text);
    if (reply.statusCode >= 400) {
      const route = req.routeOptions.url ?? '(no route)';
      append(
        bodies,
        `${JSON.stringify({ status: reply.statusCode, method: req.method, route, body: text })}\n`,
      );
    }
    return payload;
  });
}

/** Error bodies a test client received from a server it has no hooks in (a Cove process). */
function errorBody(source: string, status: number, method: string, route: string, body: string): void {
  if (status < 400) return;
  const path = fileIn('bodies', `${process.pid}-clients.jsonl`);
  if (path) append(path, `${JSON.stringify({ status, method, route, body, source })}\n`);
}

function docker(
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: DOCKER_SOCKET,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json' } : {},
        timeout: DOCKER_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('latin1') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('docker timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Runs a command in a running container as the environment user; its output (TTY, raw). */
async function dockerExec(containerId: string, cmd: string[]): Promise<string> {
  const created = await docker('POST', `/containers/${containerId}/exec`, {
    Cmd: cmd,
    User: '1000:1000',
    AttachStdout: true,
    AttachStderr: true,
    Tty: true,
  });
  if (created.status !== 201) return '';
  const { Id } = JSON.parse(created.text) as { Id: string };
  return (await docker('POST', `/exec/${Id}/start`, { Detach: false, Tty: true })).text;
}

interface ListedContainer {
  Id: string;
  State: string;
  Mounts?: { Source?: string }[];
}

/**
 * Environment containers mount a credentials directory or a home from the data dir; a harness
 * that made neither (most of them: fake drivers, no shells) has no container to look at, and its
 * close skips the Docker round trip.
 */
function mountsSomething(dataDir: string): boolean {
  const entries = (dir: string) => {
    try {
      return readdirSync(join(dataDir, dir)).length;
    } catch {
      return 0;
    }
  };
  return entries('run/credentials') + entries('homes/mnt') > 0;
}

const mountsFrom = (container: ListedContainer, dirs: readonly string[]): boolean =>
  (container.Mounts ?? []).some((m) => dirs.some((dir) => m.Source?.startsWith(`${dir}/`)));

/**
 * Snapshots the Cove containers whose mounts come from `dataDir` (this harness's): their
 * inspect, their execs' inspect, and the small files in their homes. Best effort and quiet:
 * an engine that is down (fault tests) leaves nothing to snapshot.
 */
async function snapshotContainers(source: string, dataDir: string): Promise<void> {
  const dirs = fileIn('dataDirs', `${process.pid}.txt`);
  if (!dirs || !mountsSomething(dataDir)) return;
  append(dirs, `${dataDir}\n`);
  await snapshot(
    source,
    (c) => mountsFrom(c, [dataDir]),
    () => true,
  );
}

/**
 * Snapshots every Cove container still present (any run's: inspect only), reading the homes of
 * those that came from this run's harnesses (`dataDirs`); other runs' shells are not ours to exec in.
 */
async function snapshotAllContainers(source: string, dataDirs: readonly string[]): Promise<number> {
  return snapshot(
    source,
    () => true,
    (c) => mountsFrom(c, dataDirs),
  );
}

async function snapshot(
  source: string,
  select: (container: ListedContainer) => boolean,
  readHome: (container: ListedContainer) => boolean,
): Promise<number> {
  if (!runDir()) return 0;
  const started = performance.now();
  try {
    const filters = encodeURIComponent(JSON.stringify({ label: ['cove.managed'] }));
    const listed = await docker('GET', `/containers/json?all=1&filters=${filters}`);
    if (listed.status !== 200) return 0;
    const mine = (JSON.parse(listed.text) as ListedContainer[]).filter(select);
    if (mine.length === 0) return 0;
    const path = fileIn('snapshots', `${label(source)}.txt`);
    if (!path) return 0;
    await Promise.all(
      mine.map(async (container) => {
        const inspect = await docker('GET', `/containers/${container.Id}/json`);
        let text = `== container ${container.Id}\n${inspect.text}\n`;
        const execIds = (JSON.parse(inspect.text) as { ExecIDs?: string[] | null }).ExecIDs ?? [];
        for (const execId of execIds) {
          const exec = await docker('GET', `/exec/${execId}/json`);
          if (exec.status === 200) text += `== exec ${execId}\n${exec.text}\n`;
        }
        if (container.State === 'running' && readHome(container))
          text += `== home ${container.Id}\n${await dockerExec(container.Id, ['sh', '-c', HOME_DUMP])}\n`;
        append(path, text);
      }),
    );
    // What the snapshots add to the suite (the sweep prints the sum).
    append(path, `== snapshot took ${Math.round(performance.now() - started)} ms\n`);
    return mine.length;
  } catch {
    // Snapshots are evidence for the sweep, not part of the test that closes the harness.
    return 0;
  }
}

export const leakRecord = {
  dir: runDir,
  secret: recordSecret,
  secretsInText,
  logSink,
  watchApp,
  errorBody,
  snapshotContainers,
  snapshotAllContainers,
};
