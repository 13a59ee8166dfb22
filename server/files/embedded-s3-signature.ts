/**
 * AWS Signature Version 4 as S3 checks it, for the embedded S3: s3rver verifies no V4 signature,
 * so without this anyone who reaches its port could read or overwrite every staged object.
 *
 * Both forms S3 takes: the presigned query string (`X-Amz-Algorithm=AWS4-HMAC-SHA256&...`, what
 * browsers use) and the `Authorization: AWS4-HMAC-SHA256 ...` header (the server's own SDK calls).
 * The canonical request follows the AWS documentation ("Create a signed AWS API request"): the path
 * and query are decoded and re-encoded the strict RFC 3986 way S3 uses, so a browser that
 * re-escapes a character still matches, and `%2F` inside a key stays part of its segment.
 *
 * Pure: it sees the request line and headers only. A refused PUT is refused before its body is read.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface S3RequestHead {
  readonly method: string;
  /** The raw request target: path and query as sent. */
  readonly url: string;
  /** Node's `req.headers`: lower-case names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export type SignatureVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: number; readonly code: string; readonly message: string };

export interface EmbeddedS3SignatureOptions {
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly region: string;
  /** Epoch ms; for tests of expiry with published AWS examples. */
  readonly now?: () => number;
}

const algorithm = 'AWS4-HMAC-SHA256';
const unsignedPayload = 'UNSIGNED-PAYLOAD';
/** S3's limit for `X-Amz-Expires`: 7 days. */
const maxExpiresS = 7 * 24 * 3600;
/** S3 accepts requests dated up to 15 minutes off its clock. */
const maxSkewMs = 15 * 60 * 1000;

const refuse = (status: number, code: string, message: string): SignatureVerdict => ({
  ok: false,
  status,
  code,
  message,
});
const accessDenied = (message: string): SignatureVerdict => refuse(403, 'AccessDenied', message);
const mismatch = (): SignatureVerdict =>
  refuse(
    403,
    'SignatureDoesNotMatch',
    'The request signature we calculated does not match the signature you provided.',
  );

interface QueryParam {
  readonly name: string;
  readonly value: string;
}

export class EmbeddedS3Signature {
  private readonly now: () => number;

