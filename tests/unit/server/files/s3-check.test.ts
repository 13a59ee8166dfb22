import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3Client } from '@aws-sdk/client-s3';
import { checkStagingLifecycle, corsProblem, requiredCors } from '../../../../server/files/s3-check.js';
import { createS3Client } from '../../../../server/files/s3-file-transfer.js';

const origin = 'https://cove.example.com';

describe('corsProblem', () => {
  it('accepts the rule Cove asks for', () => {
    expect(corsProblem(requiredCors(origin).CORSRules, origin)).toBeUndefined();
  });

  it.each([
    [[], `no CORS rule allows the origin ${origin}`],
    [
      [
        {
          AllowedOrigins: ['https://other.example'],
          AllowedMethods: ['PUT', 'GET'],
          ExposeHeaders: ['ETag'],
        },
      ],
      `no CORS rule allows the origin ${origin}`,
    ],
    [
      [{ AllowedOrigins: [origin], AllowedMethods: ['GET'], ExposeHeaders: ['ETag'] }],
      `the CORS rule for ${origin} does not allow PUT`,
    ],
    [
      [{ AllowedOrigins: [origin], AllowedMethods: ['PUT', 'GET'] }],
      `the CORS rule for ${origin} does not expose the ETag header (multipart uploads need it)`,
    ],
    [[{ AllowedOrigins: ['*'], AllowedMethods: ['put', 'get'], ExposeHeaders: ['etag'] }], undefined],
    [
      [
        {
          AllowedOrigins: ['https://*.example.com'],
          AllowedMethods: ['PUT', 'GET'],
          ExposeHeaders: ['ETag'],
        },
      ],
      undefined,
    ],
  ])('%j → %s', (rules, problem) => {
    expect(corsProblem(rules, origin)).toBe(problem);
  });
});

/**
 * An S3 stub on loopback answering GetBucketLifecycleConfiguration with canned S3 XML, so the
 * real SDK client parses the answers and errors into the shapes the check sees in production.
 */
describe('checkStagingLifecycle', () => {
  const bucket = 'cove-staging-eu';
  const prefix = 'cove-staging/';
  let answer: { status: number; body: string } = { status: 500, body: '' };
  const requests: string[] = [];
  let server: Server;
  let client: S3Client;

  const rule = (filterPrefix: string, days: number): string =>
    `<Rule><ID>cove-staging-expiry</ID><Filter><Prefix>${filterPrefix}</Prefix></Filter><Status>Enabled</Status>` +
    `<Expiration><Days>${days}</Days></Expiration>` +
    `<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`;
  const rules = (...xml: string[]) => ({
    status: 200,
    body: `<?xml version="1.0" encoding="UTF-8"?><LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${xml.join('')}</LifecycleConfiguration>`,
  });
  const s3Error = (status: number, code: string, message: string) => ({
    status,
    body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><BucketName>${bucket}</BucketName><RequestId>R1</RequestId><HostId>H1</HostId></Error>`,
  });
  const check = () => checkStagingLifecycle({ client, bucket, prefix, retentionS: 86_400, timeoutMs: 5000 });
  const fix = `aws s3api put-bucket-lifecycle-configuration --bucket ${bucket} --lifecycle-configuration '{"Rules":[{"ID":"cove-staging-expiry","Filter":{"Prefix":"cove-staging/"},"Status":"Enabled","Expiration":{"Days":1},"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1}}]}'`;

  beforeAll(async () => {
    server = createServer((request, response) => {
      requests.push(`${request.method} ${request.url}`);
      response.writeHead(answer.status, { 'content-type': 'application/xml' }).end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = createS3Client({
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      timeoutMs: 5000,
    });
  });

  afterAll(async () => {
    client?.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('asks S3 for the lifecycle configuration of the bucket and accepts a covering rule', async () => {
    answer = rules(rule('cove-staging/', 1));
    requests.length = 0;
    expect(await check()).toEqual({
      level: 'ok',
      message: `a lifecycle rule of bucket ${bucket} expires staged objects`,
    });
    expect(requests).toEqual([`GET /${bucket}/?lifecycle=`]);
  });

  it('accepts a rule for the whole bucket', async () => {
    answer = rules(rule('', 1));
    expect((await check()).level).toBe('ok');
  });

  it('missing (NoSuchLifecycleConfiguration): warns with the exact fix, never installs one', async () => {
    answer = s3Error(404, 'NoSuchLifecycleConfiguration', 'The lifecycle configuration does not exist');
    requests.length = 0;
    const result = await check();
    expect(result.level).toBe('warn');
    expect(result.message).toContain(
      `bucket ${bucket}: no lifecycle rule covers the staging prefix "${prefix}".`,
    );
    expect(result.message).toContain(`Fix: ${fix}.`);
    expect(result.message).toContain("replaces the bucket's lifecycle configuration");
    expect(requests.every((r) => r.startsWith('GET '))).toBe(true);
  });

  it('a rule for another prefix: warns, and says to merge with the existing rule', async () => {
    answer = rules(rule('logs/', 1));
    const result = await check();
    expect(result.level).toBe('warn');
    expect(result.message).toContain(`no lifecycle rule covers the staging prefix "${prefix}"`);
    expect(result.message).toContain(`Fix: ${fix}.`);
    expect(result.message).toContain(
      `add the rule to its 1 existing rule (aws s3api get-bucket-lifecycle-configuration --bucket ${bucket})`,
    );
  });

  it('a rule that keeps objects too long: warns naming the rule and its days', async () => {
    answer = rules(rule('cove-staging/', 30));
    const result = await check();
    expect(result.level).toBe('warn');
    expect(result.message).toContain(
      `no enabled lifecycle rule covering "${prefix}" expires objects within 1 day (found: "cove-staging-expiry" after 30 days)`,
    );
    expect(result.message).toContain(`Fix: ${fix}.`);
  });

  it('AccessDenied: warns that s3:GetLifecycleConfiguration is needed to check', async () => {
    answer = s3Error(403, 'AccessDenied', 'Access Denied');
    expect(await check()).toEqual({
      level: 'warn',
      message: `could not check the lifecycle rules of bucket ${bucket}: allow s3:GetLifecycleConfiguration on it to have the rule checked at start`,
    });
  });

  it('an S3 without lifecycle support (501 NotImplemented): info only', async () => {
    answer = s3Error(
      501,
      'NotImplemented',
      'A parameter you provided implies functionality that is not implemented',
    );
    expect((await check()).level).toBe('info');
  });
});
