/**
 * The embedded S3 (s3rver on loopback) that serves file transfer when no region configures S3, so
 * upload and download work out of the box on one machine. Objects live under `<dataDir>/s3`.
 * s3rver checks no V4 signature, so every request is checked (embedded-s3-signature.ts) before
 * s3rver sees it. s3rver has no AbortMultipartUpload or ListMultipartUploads either: the worker
 * answers AbortMultipartUpload itself, and this class removes abandoned multipart uploads from its
 * directory. It also refuses PUTs to closed uploads (`refusePuts`: their presigned URLs verify
 * until they expire) and reports each object served whole (`onFetched`), so a fetched download's
 * copy goes at once.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { readdir, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { EmbeddedS3Signature, type S3RequestHead, type SignatureVerdict } from './embedded-s3-signature.js';

/**
 * The secret is new in every process: it is in no file and no config, so only this server (and
 * the URLs it signs) can use the embedded S3. Upload records do not outlive a restart either.
 */
export const embeddedCredentials = {
  accessKeyId: 'S3RVER',
  secretAccessKey: randomBytes(30).toString('base64url'),
} as const;
export const embeddedBucket = 'cove-staging';
/** The SDK signs with a region; the signature check requires this one. */
export const embeddedRegion = 'us-east-1';

interface S3rverOptions {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  /** Path-style only: `<bucket>.localhost` names are of no use on loopback. */
  vhostBuckets: boolean;
  configureBuckets: { name: string; configs: string[] }[];
}

/**
 * s3rver runs in a worker thread: in the server's event loop, serving a 200 MB GetObject (and
 * hashing every byte it stores) took turns with piping the same bytes into the container. The
 * worker is plain JavaScript (an `eval` worker, CommonJS like s3rver), so it runs the same from
 * dist/ and from the sources.
 *
 * The worker owns the HTTP server and hands a request to s3rver only once the main thread has
 * checked its signature (the check is TypeScript, which an eval worker cannot load; it needs the
 * request line and headers only, so the bytes still never cross threads). Until the verdict the
 * body is not read; a refused large or chunked body is never read: the answer goes out with
 * `Connection: close`, and `Expect: 100-continue` clients are refused before they send it.
 */
const workerSource = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const S3rver = require(workerData.s3rverPath);
const s3rver = new S3rver(workerData.options);
const serve = s3rver.callback();

// s3rver writes a PUT straight over the object and stores whatever arrived when Node drops the
// rest of a body (a cut connection, bytes past Content-Length): an object or part is written to
// a temp file and renamed into place only once exactly its declared bytes are in.
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { pipeline, Transform } = require('node:stream');
const S3Error = require(path.join(path.dirname(workerData.s3rverPath), 'models', 'error'));
const store = s3rver.store;
const storeAnyObject = store.putObject.bind(store);
const storeAnyPart = store.putPart.bind(store);

