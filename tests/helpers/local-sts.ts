/**
 * A local STS for tests: a node:http server on 127.0.0.1 speaking the real STS Query API
 * (form-encoded `Action=AssumeRole&Version=2011-06-15&...`, XML responses in the
 * `https://sts.amazonaws.com/doc/2011-06-15/` namespace, real error codes and statuses), so the
 * broker is exercised through the real `@aws-sdk/client-sts` with only an endpoint override.
 *
 * AssumeRole and GetCallerIdentity verify the SigV4 signature as STS does (the server's own key,
 * LOCAL_STS_CALLER, or credentials this STS issued, with their session token). Roles allow
 * 12 h unless `setMaxDuration` says otherwise (real roles default to 1 h; 12 h keeps tests about
 * other things free of duration notices).
 *
 * GetCallerIdentity answers for the credentials it issued, as STS does: it looks the key id up in
 * the Authorization header's Credential, verifies the SigV4 signature with the issued secret and
 * the session token, and answers the assumed-role ARN (`InvalidClientTokenId` for a key it never
 * issued or a wrong token, `SignatureDoesNotMatch` for a wrong secret, `ExpiredToken` past the
 * expiry). `listenUnix` also serves it on a unix socket (a container reaches it through a socket
 * in its mounted directory; the host never connects to a container).
 *
 *   const sts = await startLocalSts();
 *   const broker = localStsBroker(sts);
 *   ...; sts.requests[0].roleSessionName; sts.issued.get(accessKeyId); await sts.close();
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, rm } from 'node:fs/promises';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { leakRecord } from './leak-record.js';
import {
  StsCredentialBroker,
  type StsCredentialBrokerOptions,
} from '../../server/credentials/sts-credential-broker.js';

const NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';
/** The AWS STS hard limit for AssumeRole; a role's MaxSessionDuration is 1 h to 12 h. */
const STS_MAX_DURATION_S = 43_200;
const DEFAULT_DURATION_S = 3600;

/** Static server credentials for clients of the local STS (it only checks they sign). */
export const LOCAL_STS_CALLER = {
  accessKeyId: 'AKIALOCALSTSCALLER00',
  secretAccessKey: 'local-sts-caller-secret',
} as const;

/** One AssumeRole (or other) request as the local STS received it, fields parsed. */
export interface LocalStsRequest {
  readonly action: string | undefined;
  readonly version: string | undefined;
  readonly roleArn: string | undefined;
  readonly roleSessionName: string | undefined;
  readonly durationSeconds: number | undefined;
  readonly sourceIdentity: string | undefined;
  readonly policy: string | undefined;
  readonly tags: readonly { readonly key: string; readonly value: string }[];
  /** Every form field as sent. */
  readonly form: Readonly<Record<string, string>>;
  readonly authorization: string | undefined;
  /** The key id in the SigV4 Credential of the Authorization header. */
  readonly callerAccessKeyId: string | undefined;
  /** HTTP status the local STS answered (0 while a hung request is still open). */
  status: number;
  /** The error code answered, if any. */
  errorCode?: string;
}

/** Credentials the local STS handed out, by AccessKeyId. */
export interface LocalStsIssued {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
  readonly roleArn: string;
  readonly roleSessionName: string;
  readonly sourceIdentity: string | undefined;
  readonly durationSeconds: number;
  readonly assumedRoleArn: string;
  /** `<roleId>:<RoleSessionName>`, what GetCallerIdentity answers as UserId. */
  readonly assumedRoleId: string;
}

