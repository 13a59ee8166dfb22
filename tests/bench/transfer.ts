/**
 * File transfer benchmark, run by `npm run bench` after the terminal benchmarks (alone:
 * `npx tsc -b server && npx tsx tests/bench/transfer.ts`). A 200 MB file goes through Cove as the
 * shell page sends it (presign, PUTs of the parts 4 at a time, complete: until the file is in
 * `$HOME`) and back (download request, then a GET of the presigned URL), next to a plain S3 PUT
 * and GET of the same bytes against the same S3 as the baseline. Median of `runs` with min–max.
 * The server is a child process (bench-server.ts) with its defaults: the embedded S3 on loopback
 * and a real loop-mounted home.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import ts from 'typescript';
import WebSocket from 'ws';
import {
  isMultipartUpload,
  type CompleteUploadResponse,
  type DownloadResponse,
  type UploadResponse,
} from '../../server/protocol/files.js';
import { startPacedLink, type PacedLink } from './paced-link.js';

const region = 'us-east-1';
const fileBytes = 200 * 1e6;
const partConcurrency = 4;

export interface TransferRow {
  readonly name: string;
  readonly cove: string;
  readonly baseline: string;
  readonly target: string;
}

const now = () => performance.now();
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const fmt = (xs: number[]) =>
  `${median(xs).toFixed(1)} MB/s (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}, n=${xs.length})`;
const mbPerS = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

interface Server {
  readonly child: ChildProcess;
  readonly port: number;
  readonly origin: string;
  readonly cookie: string;
  /** The embedded S3's key (new in every server process), for the baseline's own client. */
  readonly s3Credentials: { accessKeyId: string; secretAccessKey: string };
  /** The embedded S3 (http://127.0.0.1:<port>), where the paced link leads. */
  readonly s3Endpoint: string;
}

/** bench-server.ts as plain JavaScript on the compiled server, as tests/bench/run.ts runs it. */
async function startServer(): Promise<Server> {
  const source = readFileSync(new URL('bench-server.ts', import.meta.url), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  const dir = mkdtempSync(join(tmpdir(), 'cove-bench-transfer-'));
  const script = join(dir, 'bench-server.mjs');
  writeFileSync(script, outputText);
  const dist = new URL('../../dist/server/', import.meta.url).href;
  const child = spawn(process.execPath, [script, '1', String(15 * 60_000), dist], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.on('line', (text) => {
      if (text.startsWith('{"port"')) resolve(text);
      else process.stderr.write(`server: ${text}\n`);
    });
    child.once('exit', (code) => reject(new Error(`bench server exited (${code})`)));
  });
  const info = JSON.parse(line) as {
    port: number;
    origin: string;
    users: { cookie: string }[];
    s3Credentials: Server['s3Credentials'];
    s3Endpoint: string;
  };
  return {
    child,
    port: info.port,
    origin: info.origin,
    cookie: info.users[0]?.cookie ?? '',
    s3Credentials: info.s3Credentials,
    s3Endpoint: info.s3Endpoint,
  };
}

async function stopServer(server: Server): Promise<void> {
  server.child.stdin?.end();
  await new Promise((resolve) => {
    if (server.child.exitCode !== null) resolve(undefined);
    server.child.once('exit', resolve);
    setTimeout(resolve, 20_000).unref();
  });
}