  constructor(private readonly options: EmbeddedS3SignatureOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Whether S3 would serve this request; CORS preflights (`OPTIONS`) carry no signature. */
  verify(request: S3RequestHead): SignatureVerdict {
    if (request.method === 'OPTIONS') return { ok: true };
    const queryStart = request.url.indexOf('?');
    const rawPath = queryStart === -1 ? request.url : request.url.slice(0, queryStart);
    const params = parseQuery(queryStart === -1 ? '' : request.url.slice(queryStart + 1));
    if (!params) return refuse(400, 'InvalidURI', 'Could not parse the specified URI.');
    const path = canonicalPath(rawPath);
    if (path === undefined) return refuse(400, 'InvalidURI', 'Could not parse the specified URI.');

    const queryAuth = params.some((p) => p.name === 'X-Amz-Algorithm');
    const authorization = header(request.headers, 'authorization');
    if (queryAuth && authorization !== undefined)
      return refuse(
        400,
        'InvalidArgument',
        'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified',
      );
    if (params.some((p) => p.name === 'Signature' || p.name === 'AWSAccessKeyId'))
      return accessDenied('Signature Version 2 is not supported; sign with AWS4-HMAC-SHA256.');
    if (queryAuth) return this.verifyQuery(request, path, params);
    if (authorization !== undefined) return this.verifyHeader(request, path, params, authorization);
    return accessDenied('Access Denied');
  }

  private verifyQuery(request: S3RequestHead, path: string, params: readonly QueryParam[]): SignatureVerdict {
    const get = (name: string): string | undefined => {
      const found = params.filter((p) => p.name === name);
      return found.length === 1 ? found[0]?.value : undefined;
    };
    if (get('X-Amz-Algorithm') !== algorithm)
      return refuse(
        400,
        'AuthorizationQueryParametersError',
        'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
      );
    const credential = get('X-Amz-Credential');
    const amzDate = get('X-Amz-Date');
    const expires = get('X-Amz-Expires');
    const signedHeadersText = get('X-Amz-SignedHeaders');
    const signature = get('X-Amz-Signature');
    if (!credential || !amzDate || !expires || !signedHeadersText || !signature)
      return refuse(
        400,
        'AuthorizationQueryParametersError',
        'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
      );
    const signedAt = parseAmzDate(amzDate);
    if (signedAt === undefined)
      return refuse(
        400,
        'AuthorizationQueryParametersError',
        'X-Amz-Date must be in the ISO8601 Long Format.',
      );
    if (!/^[0-9]{1,7}$/.test(expires) || Number(expires) > maxExpiresS)
      return refuse(
        400,
        'AuthorizationQueryParametersError',
        'X-Amz-Expires must be a number of seconds from 0 to 604800 (7 days).',
      );
    const now = this.now();
    if (signedAt - now > maxSkewMs) return accessDenied('Request is not valid yet');
    if (now > signedAt + Number(expires) * 1000) return accessDenied('Request has expired');

    // A presigned URL's payload is never hashed: browsers send bytes nobody could sign beforehand.
    const payloadHash = get('X-Amz-Content-Sha256') ?? unsignedPayload;
    if (payloadHash !== unsignedPayload)
      return accessDenied('Presigned URLs must use X-Amz-Content-Sha256=UNSIGNED-PAYLOAD.');
    const query = params.filter((p) => p.name !== 'X-Amz-Signature');
    return this.check(request, path, query, {
      credential,
      amzDate,
      signedHeadersText,
      signature,
      payloadHash,
    });
  }

  private verifyHeader(
    request: S3RequestHead,
    path: string,
    params: readonly QueryParam[],
    authorization: string,
  ): SignatureVerdict {
    const match =
      /^AWS4-HMAC-SHA256 +Credential=([^,\s]+), *SignedHeaders=([^,\s]+), *Signature=([0-9a-f]+)$/.exec(
        authorization.trim(),
      );
    if (!match?.[1] || !match[2] || !match[3])
      return refuse(
        400,
        'AuthorizationHeaderMalformed',
        'The authorization header is malformed; only AWS4-HMAC-SHA256 is supported.',
      );
    const [, credential, signedHeadersText, signature] = match;
    const amzDate = header(request.headers, 'x-amz-date');
    const signedAt = amzDate === undefined ? undefined : parseAmzDate(amzDate);
    if (amzDate === undefined || signedAt === undefined)
      return accessDenied('AWS authentication requires a valid x-amz-date header.');
    if (Math.abs(this.now() - signedAt) > maxSkewMs)
      return refuse(
        403,
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
      );
    const payloadHash = header(request.headers, 'x-amz-content-sha256');
    if (payloadHash === undefined)
      return refuse(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    // Chunk signatures would need the body; Cove's own clients never stream aws-chunked.
    if (payloadHash.startsWith('STREAMING-'))
      return refuse(501, 'NotImplemented', 'The embedded S3 does not accept aws-chunked uploads.');
    // A hex hash is trusted, not recomputed: it is signed, and only Cove's server holds the key.
    if (payloadHash !== unsignedPayload && !/^[0-9a-f]{64}$/.test(payloadHash))
      return refuse(400, 'XAmzContentSHA256Mismatch', 'The x-amz-content-sha256 header is not a valid hash.');
    return this.check(request, path, params, {
      credential,
      amzDate,
      signedHeadersText,
      signature,
      payloadHash,
    });
  }

  private check(
    request: S3RequestHead,
    path: string,
    query: readonly QueryParam[],
    auth: {
      credential: string;
      amzDate: string;
      signedHeadersText: string;
      signature: string;
      payloadHash: string;
    },
  ): SignatureVerdict {
    const { credentials, region } = this.options;
    const scope = auth.credential.split('/');
    if (scope.length !== 5)
      return refuse(400, 'AuthorizationQueryParametersError', 'Malformed credential scope.');
    const [accessKeyId, date, scopeRegion, service, terminator] = scope;
    if (accessKeyId !== credentials.accessKeyId)
      return refuse(
        403,
        'InvalidAccessKeyId',
        'The AWS Access Key Id you provided does not exist in our records.',
      );
    if (
      date !== auth.amzDate.slice(0, 8) ||
      scopeRegion !== region ||
      service !== 's3' ||
      terminator !== 'aws4_request'
    )
      return refuse(
        400,
        'AuthorizationHeaderMalformed',
        `The credential scope must be <date of X-Amz-Date>/${region}/s3/aws4_request.`,
      );

    const signedHeaders = auth.signedHeadersText.split(';');
    if (!signedHeaders.includes('host')) return accessDenied('The host header must be signed.');
    if (signedHeaders.some((name) => name === '' || name !== name.toLowerCase()))
      return accessDenied('X-Amz-SignedHeaders must list lower-case header names.');
    // Unsigned x-amz-* headers could change what a signed request does (x-amz-copy-source turns
    // a PUT into a copy of someone else's object), so S3 refuses them, and so does this.
    const unsigned = Object.keys(request.headers).filter(
      (name) => name.startsWith('x-amz-') && !signedHeaders.includes(name),
    );
    if (unsigned.length > 0)
      return accessDenied(
        `There were headers present in the request which were not signed: ${unsigned.join(', ')}`,
      );
    const canonicalHeaders: string[] = [];
    for (const name of signedHeaders) {
      const value = header(request.headers, name);
      if (value === undefined) return mismatch();
      canonicalHeaders.push(`${name}:${value.trim().replace(/\s+/g, ' ')}\n`);
    }
    // The signed length is the only one the body may have: not a chunked stream of any length.
    if (signedHeaders.includes('content-length') && request.headers['transfer-encoding'] !== undefined)
      return mismatch();

    const canonicalRequest = [
      request.method,
      path,
      canonicalQuery(query),
      canonicalHeaders.join(''),
      auth.signedHeadersText,
      auth.payloadHash,
    ].join('\n');
    const stringToSign = [
      algorithm,
      auth.amzDate,
      `${auth.amzDate.slice(0, 8)}/${region}/s3/aws4_request`,
      createHash('sha256').update(canonicalRequest).digest('hex'),
    ].join('\n');
    const key = signingKey(credentials.secretAccessKey, auth.amzDate.slice(0, 8), region);
    const expected = Buffer.from(createHmac('sha256', key).update(stringToSign).digest('hex'));
    const given = Buffer.from(auth.signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return mismatch();
    return { ok: true };
  }
}

function signingKey(secret: string, date: string, region: string): Buffer {
  const hmac = (key: string | Buffer, data: string): Buffer =>
    createHmac('sha256', key).update(data).digest();
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), 's3'), 'aws4_request');
}