export interface LocalSts {
  /** e.g. http://127.0.0.1:40123 — pass as the STS endpoint. */
  readonly endpoint: string;
  /** Every request in arrival order. */
  readonly requests: LocalStsRequest[];
  /** Only the AssumeRole requests that reached the role logic (not throttled/failed/hung). */
  assumeRoleRequests(): LocalStsRequest[];
  readonly issued: Map<string, LocalStsIssued>;
  /** AssumeRole into this role answers 403 AccessDenied (like a missing trust policy). */
  denyRole(roleArn: string): void;
  /** The next n requests answer 400 Throttling ("Rate exceeded"). */
  throttleNext(n: number): void;
  /** The next n requests answer `status` (default 500) InternalFailure (503: ServiceUnavailable). */
  failNext(n: number, status?: number): void;
  /** The next n requests get no answer until close() (a blackholed STS). */
  hangNext(n: number): void;
  /** Every request answers 403 RegionDisabledException until called with false. */
  disableRegion(disabled?: boolean): void;
  /** The role's MaxSessionDuration: longer DurationSeconds answer 400 ValidationError. */
  setMaxDuration(roleArn: string, seconds: number): void;
  /** Issue credentials that expire this many seconds from now, whatever the duration (null: normal). */
  setExpiresInS(seconds: number | null): void;
  /** Also serves on this unix socket path (mode 0666: a container user connects); closed by close(). */
  listenUnix(path: string): Promise<void>;
  close(): Promise<void>;
}