/** A Cove API call as the page makes it (session cookie, the Cove Origin, a JSON body). */
async function api<T>(server: Server, path: string, body: unknown): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${server.port}/api/environments/${region}${path}`, {
    method: 'POST',
    headers: { origin: server.origin, cookie: server.cookie, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return (response.status === 204 ? undefined : await response.json()) as T;
}

/**
 * The presigned requests go through node:http, the stack the baseline's S3 client uses: Node's
 * fetch (undici) moved a 200 MB body 2 to 3 times slower than node:http on this machine, which
 * measured the client instead of Cove.
 */
function request(
  url: string,
  method: 'PUT' | 'GET',
  body?: Buffer,
  link?: PacedLink,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    // Through the link: connect to its port, keep the Host header the URL was signed for.
    const call = (target.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method,
      agent: false,
      ...(link && { host: '127.0.0.1', port: link.port }),
      headers: { host: target.host, ...(body ? { 'content-length': body.length } : {}) },
    });
    call.once('response', resolve);
    call.once('error', reject);
    call.end(body);
  });
}

async function put(url: string, body: Buffer, link?: PacedLink): Promise<string> {
  const response = await request(url, 'PUT', body, link);
  const text = await drainText(response);
  if (response.statusCode !== 200) throw new Error(`PUT: HTTP ${response.statusCode} ${text}`);
  return String(response.headers.etag ?? '');
}

async function drainText(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a body to its end, keeping only the count (a 200 MB download is not held in memory). */
async function drain(body: AsyncIterable<Uint8Array>): Promise<number> {
  let bytes = 0;
  for await (const chunk of body) bytes += chunk.byteLength;
  return bytes;
}

/** Presign → PUT(s), 4 parts at a time → complete (returns once the file is in `$HOME`). */
/** Where the last transfer's time went, for the per-run line: the PUTs (or request) vs the rest. */
const phases = { firstMs: 0, secondMs: 0 };

async function coveUpload(
  server: Server,
  name: string,
  file: Buffer,
  link: PacedLink | undefined,
): Promise<CompleteUploadResponse> {
  const t0 = now();
  const { uploads } = await api<UploadResponse>(server, '/uploads', {
    dir: '~',
    files: [{ name, size: file.length }],
    onConflict: 'replace',
  });
  const ticket = uploads[0];
  if (!ticket) throw new Error('no upload ticket');
  if (!isMultipartUpload(ticket)) {
    await put(ticket.url, file, link);
    const t1 = now();
    const done = await api<CompleteUploadResponse>(server, `/uploads/${ticket.id}/complete`, {});
    Object.assign(phases, { firstMs: t1 - t0, secondMs: now() - t1 });
    return done;
  }
  const queue = [...ticket.parts];
  const parts: { partNumber: number; etag: string }[] = [];
  const worker = async () => {
    for (let part = queue.shift(); part; part = queue.shift()) {
      const start = (part.partNumber - 1) * ticket.partSize;
      const etag = await put(
        part.url,
        file.subarray(start, Math.min(file.length, start + ticket.partSize)),
        link,
      );
      parts.push({ partNumber: part.partNumber, etag });
      // As the page does: the server starts writing into $HOME while the other parts are sent.
      void api(server, `/uploads/${ticket.id}/parts/${part.partNumber}`, { etag }).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: partConcurrency }, worker));
  parts.sort((a, b) => a.partNumber - b.partNumber);
  const t1 = now();
  const done = await api<CompleteUploadResponse>(server, `/uploads/${ticket.id}/complete`, { parts });
  Object.assign(phases, { firstMs: t1 - t0, secondMs: now() - t1 });
  return done;
}

/** Download request (the server copies the file out of the home into S3), then the GET. */
async function coveDownload(
  server: Server,
  path: string,
  link: PacedLink | undefined,
): Promise<{ url: string; bytes: number }> {
  const t0 = now();
  const { url } = await api<DownloadResponse>(server, '/downloads', { path });
  const t1 = now();
  const response = await request(url, 'GET', undefined, link);
  if (response.statusCode !== 200) throw new Error(`GET: HTTP ${response.statusCode}`);
  const bytes = await drain(response);
  Object.assign(phases, { firstMs: t1 - t0, secondMs: now() - t1 });
  return { url, bytes };
}

/** The S3 behind Cove's URLs (path style: /bucket/key), for the baseline. */
function s3From(url: string, credentials: Server['s3Credentials']): { client: S3Client; bucket: string } {
  const parsed = new URL(url);
  const bucket = decodeURIComponent(parsed.pathname.split('/')[1] ?? '');
  const client = new S3Client({
    endpoint: parsed.origin,
    region,
    forcePathStyle: true,
    // The SDK's default checksums corrupt s3rver's objects.
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return { client, bucket };
}

/**
 * The links the "browser" reaches S3 through: none (loopback: S3 on the same two cores as Cove, the
 * container and the client), then a 100 MB/s (800 Mbit/s) link, as a user on a fast office line.
 */
const links: readonly { name: string; bytesPerS?: number }[] = [
  { name: 'loopback' },
  { name: '100 MB/s link', bytesPerS: 100e6 },
];

interface Series {
  readonly up: number[];
  readonly down: number[];
  readonly baseUp: number[];
  readonly baseDown: number[];
}

/** Opens a terminal and keeps its socket open, as the shell page does during a transfer. */
async function openShell(server: Server): Promise<WebSocket> {
  // The environment (container and home) exists before anything is timed.
  const created = await fetch(`http://127.0.0.1:${server.port}/api/environments/${region}/terminals`, {
    method: 'POST',
    headers: { origin: server.origin, cookie: server.cookie, 'content-type': 'application/json' },
    body: '{}',
  });
  if (created.status !== 201) throw new Error(`terminal create: HTTP ${created.status}`);
  // With no attached terminal the server stops the environment after its grace (30 s in the
  // bench server), mid-transfer.
  const { terminalId } = (await created.json()) as { terminalId: string };
  const shell = new WebSocket(
    `ws://127.0.0.1:${server.port}/api/environments/${region}/terminals/${terminalId}/ws`,
    { headers: { origin: server.origin, cookie: server.cookie } },
  );
  await new Promise((resolve, reject) => {
    shell.once('open', resolve);
    shell.once('error', reject);
  });
  shell.on('message', () => undefined);
  shell.send(JSON.stringify({ type: 'hello', v: 1, cols: 120, rows: 40 }));
  return shell;
}

