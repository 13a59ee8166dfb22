/**
 * SECURITY-TESTS I06, H03, H04 against the embedded S3 (s3rver behind Cove's SigV4 check) on
 * loopback, with URLs from the real AWS SDK presigner signed the way Cove signs them: a tampered,
 * re-purposed, expired, unsigned or foreign-signed request gets S3's 403 and touches no object,
 * a PUT of another length than signed is refused, and a 900 MB over-send is refused before its
 * body is read.
 */
import { readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Upload } from '@aws-sdk/lib-storage';
import { embeddedCredentials, embeddedRegion } from '../../server/files/embedded-s3.js';
import { createS3Client, presignPartPut } from '../../server/files/s3-file-transfer.js';
import { expectOverSendsRefused } from '../helpers/over-send.js';
import { TestS3, testBucket } from '../helpers/s3.js';

const origin = 'http://127.0.0.1:8080';
const run = `${process.pid}-${Date.now()}`;
const keyA = `staging/alice-${run}/upload-1`;
const keyB = `staging/bob-${run}/upload-1`;
const bobsBytes = Buffer.from('bob: the file that must stay as it is\n');
const MB = 1024 * 1024;

let s3: TestS3;
/** A client like Cove's, but with a secret the embedded S3 does not know. */
let stranger: S3Client;

beforeAll(async () => {
  s3 = await TestS3.start([origin]);
  stranger = createS3Client({
    region: embeddedRegion,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: embeddedCredentials.accessKeyId, secretAccessKey: 'not-the-secret' },
    timeoutMs: 5000,
  });
  await s3.client.send(new PutObjectCommand({ Bucket: testBucket, Key: keyB, Body: bobsBytes }));
});

afterAll(async () => {
  stranger?.destroy();
  await s3?.destroy();
});

/** A presigned PUT made by Cove's own presigning (the one the page gets): Content-Length signed. */
function presignPut(key: string, size: number, options: { expiresIn?: number; signingDate?: Date } = {}) {
  return presignPartPut(s3.client, testBucket, key, size, options.expiresIn ?? 900, options.signingDate);
}

function presignGet(key: string, client: S3Client = s3.client) {
  return getSignedUrl(client, new GetObjectCommand({ Bucket: testBucket, Key: key }), { expiresIn: 900 });
}

async function objectBytes(key: string): Promise<Buffer | undefined> {
  try {
    const object = await s3.client.send(new GetObjectCommand({ Bucket: testBucket, Key: key }));
    return Buffer.from((await object.Body?.transformToByteArray()) ?? []);
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
    throw error;
  }
}

/** S3's XML error code from a refused request. */
async function errorCode(response: Response): Promise<string> {
  const body = await response.text();
  return /<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? `no error code in: ${body.slice(0, 200)}`;
}

/** Temp files of PUTs in flight (`<object>.incoming-<random>`) anywhere under the S3 directory. */
async function incomingFiles(): Promise<string[]> {
  const entries = await readdir(s3.directory, { recursive: true });
  return entries.filter((name) => name.includes('.incoming-'));
}

const swapPrefix = (url: string): string => url.replace(`alice-${run}`, `bob-${run}`);

