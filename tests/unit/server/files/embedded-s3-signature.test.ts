import { describe, expect, it } from 'vitest';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { EmbeddedS3Signature, type S3RequestHead } from '../../../../server/files/embedded-s3-signature.js';

/** The key and time of the examples in AWS's "Signature Version 4 (S3)" documentation. */
const awsExample = {
  credentials: {
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  },
  region: 'us-east-1',
};
const exampleTime = Date.UTC(2013, 4, 24, 0, 0, 0);
const host = 'examplebucket.s3.amazonaws.com';
const emptyHash = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const credential = 'AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request';

const at = (ms: number) => new EmbeddedS3Signature({ ...awsExample, now: () => ms });

const presignedExample =
  '/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
  '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
  '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';

function headerSigned(
  method: string,
  url: string,
  signedHeaders: string,
  signature: string,
  headers: Record<string, string>,
): S3RequestHead {
  return {
    method,
    url,
    headers: {
      host,
      'x-amz-date': '20130524T000000Z',
      ...headers,
      authorization: `AWS4-HMAC-SHA256 Credential=${credential},SignedHeaders=${signedHeaders},Signature=${signature}`,
    },
  };
}

describe('EmbeddedS3Signature with the AWS documentation examples', () => {
  it('accepts the presigned GET example within its 24 hours, and refuses it after', () => {
    const request = { method: 'GET', url: presignedExample, headers: { host } };
    expect(at(exampleTime + 3600_000).verify(request)).toEqual({ ok: true });
    expect(at(exampleTime + 86_400_000 + 1000).verify(request)).toMatchObject({
      ok: false,
      status: 403,
      code: 'AccessDenied',
      message: 'Request has expired',
    });
    expect(at(exampleTime - 16 * 60_000).verify(request)).toMatchObject({
      status: 403,
      code: 'AccessDenied',
    });
  });

  it('refuses the example with another host, method, key or signature', () => {
    const ok = at(exampleTime);
    const refusedAs = (request: S3RequestHead) => ok.verify(request);
    expect(
      refusedAs({ method: 'GET', url: presignedExample, headers: { host: 'other.example' } }),
    ).toMatchObject({
      code: 'SignatureDoesNotMatch',
    });
    expect(refusedAs({ method: 'PUT', url: presignedExample, headers: { host } })).toMatchObject({
      code: 'SignatureDoesNotMatch',
    });
    expect(
      refusedAs({
        method: 'GET',
        url: presignedExample.replace('/test.txt', '/test2.txt'),
        headers: { host },
      }),
    ).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(
      refusedAs({ method: 'GET', url: presignedExample.replace(/d404$/, 'd405'), headers: { host } }),
    ).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
    const otherSecret = new EmbeddedS3Signature({
      credentials: { ...awsExample.credentials, secretAccessKey: 'another' },
      region: 'us-east-1',
      now: () => exampleTime,
    });
    expect(otherSecret.verify({ method: 'GET', url: presignedExample, headers: { host } })).toMatchObject({
      code: 'SignatureDoesNotMatch',
    });
  });

  it('accepts the header-signed GET with a Range header', () => {
    const request = headerSigned(
      'GET',
      '/test.txt',
      'host;range;x-amz-content-sha256;x-amz-date',
      'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
      { range: 'bytes=0-9', 'x-amz-content-sha256': emptyHash },
    );
    expect(at(exampleTime).verify(request)).toEqual({ ok: true });
    expect(
      at(exampleTime).verify({ ...request, headers: { ...request.headers, range: 'bytes=0-99' } }),
    ).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(at(exampleTime + 16 * 60_000).verify(request)).toMatchObject({
      status: 403,
      code: 'RequestTimeTooSkewed',
    });
  });

  it('accepts the header-signed PUT of /test$file.text (the path encoded as S3 does)', () => {
    const request = headerSigned(
      'PUT',
      '/test$file.text',
      'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
      '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
      {
        date: 'Fri, 24 May 2013 00:00:00 GMT',
        'x-amz-storage-class': 'REDUCED_REDUNDANCY',
        'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
      },
    );
    expect(at(exampleTime).verify(request)).toEqual({ ok: true });
    expect(at(exampleTime).verify({ ...request, url: '/test%24file.text' })).toEqual({ ok: true });
  });

  it('accepts the header-signed GET ?lifecycle and GET ?max-keys=2&prefix=J', () => {
    const signed = 'host;x-amz-content-sha256;x-amz-date';
    const headers = { 'x-amz-content-sha256': emptyHash };
    expect(
      at(exampleTime).verify(
        headerSigned(
          'GET',
          '/?lifecycle',
          signed,
          'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
          headers,
        ),
      ),
    ).toEqual({ ok: true });
    expect(
      at(exampleTime).verify(
        headerSigned(
          'GET',
          '/?prefix=J&max-keys=2',
          signed,
          '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
          headers,
        ),
      ),
    ).toEqual({ ok: true });
  });
});