/** One value per header name: a repeated signed header is ambiguous, so it fails the check. */
function header(headers: S3RequestHead['headers'], name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** `20261126T174815Z` → epoch ms. */
function parseAmzDate(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(ms) ? undefined : ms;
}

/** RFC 3986 unreserved characters stay, everything else is %XX (upper case), as S3 signs. */
function encodeStrict(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** Each segment decoded once and re-encoded: no double encoding, `%2F` stays inside its segment. */
function canonicalPath(rawPath: string): string | undefined {
  if (!rawPath.startsWith('/')) return undefined;
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    const decoded = decode(segment);
    if (decoded === undefined) return undefined;
    segments.push(encodeStrict(decoded));
  }
  return segments.join('/');
}

/** `+` is a literal plus here, as S3 reads it; a name without `=` has an empty value (`?uploads`). */
function parseQuery(raw: string): QueryParam[] | undefined {
  const params: QueryParam[] = [];
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decode(eq === -1 ? part : part.slice(0, eq));
    const value = decode(eq === -1 ? '' : part.slice(eq + 1));
    if (name === undefined || value === undefined) return undefined;
    params.push({ name, value });
  }
  return params;
}

function canonicalQuery(params: readonly QueryParam[]): string {
  return params
    .map((p) => [encodeStrict(p.name), encodeStrict(p.value)] as const)
    .sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}