describe('I06 tampered presigned URLs', () => {
  it('I06 a valid presigned PUT and GET work, byte for byte', async () => {
    const bytes = Buffer.from('alice: hello from the browser\n');
    const put = await fetch(await presignPut(keyA, bytes.length), { method: 'PUT', body: bytes });
    expect(put.status).toBe(200);
    const get = await fetch(await presignGet(keyA));
    expect(get.status).toBe(200);
    expect(Buffer.from(await get.arrayBuffer())).toEqual(bytes);
  });

  it("I06 the key prefix changed from A to B: 403 on PUT and GET, B's object unchanged and unread", async () => {
    const evil = Buffer.from('overwritten by alice\n'.padEnd(bobsBytes.length, '!'));
    const put = await fetch(swapPrefix(await presignPut(keyA, evil.length)), { method: 'PUT', body: evil });
    expect(put.status).toBe(403);
    expect(await errorCode(put)).toBe('SignatureDoesNotMatch');

    const get = await fetch(swapPrefix(await presignGet(keyA)));
    expect(get.status).toBe(403);
    const body = await get.text();
    expect(body).toContain('SignatureDoesNotMatch');
    expect(body).not.toContain('bob:');
    expect(await objectBytes(keyB)).toEqual(bobsBytes);
  });

  it('I06 a presigned PUT URL used as GET, HEAD or DELETE, and a GET URL used as PUT: 403', async () => {
    const putUrl = await presignPut(keyA, 5);
    for (const method of ['GET', 'HEAD', 'DELETE']) {
      const response = await fetch(putUrl, { method });
      expect(response.status, method).toBe(403);
    }
    const before = await objectBytes(keyA);
    const asPut = await fetch(await presignGet(keyA), { method: 'PUT', body: 'abcde' });
    expect(asPut.status).toBe(403);
    expect(await objectBytes(keyA)).toEqual(before);
  });

  it('I06 a URL used after its expiry: 403 "Request has expired"; a stretched X-Amz-Expires: 403', async () => {
    const signedLongAgo = new Date(Date.now() - 20 * 60 * 1000);
    const expired = await presignPut(`${keyA}-expired`, 5, { expiresIn: 60, signingDate: signedLongAgo });
    const response = await fetch(expired, { method: 'PUT', body: 'abcde' });
    expect(response.status).toBe(403);
    const body = await response.text();
    expect(body).toContain('<Code>AccessDenied</Code>');
    expect(body).toContain('Request has expired');

    const stretched = expired.replace('X-Amz-Expires=60', 'X-Amz-Expires=3600');
    expect(stretched).not.toBe(expired);
    const again = await fetch(stretched, { method: 'PUT', body: 'abcde' });
    expect(again.status).toBe(403);
    expect(await errorCode(again)).toBe('SignatureDoesNotMatch');
    expect(await objectBytes(`${keyA}-expired`)).toBeUndefined();
  });

  it('I06 another signature, no signature, or a URL signed with another secret: 403 and nothing read', async () => {
    const url = new URL(await presignGet(keyB));
    const signature = url.searchParams.get('X-Amz-Signature') ?? '';
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    url.searchParams.set(
      'X-Amz-Signature',
      `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`,
    );
    const forged = await fetch(url);
    expect(forged.status).toBe(403);
    expect(await errorCode(forged)).toBe('SignatureDoesNotMatch');

    const bare = await fetch(`${s3.endpoint}/${testBucket}/${keyB}`);
    expect(bare.status).toBe(403);
    expect(await errorCode(bare)).toBe('AccessDenied');
    const listing = await fetch(`${s3.endpoint}/${testBucket}?list-type=2`);
    expect(listing.status).toBe(403);
    expect(await listing.text()).not.toContain(keyB);

    const foreign = await fetch(await presignGet(keyB, stranger));
    expect(foreign.status).toBe(403);
    const foreignBody = await foreign.text();
    expect(foreignBody).toContain('<Code>SignatureDoesNotMatch</Code>');
    expect(foreignBody).not.toContain('bob:');
  });

  it("I06 an unsigned x-amz-copy-source on a valid PUT URL cannot copy B's object into A's key", async () => {
    const key = `${keyA}-copy`;
    const response = await fetch(await presignPut(key, 0), {
      method: 'PUT',
      headers: { 'x-amz-copy-source': `/${testBucket}/${keyB}` },
      body: '',
    });
    expect(response.status).toBe(403);
    expect(await response.text()).toContain('x-amz-copy-source');
    expect(await objectBytes(key)).toBeUndefined();
  });

  it('I06 a refused browser PUT is readable as a 403 by the page (CORS); the preflight needs no signature', async () => {
    const preflight = await fetch(swapPrefix(await presignPut(keyA, 5)), {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'PUT' },
    });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('PUT');
    const refused = await fetch(swapPrefix(await presignPut(keyA, 5)), {
      method: 'PUT',
      headers: { origin },
      body: 'abcde',
    });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBe(origin);
  });

  it("I06 the server's header-signed SDK calls work (Put, Get, Head, List, multipart, lib-storage, DeleteObjects); another secret gets 403", async () => {
    const { client } = s3;
    const prefix = `staging/sdk-${run}/`;
    await client.send(new PutObjectCommand({ Bucket: testBucket, Key: `${prefix}a b+c~é!`, Body: 'one' }));
    const streamed = Buffer.alloc(3 * MB, 7);
    await client.send(
      new PutObjectCommand({
        Bucket: testBucket,
        Key: `${prefix}streamed`,
        Body: Readable.from([streamed]),
        ContentLength: streamed.length,
      }),
    );
    // Buffer.equals: a deep toEqual over 3 MB takes a minute.
    expect((await objectBytes(`${prefix}streamed`))?.equals(streamed)).toBe(true);
    const head = await client.send(new HeadObjectCommand({ Bucket: testBucket, Key: `${prefix}a b+c~é!` }));
    expect(head.ContentLength).toBe(3);

    const created = await client.send(
      new CreateMultipartUploadCommand({ Bucket: testBucket, Key: `${prefix}parts` }),
    );
    const part = await client.send(
      new UploadPartCommand({
        Bucket: testBucket,
        Key: `${prefix}parts`,
        UploadId: created.UploadId,
        PartNumber: 1,
        Body: Buffer.from('multipart'),
      }),
    );
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: testBucket,
        Key: `${prefix}parts`,
        UploadId: created.UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    expect((await objectBytes(`${prefix}parts`))?.toString()).toBe('multipart');
    const big = Buffer.alloc(11 * MB, 3);
    await new Upload({
      client,
      params: { Bucket: testBucket, Key: `${prefix}lib-storage`, Body: Readable.from([big]) },
      partSize: 5 * MB,
    }).done();
    expect((await objectBytes(`${prefix}lib-storage`))?.length).toBe(big.length);

    const listed = await client.send(new ListObjectsV2Command({ Bucket: testBucket, Prefix: prefix }));
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(
      [`${prefix}a b+c~é!`, `${prefix}lib-storage`, `${prefix}parts`, `${prefix}streamed`].sort(),
    );
    const deleted = await client.send(
      new DeleteObjectsCommand({
        Bucket: testBucket,
        Delete: { Objects: (listed.Contents ?? []).map((o) => ({ Key: o.Key })) },
      }),
    );
    expect(deleted.Errors ?? []).toEqual([]);
    expect(await s3.keys(prefix)).toEqual([]);

    const refused = await stranger.send(new ListObjectsV2Command({ Bucket: testBucket })).then(
      () => 'listed',
      (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode,
    );
    expect(refused).toBe(403);
    const overwrite = await stranger
      .send(new PutObjectCommand({ Bucket: testBucket, Key: keyB, Body: 'overwritten' }))
      .then(
        () => 'stored',
        (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode,
      );
    expect(overwrite).toBe(403);
    expect(await objectBytes(keyB)).toEqual(bobsBytes);
  });
});

describe('H03 more bytes than signed', () => {
  it('H03 a presigned PUT with another Content-Length than signed (more, fewer, chunked): 403, nothing stored', async () => {
    const key = `${keyA}-h03`;
    const url = await presignPut(key, 10);
    const more = await fetch(url, { method: 'PUT', body: Buffer.alloc(11, 1) });
    expect(more.status).toBe(403);
    expect(await errorCode(more)).toBe('SignatureDoesNotMatch');
    const fewer = await fetch(url, { method: 'PUT', body: Buffer.alloc(9, 1) });
    expect(fewer.status).toBe(403);
    const chunked = await fetch(url, {
      method: 'PUT',
      body: Readable.toWeb(Readable.from([Buffer.alloc(6, 1), Buffer.alloc(6, 1)])) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(403);
    expect(await objectBytes(key)).toBeUndefined();
    // The same URL with the signed length still works: the refusals were about the length only.
    const exact = await fetch(url, { method: 'PUT', body: Buffer.alloc(10, 1) });
    expect(exact.status).toBe(200);
    expect(await objectBytes(key)).toEqual(Buffer.alloc(10, 1));
  });
});

describe('H04 declare 10 MB, send 900 MB', () => {
  const declared = 10 * MB;
  const sent = 900 * MB;
  /** Socket buffers on loopback hold a few MB; anything near 900 MB means the body was read. */
  const fewBytes = 32 * MB;

  it('H04 a 10 MB URL with Content-Length 900 MB, chunked, or Expect: 100-continue: refused before the body is read, nothing stored', async () => {
    const key = `${keyA}-h04`;
    const url = await presignPut(key, declared);
    const rssBefore = process.memoryUsage().rss;

    await expectOverSendsRefused(url, sent, fewBytes);

    expect(await objectBytes(key)).toBeUndefined();
    expect(await s3.keys(key)).toEqual([]);
    // The worker runs in this process: a body read into memory would show here.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * MB);
  });

  it('H04 a PUT cut at half its signed length stores nothing and leaves the old object as it was', async () => {
    const key = `${keyA}-h04-cut`;
    const size = 4 * MB;
    const old = Buffer.alloc(size, 0x11);
    expect((await fetch(await presignPut(key, size), { method: 'PUT', body: old })).status).toBe(200);
    const url = new URL(await presignPut(key, size));
    await new Promise<void>((resolve) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${size}\r\n\r\n`,
        );
        socket.write(Buffer.alloc(size / 2, 0x22), () => setTimeout(() => socket.destroy(), 200));
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
    });
    // The worker notices the cut on its own time: wait until it has let go of the temp file.
    await expect.poll(() => incomingFiles(), { timeout: 5000 }).toEqual([]);
    expect((await objectBytes(key))?.equals(old)).toBe(true);
  });

  it('H04 a multipart upload completed with a part that never arrived: 400 InvalidPart, and the S3 keeps serving', async () => {
    const key = `${keyA}-h04-parts`;
    const { UploadId } = await s3.client.send(
      new CreateMultipartUploadCommand({ Bucket: testBucket, Key: key }),
    );
    const partUrl = (partNumber: number, size: number) =>
      getSignedUrl(
        s3.client,
        new UploadPartCommand({
          Bucket: testBucket,
          Key: key,
          UploadId,
          PartNumber: partNumber,
          ContentLength: size,
        }),
        { expiresIn: 900, signableHeaders: new Set(['content-length']) },
      );
    const first = await fetch(await partUrl(1, 5 * MB), { method: 'PUT', body: Buffer.alloc(5 * MB, 1) });
    expect(first.status).toBe(200);
    const firstEtag = first.headers.get('etag') ?? '';
    const oversize = await fetch(await partUrl(2, 10), { method: 'PUT', body: Buffer.alloc(11, 2) });
    expect(oversize.status).toBe(403);
    const complete = (parts: { PartNumber: number; ETag: string }[]) =>
      s3.client
        .send(
          new CompleteMultipartUploadCommand({
            Bucket: testBucket,
            Key: key,
            UploadId,
            MultipartUpload: { Parts: parts },
          }),
        )
        .then(
          () => 'completed',
          (error: { name?: string }) => error.name,
        );
    expect(
      await complete([
        { PartNumber: 1, ETag: firstEtag },
        { PartNumber: 2, ETag: '""' },
      ]),
    ).toBe('InvalidPart');
    expect(await complete([{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"' }])).toBe(
      'InvalidPart',
    );
    // s3rver's worker used to die here, taking every user's transfers with it.
    expect(await objectBytes(keyB)).toEqual(bobsBytes);

    const second = await fetch(await partUrl(2, 10), { method: 'PUT', body: Buffer.alloc(10, 2) });
    expect(second.status).toBe(200);
    expect(
      await complete([
        { PartNumber: 1, ETag: firstEtag },
        { PartNumber: 2, ETag: second.headers.get('etag') ?? '' },
      ]),
    ).toBe('completed');
    expect((await objectBytes(key))?.length).toBe(5 * MB + 10);
  });

  it('H04 bytes past the signed 10 MB are not taken: the connection is cut, the object is the signed 10 MB or nothing', async () => {
    const key = `${keyA}-h04-tail`;
    const url = new URL(await presignPut(key, declared));
    const socket = connect(Number(url.port), url.hostname);
    const chunk = Buffer.alloc(64 * 1024, 0x33);
    const outcome = await new Promise<{ sentBytes: number; answer: string }>((resolve) => {
      let sentBytes = 0;
      let answer = '';
      let done = false;
      const stop = (): void => {
        if (done) return;
        done = true;
        socket.destroy();
        resolve({ sentBytes, answer });
      };
      socket.on('data', (data: Buffer) => (answer += data.toString('latin1')));
      socket.on('error', stop);
      socket.on('close', stop);
      const pump = (): void => {
        while (!done && sentBytes < sent) {
          sentBytes += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        socket.end();
      };
      socket.once('connect', () => {
        socket.write(
          `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${declared}\r\n\r\n`,
        );
        pump();
      });
    });
    expect(outcome.sentBytes).toBeLessThan(declared + fewBytes);
    // The tail is parsed as a next request: 400 and the connection closed, maybe before the
    // first request's answer; the reset that follows can also drop an answer before the client
    // read it (seen once in CI: nothing arrived). The object is the signed 10 MB or nothing.
    expect(outcome.answer).toMatch(/^(HTTP\/1\.1 (200|400) [^]*)?$/);
    const stored = await objectBytes(key);
    if (stored === undefined) return;
    expect(stored.length).toBe(declared);
    expect(stored.every((byte) => byte === 0x33)).toBe(true);
  });
});