describe('EmbeddedS3Signature with URLs from the AWS SDK presigner', () => {
  const credentials = { accessKeyId: 'COVE', secretAccessKey: 'embedded-secret' };
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:4569',
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const signature = new EmbeddedS3Signature({ credentials, region: 'us-east-1' });
  const target = (url: string) => {
    const parsed = new URL(url);
    return { url: `${parsed.pathname}${parsed.search}`, headers: { host: parsed.host } };
  };
  const key = "staging/u1/a b+c~é!'()*";

  it('accepts a PUT with the signed Content-Length only, also when a browser escapes more or less', async () => {
    const url = await getSignedUrl(
      client,
      new PutObjectCommand({ Bucket: 'b', Key: key, ContentLength: 5 }),
      {
        expiresIn: 900,
        signableHeaders: new Set(['content-length']),
      },
    );
    const { url: path, headers } = target(url);
    const put = (u: string, length: string, more: Record<string, string> = {}) =>
      signature.verify({ method: 'PUT', url: u, headers: { ...headers, 'content-length': length, ...more } });
    expect(put(path, '5')).toEqual({ ok: true });
    expect(put(path.replace('~', '%7E').replace('%21', '!'), '5')).toEqual({ ok: true });
    expect(put(path, '5', { 'content-type': 'text/plain', origin: 'http://x' })).toEqual({ ok: true });
    expect(put(path, '6')).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
    expect(put(path, '5', { 'transfer-encoding': 'chunked' })).toMatchObject({
      code: 'SignatureDoesNotMatch',
    });
    expect(put(path, '5', { 'x-amz-copy-source': '/b/other' })).toMatchObject({
      status: 403,
      code: 'AccessDenied',
    });
    expect(put(path.replace('u1', 'u2'), '5')).toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(put(path.replace('/u1/', '%2Fu1/'), '5')).toMatchObject({ code: 'SignatureDoesNotMatch' });
  });

  it('accepts a GET with response-content-disposition, refuses it edited', async () => {
    const url = await getSignedUrl(
      client,
      new GetObjectCommand({
        Bucket: 'b',
        Key: key,
        ResponseContentDisposition: 'attachment; filename="a b.txt"',
      }),
      { expiresIn: 900 },
    );
    const { url: path, headers } = target(url);
    expect(signature.verify({ method: 'GET', url: path, headers })).toEqual({ ok: true });
    expect(
      signature.verify({ method: 'GET', url: path.replace('a%20b.txt', 'evil.html'), headers }),
    ).toMatchObject({
      code: 'SignatureDoesNotMatch',
    });
  });

  it('refuses requests without a usable signature; lets CORS preflights through', async () => {
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: 'b', Key: 'k' }), {
      expiresIn: 900,
    });
    const { url: path, headers } = target(url);
    const bare = path.slice(0, path.indexOf('?'));
    expect(signature.verify({ method: 'GET', url: bare, headers })).toMatchObject({
      status: 403,
      code: 'AccessDenied',
    });
    expect(signature.verify({ method: 'OPTIONS', url: bare, headers })).toEqual({ ok: true });
    expect(
      signature.verify({ method: 'GET', url: `${bare}?AWSAccessKeyId=COVE&Signature=x`, headers }),
    ).toMatchObject({
      status: 403,
    });
    expect(
      signature.verify({
        method: 'GET',
        url: path,
        headers: { ...headers, authorization: 'AWS4-HMAC-SHA256 x' },
      }),
    ).toMatchObject({ status: 400, code: 'InvalidArgument' });
    expect(
      signature.verify({
        method: 'GET',
        url: path.replace('X-Amz-Expires=900', 'X-Amz-Expires=604801'),
        headers,
      }),
    ).toMatchObject({ status: 400 });
    expect(
      signature.verify({
        method: 'GET',
        url: path.replace('X-Amz-SignedHeaders=host', 'X-Amz-SignedHeaders=range'),
        headers,
      }),
    ).toMatchObject({ status: 403, code: 'AccessDenied' });
    expect(
      signature.verify({ method: 'GET', url: path.replace('COVE%2F', 'OTHER%2F'), headers }),
    ).toMatchObject({
      status: 403,
      code: 'InvalidAccessKeyId',
    });
    expect(
      signature.verify({ method: 'GET', url: path.replace('us-east-1', 'eu-west-1'), headers }),
    ).toMatchObject({
      status: 400,
    });
    expect(signature.verify({ method: 'GET', url: `${path}&bad=%E0%A4%A`, headers })).toMatchObject({
      status: 400,
    });
  });

  it('refuses aws-chunked uploads it cannot check', () => {
    const verdict = signature.verify({
      method: 'PUT',
      url: '/b/k',
      headers: {
        host: '127.0.0.1:4569',
        'x-amz-date': new Date().toISOString().replace(/[-:]|\.\d{3}/g, ''),
        'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
        authorization: `AWS4-HMAC-SHA256 Credential=COVE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${'0'.repeat(64)}`,
      },
    });
    expect(verdict).toMatchObject({ ok: false, status: 501, code: 'NotImplemented' });
  });
});