function declaredLength(content) {
  if (!content || !content.headers || typeof content.pipe !== 'function') return undefined;
  const length = Number(content.headers['content-length']);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

async function writeWhole(content, target, expected) {
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  const temp = target + '.incoming-' + crypto.randomBytes(8).toString('hex');
  const md5 = crypto.createHash('md5');
  let size = 0;
  const count = new Transform({
    transform(chunk, encoding, callback) {
      md5.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  try {
    await new Promise((resolve, reject) =>
      pipeline(content, count, fs.createWriteStream(temp), (error) => (error ? reject(error) : resolve())),
    );
    if (size !== expected)
      throw new S3Error(
        'IncompleteBody',
        'You did not provide the number of bytes specified by the Content-Length HTTP header.',
      );
    await fs.promises.rename(temp, target);
  } catch (error) {
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
  return { size, md5: md5.digest('hex') };
}

store.putObject = async (object) => {
  const expected = declaredLength(object.content);
  if (expected === undefined) return storeAnyObject(object);
  const target = store.getResourcePath(object.bucket, object.key, 'object');
  const { size, md5 } = await writeWhole(object.content, target, expected);
  await store.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size, md5 };
};

// s3rver neither checks that the parts exist nor their ETags: a part that never arrived (refused,
// or cut) made its read stream throw outside any handler, and the worker died with every upload.
const storeAnyMultipart = store.putObjectMultipart.bind(store);
store.putObjectMultipart = async (bucket, uploadId, parts) => {
  const uploadDir = path.join(store.getResourcePath(bucket, undefined, 'uploads'), String(uploadId));
  if (!(await fs.promises.stat(path.join(uploadDir, 'key')).catch(() => undefined)))
    throw new S3Error('NoSuchUpload', 'The specified upload does not exist.');
  for (const part of parts) {
    const md5 = await fs.promises
      .readFile(path.join(uploadDir, String(part.number) + '.md5'), 'utf8')
      .catch(() => undefined);
    if (!Number.isSafeInteger(part.number) || md5 === undefined || md5 !== part.etag)
      throw new S3Error(
        'InvalidPart',
        'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part entity tag.',
      );
  }
  return storeAnyMultipart(bucket, uploadId, parts);
};

const uploadDirOf = (bucket, uploadId) =>
  path.join(store.getResourcePath(bucket, undefined, 'uploads'), String(uploadId));

store.putPart = async (bucket, uploadId, partNumber, content) => {
  // A part for an aborted upload must not bring its directory back.
  if (!(await fs.promises.stat(path.join(uploadDirOf(bucket, uploadId), 'key')).catch(() => undefined)))
    throw new S3Error('NoSuchUpload', 'The specified upload does not exist.');
  const expected = declaredLength(content);
  if (expected === undefined) return storeAnyPart(bucket, uploadId, partNumber, content);
  const target = path.join(uploadDirOf(bucket, uploadId), String(partNumber));
  const { size, md5 } = await writeWhole(content, target, expected);
  await fs.promises.writeFile(target + '.md5', md5);
  return { size, md5 };
};
const corsOrigins = new Set(workerData.corsOrigins);
const waiting = new Map();
let nextId = 0;

function verify(req) {
  const id = ++nextId;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    parentPort.postMessage({ verify: { id, method: req.method, url: req.url, headers: req.headers } });
  });
}

function escapeXml(text) {
  return String(text).replace(/[<>&'"]/g, (c) => '&#' + c.charCodeAt(0) + ';');
}

function refuse(req, res, verdict) {
  const body = '<?xml version="1.0" encoding="UTF-8"?>\\n<Error><Code>' + escapeXml(verdict.code) +
    '</Code><Message>' + escapeXml(verdict.message) + '</Message></Error>';
  const headers = { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) };
  // Without these a browser shows a refused PUT as a network error instead of the 403.
  const origin = req.headers.origin;
  if (origin && corsOrigins.has(origin)) {
    headers['access-control-allow-origin'] = origin;
    headers['vary'] = 'Origin';
  }
  // Node drains a small unread body to keep the connection; a large one must not be read at all.
  const length = Number(req.headers['content-length'] || 0);
  if (req.headers['transfer-encoding'] !== undefined || !(length <= 65536)) headers['connection'] = 'close';
  res.writeHead(verdict.status, headers);
  res.end(body);
}

// s3rver has no AbortMultipartUpload: an aborted upload's parts stayed on disk until the sweep.
async function abortUpload(req, res) {
  const url = new URL(req.url, 'http://s3');
  const uploadId = url.searchParams.get('uploadId');
  const [, bucket, ...key] = url.pathname.split('/');
  const noSuchUpload = () =>
    refuse(req, res, { status: 404, code: 'NoSuchUpload', message: 'The specified upload does not exist.' });
  if (!uploadId || !/^[A-Za-z0-9_-]+$/.test(uploadId) || !bucket || !/^[a-z0-9.-]+$/.test(bucket))
    return noSuchUpload();
  const dir = uploadDirOf(bucket, uploadId);
  const storedKey = await fs.promises.readFile(path.join(dir, 'key'), 'utf8').catch(() => undefined);
  let named;
  try {
    named = key.map(decodeURIComponent).join('/');
  } catch {
    return noSuchUpload();
  }
  if (storedKey === undefined || storedKey !== named) return noSuchUpload();
  await fs.promises.rm(dir, { recursive: true, force: true });
  res.writeHead(204);
  res.end();
}

async function handle(req, res, expectsContinue) {
  const verdict = req.method === 'OPTIONS' ? { ok: true } : await verify(req);
  if (!verdict.ok) return refuse(req, res, verdict);
  // A download's copy can go once it was served whole (Cove knows which keys are downloads).
  if (req.method === 'GET')
    res.on('finish', () => {
      if (res.statusCode === 200) parentPort.postMessage({ fetched: { url: req.url } });
    });
  if (req.method === 'DELETE' && /[?&]uploadId=/.test(req.url)) return abortUpload(req, res);
  if (expectsContinue) res.writeContinue();
  serve(req, res);
}

const httpServer = http.createServer();
httpServer.on('request', (req, res) => void handle(req, res, false));
httpServer.on('checkContinue', (req, res) => void handle(req, res, true));
httpServer.on('close', () => {
  s3rver.logger.exceptions.unhandle();
  s3rver.logger.close();
});
s3rver.httpServer = httpServer;
s3rver
  .configureBuckets()
  .then(
    () =>
      new Promise((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(workerData.options.port, workerData.options.address, () => resolve(httpServer.address()));
      }),
  )
  .then(
    (address) => parentPort.postMessage({ port: address.port }),
    (error) => parentPort.postMessage({ error: String((error && error.message) || error) }),
  );
parentPort.on('message', async (message) => {
  if (message && message.verdict) {
    const resolve = waiting.get(message.verdict.id);
    waiting.delete(message.verdict.id);
    if (resolve) resolve(message.verdict.result);
    return;
  }
  if (message !== 'stop') return;
  const closing = s3rver.close();
  httpServer.closeAllConnections();
  await closing.catch(() => undefined);
  parentPort.postMessage({ stopped: true });
});
`;

type WorkerMessage =
  | { port: number }
  | { error: string }
  | { stopped: true }
  | { verify: S3RequestHead & { id: number } }
  | { fetched: { url: string } };

/** The bucket and key a path-style request names, or undefined for anything else. */
export function objectOfRequest(url: string): { bucket: string; key: string } | undefined {
  const queryStart = url.indexOf('?');
  const path = queryStart === -1 ? url : url.slice(0, queryStart);
  const [empty, bucket, ...rest] = path.split('/');
  if (empty !== '' || !bucket || rest.length === 0) return undefined;
  try {
    return { bucket: decodeURIComponent(bucket), key: rest.map(decodeURIComponent).join('/') };
  } catch {
    return undefined;
  }
}

/** What an upload's URLs write: `<prefix>` of `<prefix>part-00001`, ... */
const folderOf = (key: string): string => key.slice(0, key.lastIndexOf('/') + 1);

const s3rverPath = createRequire(import.meta.url).resolve('s3rver');

/**
 * The CORS rule browsers need for presigned PUTs and GETs: ETag exposed, because a multipart
 * upload's page reads every part's ETag to complete it.
 */
export function corsRuleXml(origins: readonly string[]): string {
  const allowed = origins.map((o) => `<AllowedOrigin>${escapeXml(o)}</AllowedOrigin>`).join('');
  return (
    '<CORSConfiguration><CORSRule>' +
    allowed +
    '<AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>' +
    '<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds>' +
    '</CORSRule></CORSConfiguration>'
  );
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface EmbeddedS3Options {
  readonly directory: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly buckets: readonly string[];
  /** Origins allowed by the buckets' CORS rule (Cove's public origin). */
  readonly corsOrigins: readonly string[];
  /** The key every request must be signed with; `embeddedCredentials` unless a test picks another. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

export class EmbeddedS3 {
  /** `<bucket>/<key folder>` → epoch ms until which PUTs there are refused. */
  private readonly closed = new Map<string, number>();
  private readonly fetchedListeners = new Set<(bucket: string, key: string) => void>();

  private constructor(
    private readonly worker: Worker,
    readonly endpoint: string,
    readonly directory: string,
  ) {}

  /**
   * Refuses PUTs and POSTs to keys directly under `keyPrefix` (ending in `/`) for `forMs`: a
   * finished or cancelled upload, whose presigned URLs still verify until they expire.
   */
  refusePuts(bucket: string, keyPrefix: string, forMs: number): void {
    const now = Date.now();
    for (const [folder, until] of this.closed) if (until <= now) this.closed.delete(folder);
    this.closed.set(`${bucket}/${keyPrefix}`, now + forMs);
  }

  /** Called with each object served whole by a GET (status 200). */
  onFetched(listener: (bucket: string, key: string) => void): () => void {
    this.fetchedListeners.add(listener);
    return () => this.fetchedListeners.delete(listener);
  }

  /** Free bytes on the filesystem that holds the objects. */
  async freeBytes(): Promise<number> {
    const fs = await statfs(this.directory);
    return fs.bavail * fs.bsize;
  }

  /** The signature's verdict, or a refusal for a write into a closed upload. */
  private verdict(signature: EmbeddedS3Signature, request: S3RequestHead): SignatureVerdict {
    const verdict = signature.verify(request);
    if (!verdict.ok || (request.method !== 'PUT' && request.method !== 'POST')) return verdict;
    const object = objectOfRequest(request.url);
    const until = object && this.closed.get(`${object.bucket}/${folderOf(object.key)}`);
    if (until === undefined || until <= Date.now()) return verdict;
    return {
      ok: false,
      status: 403,
      code: 'AccessDenied',
      message: 'This upload is finished or cancelled; its URLs no longer take data. Start a new upload.',
    };
  }

  private fetched(url: string): void {
    const object = objectOfRequest(url);
    if (!object) return;
    for (const listener of this.fetchedListeners) listener(object.bucket, object.key);
  }

  static async start(options: EmbeddedS3Options): Promise<EmbeddedS3> {
    const s3rverOptions: S3rverOptions = {
      address: '127.0.0.1',
      port: options.port,
      directory: options.directory,
      silent: true,
      vhostBuckets: false,
      configureBuckets: options.buckets.map((name) => ({
        name,
        configs: [corsRuleXml(options.corsOrigins)],
      })),
    };
    const worker = new Worker(workerSource, {
      eval: true,
      workerData: { s3rverPath, options: s3rverOptions, corsOrigins: options.corsOrigins },
    });
    const signature = new EmbeddedS3Signature({
      credentials: options.credentials ?? embeddedCredentials,
      region: embeddedRegion,
    });
    // Set once the worker listens; the checks need its state.
    const ready: { s3?: EmbeddedS3 } = {};
    // Owned by the worker: gone when it exits.
    worker.on('message', (message: WorkerMessage) => {
      if ('fetched' in message) return ready.s3?.fetched(message.fetched.url);
      if (!('verify' in message)) return;
      const { id, ...request } = message.verify;
      const result: SignatureVerdict = ready.s3
        ? ready.s3.verdict(signature, request)
        : signature.verify(request);
      worker.postMessage({ verdict: { id, result } });
    });
    const port = await new Promise<number>((resolve, reject) => {
      const exited = (code: number): void => reject(new Error(`the embedded S3 exited (${code})`));
      const listening = (message: WorkerMessage): void => {
        if ('verify' in message || 'fetched' in message) return;
        worker.off('message', listening);
        worker.off('error', reject);
        worker.off('exit', exited);
        if ('port' in message) resolve(message.port);
        else reject(new Error('error' in message ? message.error : 'the embedded S3 did not start'));
      };
      worker.once('error', reject);
      worker.once('exit', exited);
      worker.on('message', listening);
    }).catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
    // Past the start its failures show as S3 calls that fail (503s); an error must not crash Cove.
    worker.on('error', () => undefined);
    ready.s3 = new EmbeddedS3(worker, `http://127.0.0.1:${port}`, options.directory);
    return ready.s3;
  }

  get port(): number {
    return Number(new URL(this.endpoint).port);
  }

  /** Stops listening; open transfers are cut (their staging objects are swept later). */
  async stop(): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      const done = (): void => resolve();
      this.worker.once('exit', done);
      this.worker.on('message', (message: WorkerMessage) => {
        if ('stopped' in message) done();
      });
    });
    this.worker.postMessage('stop');
    await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    await this.worker.terminate();
  }

  /** Removes multipart uploads started before `olderThanMs` (epoch ms); returns how many. */
  async sweepMultipartUploads(bucket: string, olderThanMs: number): Promise<number> {
    let removed = 0;
    let names: string[];
    try {
      names = await readdir(this.uploadsDir(bucket));
    } catch {
      return 0;
    }
    for (const name of names) {
      const dir = join(this.uploadsDir(bucket), name);
      const info = await stat(dir).catch(() => undefined);
      if (info && info.mtimeMs < olderThanMs) {
        await rm(dir, { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }

  private uploadsDir(bucket: string): string {
    return join(this.directory, bucket, '._S3rver_uploads');
  }
}