export async function benchTransfers(runs: number): Promise<TransferRow[]> {
  console.log(`\nFile transfer (200 MB, runs=${runs})`);
  const file = randomBytes(fileBytes);
  const sha256 = createHash('sha256').update(file).digest('hex');
  const server = await startServer();
  const results = new Map<string, Series>();
  let s3: { client: S3Client; bucket: string } | undefined;
  const baselineKey = `bench-baseline-${process.pid}`;
  let shell: WebSocket | undefined;
  let link: PacedLink | undefined;
  try {
    shell = await openShell(server);
    for (const { name: linkName, bytesPerS } of links) {
      const series: Series = { up: [], down: [], baseUp: [], baseDown: [] };
      results.set(linkName, series);
      console.log(`  ${linkName}:`);
      // One file per link, replaced by each run: the 1 GiB home holds it, the next and the temp file.
      const name = `bench-200mb-${linkName.replace(/\W+/g, '-')}`;
      for (let r = 0; r < runs; r++) {
        if (bytesPerS !== undefined) {
          // A fresh link per run: no debt carried over from the last one.
          await link?.close();
          link = await startPacedLink(Number(new URL(server.s3Endpoint).port), bytesPerS);
        }
        let t0 = now();
        const saved = await coveUpload(server, name, file, link);
        series.up.push(mbPerS(file.length, now() - t0));
        const upPhases = `PUTs ${(phases.firstMs / 1000).toFixed(1)} s + complete ${(phases.secondMs / 1000).toFixed(1)} s`;
        if (saved.sha256 !== sha256 || saved.size !== file.length)
          throw new Error('the uploaded file differs');

        t0 = now();
        const fetched = await coveDownload(server, `~/${name}`, link);
        series.down.push(mbPerS(fetched.bytes, now() - t0));
        const downPhases = `request ${(phases.firstMs / 1000).toFixed(1)} s + GET ${(phases.secondMs / 1000).toFixed(1)} s`;
        if (fetched.bytes !== file.length) throw new Error(`downloaded ${fetched.bytes} bytes`);

        s3 ??= s3From(fetched.url, server.s3Credentials);
        const bucket = s3;
        // The baseline goes the way the browser's bytes go: presigned URLs, node:http, the same link.
        const putUrl = await getSignedUrl(
          bucket.client,
          new PutObjectCommand({ Bucket: bucket.bucket, Key: baselineKey, ContentLength: file.length }),
          { expiresIn: 600 },
        );
        t0 = now();
        await put(putUrl, file, link);
        series.baseUp.push(mbPerS(file.length, now() - t0));
        const getUrl = await getSignedUrl(
          bucket.client,
          new GetObjectCommand({ Bucket: bucket.bucket, Key: baselineKey }),
          { expiresIn: 600 },
        );
        t0 = now();
        const object = await request(getUrl, 'GET', undefined, link);
        if (object.statusCode !== 200) throw new Error(`baseline GET: HTTP ${object.statusCode}`);
        const bytes = await drain(object);
        series.baseDown.push(mbPerS(bytes, now() - t0));
        console.log(
          `    run ${r + 1}: upload ${series.up.at(-1)?.toFixed(1)} MB/s (${upPhases}; S3 PUT ${series.baseUp.at(-1)?.toFixed(1)}), download ${series.down.at(-1)?.toFixed(1)} MB/s (${downPhases}; S3 GET ${series.baseDown.at(-1)?.toFixed(1)})`,
        );
      }
    }
  } finally {
    shell?.close();
    await link?.close();
    await s3?.client
      .send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: baselineKey }))
      .catch(() => undefined);
    s3?.client.destroy();
    await stopServer(server);
  }
  const ratio = (a: number[], b: number[]) => `${Math.round((median(a) / median(b)) * 100)} % of baseline`;
  return [...results].flatMap(([linkName, series]) => [
    {
      name: `upload 200 MB, ${linkName} (presign → PUTs → in $HOME)`,
      cove: fmt(series.up),
      baseline: `S3 PUT ${fmt(series.baseUp)}`,
      target: `≥ 70 % (${ratio(series.up, series.baseUp)})`,
    },
    {
      name: `download 200 MB, ${linkName} (request → GET)`,
      cove: fmt(series.down),
      baseline: `S3 GET ${fmt(series.baseDown)}`,
      target: `≥ 70 % (${ratio(series.down, series.baseDown)})`,
    },
  ]);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchTransfers(Number(process.env.BENCH_RUNS ?? 3)).then(
    (rows) => {
      console.table(rows);
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
