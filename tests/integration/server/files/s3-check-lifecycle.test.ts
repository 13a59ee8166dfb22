/**
 * F05: the lifecycle part of the start-up bucket check against a real S3 without lifecycle rules
 * (s3rver on loopback answers GetBucketLifecycleConfiguration with 501 NotImplemented): one info
 * line at start, no warning, and file transfer stays on. A second Cove reaches the same s3rver
 * through a loopback proxy that answers the lifecycle request as AWS does for a bucket without
 * rules (404 NoSuchLifecycleConfiguration) and passes everything else through unchanged.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestS3, testBucket } from '../../../helpers/s3.js';
import { createTestApp, type TestApp } from '../../../helpers/test-app.js';
import { checkStagingLifecycle } from '../../../../server/files/s3-check.js';
import type {} from '../../../../server/files/file-service.js';

interface LogLine {
  level: number;
  msg: string;
  bucket?: string;
}

let s3: TestS3;
let cove: TestApp;
let proxy: Server;
let coveBehindProxy: TestApp;
const proxied: string[] = [];

function lifecycleLines(app: TestApp): LogLine[] {
  return app.logs
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as LogLine)
    .filter((line) => line.msg.startsWith('staging bucket lifecycle'));
}

/** Host header kept as sent: the embedded S3 checks the signature, which covers it. */
async function startNoLifecycleProxy(target: number): Promise<Server> {
  const server = createServer((req, res) => {
    proxied.push(`${req.method} ${req.url}`);
    if (new URL(req.url ?? '/', 'http://x').searchParams.has('lifecycle')) {
      res
        .writeHead(404, { 'content-type': 'application/xml' })
        .end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchLifecycleConfiguration</Code><Message>The lifecycle configuration does not exist</Message><BucketName>${testBucket}</BucketName></Error>`,
        );
      return;
    }
    const upstream = httpRequest(
      { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

beforeAll(async () => {
  s3 = await TestS3.start();
  // A configured bucket takes the server's default credential chain.
  Object.assign(process.env, TestS3.credentialsEnv());
  cove = await createTestApp({
    regions: [{ id: 'eu-west-1', name: 'Europe', s3: s3.regionConfig() }],
  });
  await cove.app.files.checked;
  proxy = await startNoLifecycleProxy(s3.port);
  coveBehindProxy = await createTestApp({
    regions: [
      {
        id: 'eu-west-1',
        name: 'Europe',
        s3: { ...s3.regionConfig(), endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` },
      },
    ],
  });
  await coveBehindProxy.app.files.checked;
}, 60_000);

afterAll(async () => {
  await cove?.close();
  await coveBehindProxy?.close();
  proxy?.closeAllConnections();
  await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
  await s3?.destroy();
}, 60_000);

describe('staging bucket lifecycle check', () => {
  it('F05 an S3 without lifecycle support (s3rver: 501 NotImplemented) gives info, not a warning', async () => {
    const result = await checkStagingLifecycle({
      client: s3.client,
      bucket: testBucket,
      prefix: 'cove-staging/',
      retentionS: 86_400,
      timeoutMs: 5000,
    });
    expect(result).toEqual({
      level: 'info',
      message: `the S3 of bucket ${testBucket} has no lifecycle rules; Cove's staging sweep alone removes staged objects`,
    });
  });

  it('F05 at start Cove logs exactly one lifecycle line for the configured bucket, at info, and transfer stays on', () => {
    const lines = lifecycleLines(cove);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, bucket: testBucket });
    expect(cove.app.files.transfer.problems('eu-west-1')).toBeUndefined();
  });

  it('F05 a bucket without a lifecycle rule: one warning at start naming the bucket and the exact fix; transfer stays on and no rule is installed', () => {
    const lines = lifecycleLines(coveBehindProxy);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, bucket: testBucket });
    expect(lines[0]?.msg).toContain(
      `Fix: aws s3api put-bucket-lifecycle-configuration --bucket ${testBucket} --lifecycle-configuration '{"Rules":[{"ID":"cove-staging-expiry","Filter":{"Prefix":"cove-staging/"},"Status":"Enabled","Expiration":{"Days":1},"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1}}]}'`,
    );
    expect(coveBehindProxy.app.files.transfer.problems('eu-west-1')).toBeUndefined();
    const lifecycleRequests = proxied.filter((r) => r.includes('lifecycle'));
    expect(lifecycleRequests).toEqual([`GET /${testBucket}/?lifecycle=`]);
  });
});
