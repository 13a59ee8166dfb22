/**
 * Start-up check of a configured staging bucket: reachable with the server's credentials, and a
 * CORS rule that lets Cove's pages PUT and GET with presigned URLs and read the ETag of each part.
 * Each problem comes with exactly what to change. Then, as advice only, whether a lifecycle rule
 * expires staged objects behind Cove's own sweep.
 */
import {
  GetBucketCorsCommand,
  GetBucketLifecycleConfigurationCommand,
  HeadBucketCommand,
  type CORSRule,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { requiredLifecycleRule, stagingLifecycleProblem } from './staging-lifecycle-problem.js';

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

export interface S3LifecycleTarget {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  readonly retentionS: number;
  readonly timeoutMs: number;
}

/**
 * `warn`: someone should add or fix a rule, or allow reading the rules; `info`: nothing to do
 * (a rule is in place, or this S3 has no lifecycle rules at all).
 */
export interface LifecycleCheckResult {
  readonly level: 'ok' | 'info' | 'warn';
  readonly message: string;
}

/** For the shell: `'` ends a single-quoted word, so it is closed, escaped and reopened. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The command that installs the recommended rule (replacing the bucket's whole configuration). */
export function lifecycleFix(bucket: string, prefix: string, retentionS: number): string {
  const configuration = JSON.stringify({ Rules: [requiredLifecycleRule(prefix, retentionS)] });
  return `aws s3api put-bucket-lifecycle-configuration --bucket ${bucket} --lifecycle-configuration ${shellQuote(configuration)}`;
}

/**
 * Never installs the rule itself: PutBucketLifecycleConfiguration replaces every rule of what may
 * be a shared bucket, and the sweep cleans up either way.
 */
export async function checkStagingLifecycle(target: S3LifecycleTarget): Promise<LifecycleCheckResult> {
  const { client, bucket, prefix, retentionS } = target;
  let rules: LifecycleRule[];
  try {
    const answer = await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }), {
      abortSignal: AbortSignal.timeout(target.timeoutMs),
    });
    rules = answer.Rules ?? [];
  } catch (error) {
    const { name } = error as SdkError;
    const status = (error as SdkError).$metadata?.httpStatusCode;
    if (name === 'NoSuchLifecycleConfiguration') rules = [];
    else if (name === 'NotImplemented' || status === 501)
      // s3rver answers 501 NotImplemented: a warning on every start would be noise.
      return {
        level: 'info',
        message: `the S3 of bucket ${bucket} has no lifecycle rules; Cove's staging sweep alone removes staged objects`,
      };
    else if (name === 'AccessDenied' || status === 403)
      return {
        level: 'warn',
        message: `could not check the lifecycle rules of bucket ${bucket}: allow s3:GetLifecycleConfiguration on it to have the rule checked at start`,
      };
    else
      return {
        level: 'warn',
        message: `could not read the lifecycle rules of bucket ${bucket} (${name ?? 'error'}); Cove's staging sweep still removes staged objects`,
      };
  }
  const problem = stagingLifecycleProblem(rules, prefix, retentionS);
  if (!problem)
    return { level: 'ok', message: `a lifecycle rule of bucket ${bucket} expires staged objects` };
  const others =
    rules.length > 0
      ? ` The command replaces the bucket's whole lifecycle configuration: add the rule to its ${rules.length} existing rule${rules.length === 1 ? '' : 's'} (aws s3api get-bucket-lifecycle-configuration --bucket ${bucket}) instead of running it as is.`
      : " It replaces the bucket's lifecycle configuration: if rules were added since, merge it with them.";
  return {
    level: 'warn',
    message: `bucket ${bucket}: ${problem}. Cove's staging sweep still removes staged objects, but a lifecycle rule also cleans up while Cove is down. Fix: ${lifecycleFix(bucket, prefix, retentionS)}.${others}`,
  };
}
