/**
 * Start-up check of a configured staging bucket: reachable with the server's credentials, and a
 * CORS rule that lets Cove's pages PUT and GET with presigned URLs and read the ETag of each part.
 * Each problem comes with exactly what to change.
 */
import { GetBucketCorsCommand, HeadBucketCommand, type CORSRule, type S3Client } from '@aws-sdk/client-s3';

export type S3CheckResult =
  | { readonly ok: true }
  /** `unreachable`: S3 did not answer (may pass later); `misconfigured`: someone must fix something. */
  | {
      readonly ok: false;
      readonly kind: 'unreachable' | 'misconfigured';
      readonly problems: readonly string[];
    };

export interface S3CheckTarget {
  readonly client: S3Client;
  readonly bucket: string;
  readonly region: string;
  readonly origin: string;
  readonly timeoutMs: number;
}

/** The CORS rule Cove needs, as `aws s3api put-bucket-cors --cors-configuration` takes it. */
export function requiredCors(origin: string): { CORSRules: CORSRule[] } {
  return {
    CORSRules: [
      {
        AllowedOrigins: [origin],
        AllowedMethods: ['PUT', 'GET', 'HEAD'],
        AllowedHeaders: ['*'],
        ExposeHeaders: ['ETag'],
        MaxAgeSeconds: 3000,
      },
    ],
  };
}

function originMatches(pattern: string, origin: string): boolean {
  if (pattern === '*' || pattern === origin) return true;
  if (!pattern.includes('*')) return false;
  const [before, after] = pattern.split('*', 2) as [string, string?];
  return origin.startsWith(before) && origin.endsWith(after ?? '') && origin.length >= pattern.length - 1;
}

/** Why the rules do not let `origin` upload and download, or undefined when they do. */
export function corsProblem(rules: readonly CORSRule[], origin: string): string | undefined {
  const forOrigin = rules.filter((r) => (r.AllowedOrigins ?? []).some((p) => originMatches(p, origin)));
  if (forOrigin.length === 0) return `no CORS rule allows the origin ${origin}`;
  const methods = new Set(forOrigin.flatMap((r) => r.AllowedMethods ?? []).map((m) => m.toUpperCase()));
  const missing = ['PUT', 'GET'].filter((m) => !methods.has(m));
  if (missing.length > 0) return `the CORS rule for ${origin} does not allow ${missing.join(' and ')}`;
  const exposesEtag = forOrigin.some((r) => (r.ExposeHeaders ?? []).some((h) => h.toLowerCase() === 'etag'));
  if (!exposesEtag)
    return `the CORS rule for ${origin} does not expose the ETag header (multipart uploads need it)`;
  return undefined;
}

interface SdkError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

export async function checkStagingBucket(target: S3CheckTarget): Promise<S3CheckResult> {
  const { client, bucket, origin } = target;
  const fix = `aws s3api put-bucket-cors --bucket ${bucket} --cors-configuration '${JSON.stringify(requiredCors(origin))}'`;
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }), {
      abortSignal: AbortSignal.timeout(target.timeoutMs),
    });
  } catch (error) {
    const status = (error as SdkError).$metadata?.httpStatusCode;
    if (status === 404)
      return {
        ok: false,
        kind: 'misconfigured',
        problems: [
          `bucket ${bucket} does not exist in ${target.region}: create it or fix regions[].s3.bucket`,
        ],
      };
    if (status === 403 || status === 401)
      return {
        ok: false,
        kind: 'misconfigured',
        problems: [
          `the server's AWS credentials may not use bucket ${bucket}: allow s3:ListBucket, s3:PutObject, s3:GetObject, s3:DeleteObject, s3:AbortMultipartUpload and s3:ListBucketMultipartUploads on it`,
        ],
      };
    return {
      ok: false,
      kind: 'unreachable',
      problems: [`S3 did not answer for bucket ${bucket} (${(error as SdkError).name ?? 'error'})`],
    };
  }
  let rules: CORSRule[];
  try {
    const cors = await client.send(new GetBucketCorsCommand({ Bucket: bucket }), {
      abortSignal: AbortSignal.timeout(target.timeoutMs),
    });
    rules = cors.CORSRules ?? [];
  } catch (error) {
    if (
      (error as SdkError).name !== 'NoSuchCORSConfiguration' &&
      (error as SdkError).$metadata?.httpStatusCode !== 404
    )
      return {
        ok: false,
        kind: (error as SdkError).$metadata?.httpStatusCode === 403 ? 'misconfigured' : 'unreachable',
        problems: [
          `could not read the CORS rules of bucket ${bucket} (${(error as SdkError).name ?? 'error'}); allow s3:GetBucketCors`,
        ],
      };
    rules = [];
  }
  const problem = corsProblem(rules, origin);
  if (problem)
    return { ok: false, kind: 'misconfigured', problems: [`bucket ${bucket}: ${problem}. Fix: ${fix}`] };
  return { ok: true };
}
