/**
 * F05: the lifecycle part of the start-up bucket check against a real S3 without lifecycle rules
 * (s3rver on loopback answers GetBucketLifecycleConfiguration with 501 NotImplemented): one info
 * line at start, no warning, and file transfer stays on.
 */
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

beforeAll(async () => {
  s3 = await TestS3.start();
  // A configured bucket takes the server's default credential chain.
  Object.assign(process.env, TestS3.credentialsEnv());
  cove = await createTestApp({
    regions: [{ id: 'eu-west-1', name: 'Europe', s3: s3.regionConfig() }],
  });
  await cove.app.files.checked;
}, 60_000);

afterAll(async () => {
  await cove?.close();
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
    const lines = cove.logs
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as LogLine)
      .filter((line) => line.msg.startsWith('staging bucket lifecycle'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, bucket: testBucket });
    expect(cove.app.files.transfer.problems('eu-west-1')).toBeUndefined();
  });
});
