/**
 * A local STS for tests: a node:http server on 127.0.0.1 speaking the real STS Query API
 * (form-encoded `Action=AssumeRole&Version=2011-06-15&...`, XML responses in the
 * `https://sts.amazonaws.com/doc/2011-06-15/` namespace, real error codes and statuses), so the
 * broker is exercised through the real `@aws-sdk/client-sts` with only an endpoint override.
 *
 * It checks that a request carries an AWS SigV4 `Authorization` header but does not verify the
 * signature (like s3rver: tests against it cannot catch signing bugs). Roles allow 12 h unless
 * `setMaxDuration` says otherwise (real roles default to 1 h; 12 h keeps tests about other things
 * free of duration notices).
 *
 *   const sts = await startLocalSts();
 *   const broker = new StsCredentialBroker({ endpoint: sts.endpoint, credentials: LOCAL_STS_CALLER });
 *   ...; sts.requests[0].roleSessionName; sts.issued.get(accessKeyId); await sts.close();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';

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

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
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
    const roleId = `AROA${randomUpperAlnum(17)}`;
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
    if (form.Action !== 'AssumeRole') {
      sendError(response, record, 400, 'InvalidAction', `Could not find operation ${form.Action}`);
      return;
    }
    reachedRoleLogic.add(record);
    assumeRole(response, record);
  }

  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
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
    async close() {
      for (const response of hung) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