function xmlEscape(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

function randomUpperAlnum(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

function parseTags(form: Record<string, string>): { key: string; value: string }[] {
  const tags: { key: string; value: string }[] = [];
  for (let n = 1; form[`Tags.member.${n}.Key`] !== undefined; n++) {
    tags.push({ key: form[`Tags.member.${n}.Key`] ?? '', value: form[`Tags.member.${n}.Value`] ?? '' });
  }
  return tags;
}

/** The server's own identity (LOCAL_STS_CALLER) as GetCallerIdentity names it. */
const CALLER_ACCOUNT = '123456789012';
const CALLER_USER_ID = 'AIDALOCALSTSCALLER000';

const sha256Hex = (data: string): string => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer =>
  createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding, as SigV4's canonical query string wants it. */
const sigV4Encode = (value: string): string =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

interface SigV4Authorization {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

function parseAuthorization(header: string | undefined): SigV4Authorization | undefined {
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$/.exec(
      header ?? '',
    );
  if (!match) return undefined;
  const [, accessKeyId, date, region, service, signedHeaders, signature] = match as unknown as string[];
  return {
    accessKeyId: accessKeyId as string,
    date: date as string,
    region: region as string,
    service: service as string,
    signedHeaders: (signedHeaders as string).split(';'),
    signature: signature as string,
  };
}

/** The SigV4 signature of this request under `secret` (the algorithm AWS documents). */
function sigV4Signature(
  request: IncomingMessage,
  body: string,
  auth: SigV4Authorization,
  secret: string,
): string {
  const url = new URL(request.url ?? '/', 'http://local-sts');
  const query = [...url.searchParams]
    .map(([k, v]) => [sigV4Encode(k), sigV4Encode(v)] as const)
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headers = auth.signedHeaders
    .map((name) => {
      const value = request.headers[name];
      const text = Array.isArray(value) ? value.join(',') : (value ?? '');
      return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const payloadHash = (request.headers['x-amz-content-sha256'] as string | undefined) ?? sha256Hex(body);
  const canonical = [
    request.method ?? 'POST',
    url.pathname,
    query,
    headers,
    auth.signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const amzDate = (request.headers['x-amz-date'] as string | undefined) ?? '';
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  let key = hmac(`AWS4${secret}`, auth.date);
  for (const part of [auth.region, auth.service, 'aws4_request']) key = hmac(key, part);
  return createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

/**
 * A broker that calls the local STS as the server's own identity, with short backoffs so retries
 * do not slow the suite; `overrides` e.g. shorter timeouts for the failure cases.
 */
export function localStsBroker(
  sts: Pick<LocalSts, 'endpoint'>,
  overrides: Partial<StsCredentialBrokerOptions> = {},
): StsCredentialBroker {
  return new StsCredentialBroker({
    region: 'us-east-1',
    endpoint: sts.endpoint,
    credentials: LOCAL_STS_CALLER,
    baseBackoffMs: 5,
    maxBackoffMs: 20,
    ...overrides,
  });
}

export async function startLocalSts(): Promise<LocalSts> {
  const requests: LocalStsRequest[] = [];
  const reachedRoleLogic = new Set<LocalStsRequest>();
  const issued = new Map<string, LocalStsIssued>();
  const deniedRoles = new Set<string>();
  const maxDurations = new Map<string, number>();
  const hung = new Set<ServerResponse>();
  let throttle = 0;
  let fail = { count: 0, status: 500 };
  let hang = 0;
  let regionDisabled = false;
  let expiresInS: number | null = null;
  const roleIds = new Map<string, string>();
  const unixServers: { server: Server; path: string }[] = [];

  /** A role's id is fixed for the role, as in IAM. */
  function roleIdOf(roleArn: string): string {
    let id = roleIds.get(roleArn);
    if (!id) {
      id = `AROA${randomUpperAlnum(17)}`;
      roleIds.set(roleArn, id);
    }
    return id;
  }

  /**
   * Checks the request's SigV4 signature as STS does, against the server's own key or one this STS
   * issued (with its session token and expiry). Sends STS's error and returns undefined when it
   * fails; otherwise the caller (`found` for issued credentials).
   */
  function authenticate(
    request: IncomingMessage,
    body: string,
    response: ServerResponse,
    record: LocalStsRequest,
  ): { found?: LocalStsIssued } | undefined {
    const auth = parseAuthorization(record.authorization);
    const invalidToken = () =>
      sendError(
        response,
        record,
        403,
        'InvalidClientTokenId',
        'The security token included in the request is invalid.',
      );
    if (!auth) {
      sendError(
        response,
        record,
        400,
        'IncompleteSignature',
        'The request signature does not conform to AWS standards.',
      );
      return undefined;
    }
    const credentials =
      auth.accessKeyId === LOCAL_STS_CALLER.accessKeyId
        ? { secret: LOCAL_STS_CALLER.secretAccessKey, token: undefined, expiration: undefined }
        : (() => {
            const found = issued.get(auth.accessKeyId);
            return found
              ? {
                  secret: found.secretAccessKey,
                  token: found.sessionToken,
                  expiration: found.expiration,
                  found,
                }
              : undefined;
          })();
    if (!credentials || request.headers['x-amz-security-token'] !== credentials.token) {
      invalidToken();
      return undefined;
    }
    if (sigV4Signature(request, body, auth, credentials.secret) !== auth.signature) {
      sendError(
        response,
        record,
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
      );
      return undefined;
    }
    if (credentials.expiration && credentials.expiration.getTime() <= Date.now()) {
      sendError(
        response,
        record,
        400,
        'ExpiredToken',
        'The security token included in the request is expired',
      );
      return undefined;
    }
    return 'found' in credentials ? { found: credentials.found } : {};
  }

  function getCallerIdentity(
    request: IncomingMessage,
    body: string,
    response: ServerResponse,
    record: LocalStsRequest,
  ): void {
    const caller = authenticate(request, body, response, record);
    if (!caller) return;
    const found = caller.found;
    const account = found
      ? (/^arn:aws:sts::(\d{12}):/.exec(found.assumedRoleArn)?.[1] ?? '')
      : CALLER_ACCOUNT;
    const userId = found ? found.assumedRoleId : CALLER_USER_ID;
    const arn = found ? found.assumedRoleArn : `arn:aws:iam::${CALLER_ACCOUNT}:user/cove-server`;
    record.status = 200;
    const xml =
      `<GetCallerIdentityResponse xmlns="${NAMESPACE}">\n  <GetCallerIdentityResult>\n` +
      `    <Arn>${xmlEscape(arn)}</Arn>\n    <UserId>${xmlEscape(userId)}</UserId>\n` +
      `    <Account>${account}</Account>\n  </GetCallerIdentityResult>\n` +
      `  <ResponseMetadata>\n    <RequestId>${randomUUID()}</RequestId>\n  </ResponseMetadata>\n` +
      `</GetCallerIdentityResponse>\n`;
    response.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
    response.end(xml);
  }

  function sendError(
    response: ServerResponse,
    record: LocalStsRequest,
    status: number,
    code: string,
    message: string,
  ): void {
    record.status = status;
    record.errorCode = code;
    const type = status >= 500 ? 'Receiver' : 'Sender';
    const xml =
      `<ErrorResponse xmlns="${NAMESPACE}">\n` +
      `  <Error>\n    <Type>${type}</Type>\n    <Code>${xmlEscape(code)}</Code>\n` +
      `    <Message>${xmlEscape(message)}</Message>\n  </Error>\n` +
      `  <RequestId>${randomUUID()}</RequestId>\n</ErrorResponse>\n`;
    response.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
    response.end(xml);
  }

  function assumeRole(response: ServerResponse, record: LocalStsRequest): void {
    const { roleArn, roleSessionName } = record;
    if (!roleArn || !roleSessionName) {
      const missing = !roleArn ? 'roleArn' : 'roleSessionName';
      sendError(
        response,
        record,
        400,
        'ValidationError',
        `1 validation error detected: Value null at '${missing}' failed to satisfy constraint: Member must not be null`,
      );
      return;
    }
    if (!/^[\w+=,.@-]{2,64}$/.test(roleSessionName)) {
      sendError(
        response,
        record,
        400,
        'ValidationError',
        `1 validation error detected: Value '${roleSessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`,
      );
      return;
    }
    const duration = record.durationSeconds ?? DEFAULT_DURATION_S;
    if (duration < 900 || duration > STS_MAX_DURATION_S) {
      sendError(
        response,
        record,
        400,
        'ValidationError',
        `1 validation error detected: Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value ${duration < 900 ? 'greater than or equal to 900' : `less than or equal to ${STS_MAX_DURATION_S}`}`,
      );
      return;
    }
    const match = /^arn:aws:iam::(\d{12}):role\/(?:.*\/)?([\w+=,.@-]+)$/.exec(roleArn);
    if (!match) {
      sendError(response, record, 400, 'ValidationError', `${roleArn} is invalid`);
      return;
    }
    const [, account, roleName] = match as unknown as [string, string, string];
    if (deniedRoles.has(roleArn)) {
      sendError(
        response,
        record,
        403,
        'AccessDenied',
        `User: arn:aws:iam::${account}:user/cove-server is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
      );
      return;
    }
    if (duration > (maxDurations.get(roleArn) ?? STS_MAX_DURATION_S)) {
      sendError(
        response,
        record,
        400,
        'ValidationError',
        'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
      );
      return;
    }
    const accessKeyId = `ASIA${randomUpperAlnum(16)}`;
    const secretAccessKey = randomBytes(30).toString('base64').slice(0, 40);
    const sessionToken = `IQoJb3JpZ2luX2VjE${randomBytes(300).toString('base64')}`;
    const expiration = new Date(Date.now() + (expiresInS ?? duration) * 1000);
    expiration.setMilliseconds(0);
    const assumedRoleArn = `arn:aws:sts::${account}:assumed-role/${roleName}/${roleSessionName}`;
    const roleId = roleIdOf(roleArn);
    leakRecord.secret('aws-access-key-id', accessKeyId);
    leakRecord.secret('aws-secret-access-key', secretAccessKey);
    leakRecord.secret('aws-session-token', sessionToken);
    issued.set(accessKeyId, {
      accessKeyId,
      secretAccessKey,
      sessionToken,
      expiration,
      roleArn,
      roleSessionName,
      sourceIdentity: record.sourceIdentity,
      durationSeconds: duration,
      assumedRoleArn,
      assumedRoleId: `${roleId}:${roleSessionName}`,
    });
    record.status = 200;
    const sourceIdentity =
      record.sourceIdentity !== undefined
        ? `    <SourceIdentity>${xmlEscape(record.sourceIdentity)}</SourceIdentity>\n`
        : '';
    const packed = record.policy !== undefined || record.tags.length > 0 ? 6 : undefined;
    const xml =
      `<AssumeRoleResponse xmlns="${NAMESPACE}">\n  <AssumeRoleResult>\n` +
      sourceIdentity +
      `    <AssumedRoleUser>\n      <AssumedRoleId>${roleId}:${xmlEscape(roleSessionName)}</AssumedRoleId>\n` +
      `      <Arn>${xmlEscape(assumedRoleArn)}</Arn>\n    </AssumedRoleUser>\n` +
      `    <Credentials>\n      <AccessKeyId>${accessKeyId}</AccessKeyId>\n` +
      `      <SecretAccessKey>${xmlEscape(secretAccessKey)}</SecretAccessKey>\n` +
      `      <SessionToken>${xmlEscape(sessionToken)}</SessionToken>\n` +
      `      <Expiration>${expiration.toISOString().replace('.000Z', 'Z')}</Expiration>\n    </Credentials>\n` +
      (packed !== undefined ? `    <PackedPolicySize>${packed}</PackedPolicySize>\n` : '') +
      `  </AssumeRoleResult>\n  <ResponseMetadata>\n    <RequestId>${randomUUID()}</RequestId>\n` +
      `  </ResponseMetadata>\n</AssumeRoleResponse>\n`;
    response.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
    response.end(xml);
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    const form = Object.fromEntries(new URLSearchParams(body));
    const duration = form.DurationSeconds;
    const record: LocalStsRequest = {
      action: form.Action,
      version: form.Version,
      roleArn: form.RoleArn,
      roleSessionName: form.RoleSessionName,
      durationSeconds: duration === undefined ? undefined : Number(duration),
      sourceIdentity: form.SourceIdentity,
      policy: form.Policy,
      tags: parseTags(form),
      form,
      authorization: request.headers.authorization,
      callerAccessKeyId: parseAuthorization(request.headers.authorization)?.accessKeyId,
      status: 0,
    };
    requests.push(record);

    if (hang > 0) {
      hang--;
      hung.add(response);
      response.on('close', () => hung.delete(response));
      return;
    }
    if (request.method !== 'POST') {
      sendError(response, record, 400, 'InvalidAction', 'Only POST is supported by the local STS.');
      return;
    }
    if (!request.headers.authorization?.startsWith('AWS4-HMAC-SHA256 Credential=')) {
      sendError(
        response,
        record,
        403,
        'MissingAuthenticationToken',
        'Request is missing Authentication Token',
      );
      return;
    }
    if (regionDisabled) {
      sendError(
        response,
        record,
        403,
        'RegionDisabledException',
        'STS is not activated in this region for account:123456789012. Your account administrator can activate STS in this region using the IAM Console.',
      );
      return;
    }
    if (throttle > 0) {
      throttle--;
      sendError(response, record, 400, 'Throttling', 'Rate exceeded');
      return;
    }
    if (fail.count > 0) {
      fail.count--;
      const unavailable = fail.status === 503;
      sendError(
        response,
        record,
        fail.status,
        unavailable ? 'ServiceUnavailable' : 'InternalFailure',
        unavailable
          ? 'Service is unable to handle request.'
          : 'The request processing has failed because of an unknown error, exception or failure.',
      );
      return;
    }
    if (form.Version !== '2011-06-15') {
      sendError(
        response,
        record,
        400,
        'InvalidAction',
        `Could not find operation for version ${form.Version}`,
      );
      return;
    }
    if (form.Action === 'GetCallerIdentity') {
      getCallerIdentity(request, body, response, record);
      return;
    }
    if (form.Action !== 'AssumeRole') {
      sendError(response, record, 400, 'InvalidAction', `Could not find operation ${form.Action}`);
      return;
    }
    // Signed by the server's key (or credentials this STS issued), with the right secret.
    if (!authenticate(request, body, response, record)) return;
    reachedRoleLogic.add(record);
    assumeRole(response, record);
  }

  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  };
  const server = createServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    assumeRoleRequests: () => requests.filter((r) => reachedRoleLogic.has(r)),
    issued,
    denyRole: (roleArn) => void deniedRoles.add(roleArn),
    throttleNext: (n) => void (throttle = n),
    failNext: (n, status = 500) => void (fail = { count: n, status }),
    hangNext: (n) => void (hang = n),
    disableRegion: (disabled = true) => void (regionDisabled = disabled),
    setMaxDuration: (roleArn, seconds) => void maxDurations.set(roleArn, seconds),
    setExpiresInS: (seconds) => void (expiresInS = seconds),
    async listenUnix(path) {
      const unix = createServer(onRequest);
      await rm(path, { force: true });
      await new Promise<void>((resolve, reject) => {
        unix.once('error', reject);
        unix.listen(path, resolve);
      });
      unixServers.push({ server: unix, path });
      await chmod(path, 0o666);
    },
    async close() {
      for (const response of hung) response.destroy();
      for (const { server: each } of [...unixServers, { server }]) {
        each.closeAllConnections();
        await new Promise<void>((resolve) => each.close(() => resolve()));
      }
      await Promise.all(unixServers.map(({ path }) => rm(path, { force: true })));
    },
  };
}
