/**
 * The egress firewall for a Cove that lives in a container (the docker-compose deployment). Such a
 * server sits in its own network namespace: `iptables` there neither sees nor changes the host's
 * rules, which are the ones between environments and the network. So a small helper runs on the
 * host's network with CAP_NET_ADMIN, and the server asks it, over a unix socket in a volume only
 * the two share, to install and check the rules (`HelperEgressPolicy`, an `EgressPolicy` like the
 * local one, so the guard's enforce/warn logic is the same either way).
 *
 * The server stays the one source of the regions and their exceptions: each request names them.
 * The helper adds what only the host knows (its name servers, whether it has IPv6), so the rules
 * are exactly those a server on the host would install. The server is as trusted as the host
 * already (it holds the Docker socket); the socket is not reachable from environments.
 *
 *   POST /v1/check    {"regions":[{"id":"us-east-1","allow":[]}]}  → 200 {"problems":[...]}
 *   POST /v1/install  (same body)                                  → 200 {"problems":[...]} | 500 {"error":"..."}
 */
import { chmod, rm } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { normalizeCidr, type EgressPolicy, type EgressPolicyInput } from './egress-policy.js';

export type HelperRegions = EgressPolicyInput['regions'];

/** Where docker-compose.yml puts the helper's socket (a volume shared with the server only). */
export const DEFAULT_HELPER_SOCKET = '/run/cove-egress/egress.sock';

const REGION_ID = /^[a-z]{2}(-[a-z]+)+-\d$/;
const MAX_BODY_BYTES = 64 * 1024;
const MAX_REGIONS = 200;
const MAX_ALLOW = 256;

export interface EgressHelperOptions {
  readonly socketPath: string;
  /** The host-side firewall for the server's regions (IptablesEgressPolicy with this host's facts). */
  readonly policyFor: (regions: HelperRegions) => EgressPolicy;
  readonly log?: (event: string, details: Record<string, unknown>) => void;
}

/** The body's regions, or why they are refused (the same shape rules as the config's). */
export function parseHelperRequest(body: unknown): HelperRegions | string {
  const regions = (body as { regions?: unknown } | null)?.regions;
  if (!Array.isArray(regions) || regions.length > MAX_REGIONS) return 'regions must be a list';
  const parsed: { id: string; allow: string[] }[] = [];
  for (const region of regions as unknown[]) {
    const { id, allow } = (region ?? {}) as { id?: unknown; allow?: unknown };
    if (typeof id !== 'string' || !REGION_ID.test(id)) return `not a region id: ${String(id).slice(0, 60)}`;
    if (!Array.isArray(allow) || allow.length > MAX_ALLOW) return `region ${id}: allow must be a list`;
    const cidrs: string[] = [];
    for (const cidr of allow as unknown[]) {
      try {
        cidrs.push(normalizeCidr(String(cidr)));
      } catch {
        return `region ${id}: not an IPv4 CIDR: ${String(cidr).slice(0, 60)}`;
      }
    }
    parsed.push({ id, allow: cidrs });
  }
  return parsed;
}

/**
 * Serves the helper's two calls on `socketPath` (a stale socket file from a previous run is
 * replaced; the new one is root-only). Calls run one at a time: two restores racing would each
 * count the other's jumps wrong.
 */
export async function serveEgressHelper(options: EgressHelperOptions): Promise<Server> {
  const log = options.log ?? (() => {});
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log('request failed', { error: (error as Error).message });
      if (!res.headersSent) send(res, 500, { error: (error as Error).message });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const action = req.method === 'POST' ? /^\/v1\/(check|install)$/.exec(req.url ?? '')?.[1] : undefined;
    if (!action) {
      send(res, 404, { error: 'POST /v1/check or /v1/install' });
      req.resume();
      return;
    }
    const text = await readBody(req);
    if (text === undefined) {
      send(res, 413, { error: `the body is over ${MAX_BODY_BYTES} bytes` });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      send(res, 400, { error: 'the body is not JSON' });
      return;
    }
    const regions = parseHelperRequest(body);
    if (typeof regions === 'string') {
      send(res, 400, { error: regions });
      return;
    }
    const policy = options.policyFor(regions);
    if (action === 'install') {
      try {
        await serialized(() => policy.install());
      } catch (error) {
        log('install failed', { error: (error as Error).message });
        send(res, 500, { error: (error as Error).message });
        return;
      }
    }
    const problems = await serialized(() => policy.check());
    if (action === 'install' || problems.length > 0) log(action, { regions: regions.length, problems });
    send(res, 200, { problems });
  }

  await rm(options.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(options.socketPath, 0o600);
  return server;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** The whole body, or undefined when it is over the limit. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The server's side: the host's firewall through the helper. A helper that does not answer is an
 * error (the guard reports it as a firewall it cannot read, and in enforce mode refuses to start
 * environments), never "no problems".
 */
export class HelperEgressPolicy implements EgressPolicy {
  constructor(
    private readonly socketPath: string,
    private readonly regions: HelperRegions,
    private readonly timeoutMs = 20_000,
  ) {}

  async install(): Promise<void> {
    const problems = await this.call('install');
    if (problems.length > 0) throw new Error(`rules still missing after install: ${problems.join('; ')}`);
  }

  check(): Promise<string[]> {
    return this.call('check');
  }

  private call(action: 'check' | 'install'): Promise<string[]> {
    const payload = JSON.stringify({ regions: this.regions });
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          path: `/v1/${action}`,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            let body: { problems?: unknown; error?: unknown } = {};
            try {
              body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
            } catch {
              // handled below: no problems list is an error
            }
            if (res.statusCode === 200 && Array.isArray(body.problems)) {
              resolve(body.problems.map(String));
            } else {
              reject(
                new Error(
                  `Cove's firewall helper answered ${res.statusCode ?? '?'} to ${action}: ${typeof body.error === 'string' ? body.error : 'no problems list'}`,
                ),
              );
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (error: NodeJS.ErrnoException) => {
        reject(
          new Error(
            `Cove's firewall helper does not answer on ${this.socketPath} (${error.code ?? error.message}); is the egress service of docker-compose.yml running?`,
          ),
        );
      });
      req.end(payload);
    });
  }
}
