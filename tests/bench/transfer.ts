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
import ts from 'typescript';
import WebSocket from 'ws';
import {
  isMultipartUpload,
  type CompleteUploadResponse,
  type DownloadResponse,
  type UploadResponse,
} from '../../server/protocol/files.js';

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
  };
  return {
    child,
    port: info.port,
    origin: info.origin,
    cookie: info.users[0]?.cookie ?? '',
    s3Credentials: info.s3Credentials,
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
  return (await response.json()) as T;
}

/**
 * The presigned requests go through node:http, the stack the baseline's S3 client uses: Node's
 * fetch (undici) moved a 200 MB body 2 to 3 times slower than node:http on this machine, which
 * measured the client instead of Cove.
 */
function request(url: string, method: 'PUT' | 'GET', body?: Buffer): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const call = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, {
      method,
      agent: false,
      headers: body ? { 'content-length': body.length } : {},
    });
    call.once('response', resolve);
    call.once('error', reject);
    call.end(body);
  });
}

async function put(url: string, body: Buffer): Promise<string> {
  const response = await request(url, 'PUT', body);
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

async function coveUpload(server: Server, name: string, file: Buffer): Promise<CompleteUploadResponse> {
  const t0 = now();
  const { uploads } = await api<UploadResponse>(server, '/uploads', {
    dir: '~',
    files: [{ name, size: file.length }],
  });
  const ticket = uploads[0];
  if (!ticket) throw new Error('no upload ticket');
  if (!isMultipartUpload(ticket)) {
    await put(ticket.url, file);
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
      const etag = await put(part.url, file.subarray(start, Math.min(file.length, start + ticket.partSize)));
      parts.push({ partNumber: part.partNumber, etag });
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
async function coveDownload(server: Server, path: string): Promise<{ url: string; bytes: number }> {
  const t0 = now();
  const { url } = await api<DownloadResponse>(server, '/downloads', { path });
  const t1 = now();
  const response = await request(url, 'GET');
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

export async function benchTransfers(runs: number): Promise<TransferRow[]> {
  console.log(`\nFile transfer (200 MB, runs=${runs})`);
  const file = randomBytes(fileBytes);
  const sha256 = createHash('sha256').update(file).digest('hex');
  // One name per run (3 × 200 MB fits the 1 GiB home): no replace, which needs room for two copies.
  const name = 'bench-200mb';
  const server = await startServer();
  const up: number[] = [];
  const down: number[] = [];
  const baseUp: number[] = [];
  const baseDown: number[] = [];
  let s3: { client: S3Client; bucket: string } | undefined;
  const baselineKey = `bench-baseline-${process.pid}`;
  let shell: WebSocket | undefined;
  try {
    // The environment (container and home) exists before anything is timed.
    const created = await fetch(`http://127.0.0.1:${server.port}/api/environments/${region}/terminals`, {
      method: 'POST',
      headers: { origin: server.origin, cookie: server.cookie, 'content-type': 'application/json' },
      body: '{}',
    });
    if (created.status !== 201) throw new Error(`terminal create: HTTP ${created.status}`);
    // The shell page stays open, as when a user uploads from it: with no attached terminal the
    // server stops the environment after its grace (30 s in the bench server), mid-transfer.
    const { terminalId } = (await created.json()) as { terminalId: string };
    shell = new WebSocket(
      `ws://127.0.0.1:${server.port}/api/environments/${region}/terminals/${terminalId}/ws`,
      { headers: { origin: server.origin, cookie: server.cookie } },
    );
    const opened = shell;
    await new Promise((resolve, reject) => {
      opened.once('open', resolve);
      opened.once('error', reject);
    });
    opened.on('message', () => undefined);
    opened.send(JSON.stringify({ type: 'hello', v: 1, cols: 120, rows: 40 }));

    for (let r = 0; r < runs; r++) {
      let t0 = now();
      const saved = await coveUpload(server, `${name}-${r}`, file);
      up.push(mbPerS(file.length, now() - t0));
      const upPhases = `PUTs ${(phases.firstMs / 1000).toFixed(1)} s + complete ${(phases.secondMs / 1000).toFixed(1)} s`;
      if (saved.sha256 !== sha256 || saved.size !== file.length) throw new Error('the uploaded file differs');

      t0 = now();
      const fetched = await coveDownload(server, `~/${name}-${r}`);
      down.push(mbPerS(fetched.bytes, now() - t0));
      const downPhases = `request ${(phases.firstMs / 1000).toFixed(1)} s + GET ${(phases.secondMs / 1000).toFixed(1)} s`;
      if (fetched.bytes !== file.length) throw new Error(`downloaded ${fetched.bytes} bytes`);

      s3 ??= s3From(fetched.url, server.s3Credentials);
      t0 = now();
      await s3.client.send(
        new PutObjectCommand({ Bucket: s3.bucket, Key: baselineKey, Body: file, ContentLength: file.length }),
      );
      baseUp.push(mbPerS(file.length, now() - t0));
      t0 = now();
      const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: baselineKey }));
      if (!object.Body) throw new Error('GetObject: no body');
      const bytes = await drain(object.Body as AsyncIterable<Uint8Array>);
      baseDown.push(mbPerS(bytes, now() - t0));
      console.log(
        `  run ${r + 1}: upload ${up.at(-1)?.toFixed(1)} MB/s (${upPhases}; S3 PUT ${baseUp.at(-1)?.toFixed(1)}), download ${down.at(-1)?.toFixed(1)} MB/s (${downPhases}; S3 GET ${baseDown.at(-1)?.toFixed(1)})`,
      );
    }
  } finally {
    shell?.close();
    await s3?.client
      .send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: baselineKey }))
      .catch(() => undefined);
    s3?.client.destroy();
    await stopServer(server);
  }
  const ratio = (a: number[], b: number[]) => `${Math.round((median(a) / median(b)) * 100)} % of baseline`;
  return [
    {
      name: 'upload 200 MB (presign → PUTs → in $HOME)',
      cove: fmt(up),
      baseline: `S3 PUT ${fmt(baseUp)}`,
      target: `≥ 70 % (${ratio(up, baseUp)})`,
    },
    {
      name: 'download 200 MB (request → GET)',
      cove: fmt(down),
      baseline: `S3 GET ${fmt(baseDown)}`,
      target: `≥ 70 % (${ratio(down, baseDown)})`,
    },
  ];
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
