/**
 * `app.ssoPortal`: the IAM Identity Center portal API the SDKs call with an access token from
 * `app.ssoSignIn` (header `x-amz-sso_bearer_token`): the user's accounts, the roles (permission
 * sets) in one, and role credentials. Credentials come from `app.credentials` like a shell's: the
 * same broker and session policy, the assignment checked on every call, audited with
 * `purpose: "sso"`. A role the user does not have is 403 `ForbiddenException` ("No access"), as
 * AWS answers; an unknown account lists no roles.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CoveError } from '../errors.js';
import type { DirectoryService } from '../directory/directory-service.js';
import type { CredentialService } from '../credentials/credential-service.js';
import type { EffectiveAccessEntry } from '../directory/effective-access.js';
import { portalErrors } from './aws-api-error.js';
import { laptopConfig } from './laptop-config.js';
import type { LaptopConfigView } from '../protocol/sso.js';
import type { SsoCaller } from './sso-sign-in-service.js';

declare module 'fastify' {
  interface FastifyInstance {
    ssoPortal: SsoPortalService;
  }
}

export interface PageQuery {
  readonly nextToken?: string | undefined;
  readonly maxResults?: string | undefined;
}

export interface AccountInfo {
  readonly accountId: string;
  readonly accountName: string;
}

export interface RoleInfo {
  readonly roleName: string;
  readonly accountId: string;
}

export interface RoleCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  /** Epoch milliseconds, as the portal API sends it. */
  readonly expiration: number;
}

const defaultPageSize = 20;
const maxPageSize = 100;

/** One page of `items`; the next token is the offset, which is all a stateless page needs. */
function page<T>(items: readonly T[], query: PageQuery): { items: T[]; nextToken?: string } {
  const size = query.maxResults === undefined ? defaultPageSize : Number(query.maxResults);
  if (!Number.isInteger(size) || size < 1 || size > maxPageSize)
    throw portalErrors.invalidRequest(`max_result must be a whole number from 1 to ${maxPageSize}.`);
  let offset = 0;
  if (query.nextToken !== undefined) {
    const match = /^o(\d{1,6})$/.exec(Buffer.from(query.nextToken, 'base64url').toString('latin1'));
    if (!match) throw portalErrors.invalidRequest('next_token is not valid.');
    offset = Number(match[1]);
  }
  const slice = items.slice(offset, offset + size);
  const next = offset + size;
  return next < items.length
    ? { items: slice, nextToken: Buffer.from(`o${next}`, 'latin1').toString('base64url') }
    : { items: slice };
}

export class SsoPortalService {
  constructor(
    private readonly deps: {
      readonly directory: Pick<DirectoryService, 'effectiveAccess'>;
      readonly credentials: Pick<CredentialService, 'forAssignment'>;
      readonly minRemainingS: number;
      readonly publicUrl: string;
      readonly region: string;
    },
  ) {}

  /** The portal's "Use from your laptop" panel: the config text for the user's assignments. */
  async laptopConfigFor(userId: string): Promise<LaptopConfigView> {
    const access = await this.deps.directory.effectiveAccess(userId);
    const publicUrl = this.deps.publicUrl.replace(/\/+$/, '');
    return {
      startUrl: `${publicUrl}/start`,
      region: this.deps.region,
      config: laptopConfig({
        publicUrl,
        region: this.deps.region,
        profiles: access.map((e) => ({
          accountId: e.accountId,
          accountName: e.accountName,
          permissionSet: e.permissionSet,
        })),
      }),
    };
  }

  async listAccounts(
    caller: SsoCaller,
    query: PageQuery,
  ): Promise<{ accountList: AccountInfo[]; nextToken?: string }> {
    const access = await this.deps.directory.effectiveAccess(caller.user.id);
    const accounts = new Map<string, AccountInfo>();
    for (const entry of access)
      if (!accounts.has(entry.accountId))
        accounts.set(entry.accountId, { accountId: entry.accountId, accountName: entry.accountName });
    const sorted = [...accounts.values()].sort((a, b) => (a.accountId < b.accountId ? -1 : 1));
    const { items, nextToken } = page(sorted, query);
    return nextToken ? { accountList: items, nextToken } : { accountList: items };
  }

  async listAccountRoles(
    caller: SsoCaller,
    accountId: string | undefined,
    query: PageQuery,
  ): Promise<{ roleList: RoleInfo[]; nextToken?: string }> {
    if (!accountId) throw portalErrors.invalidRequest('account_id is required.');
    const access = await this.deps.directory.effectiveAccess(caller.user.id);
    const roles = access
      .filter((e: EffectiveAccessEntry) => e.accountId === accountId)
      .map((e) => ({ roleName: e.permissionSet, accountId: e.accountId }));
    const { items, nextToken } = page(roles, query);
    return nextToken ? { roleList: items, nextToken } : { roleList: items };
  }

  async getRoleCredentials(
    caller: SsoCaller,
    accountId: string | undefined,
    roleName: string | undefined,
    request?: FastifyRequest,
  ): Promise<{ roleCredentials: RoleCredentials }> {
    if (!accountId || !roleName) throw portalErrors.invalidRequest('account_id and role_name are required.');
    let issued;
    try {
      issued = await this.deps.credentials.forAssignment(caller.user.id, accountId, roleName, {
        purpose: 'sso',
        minRemainingS: this.deps.minRemainingS,
        ...(request ? { request } : {}),
      });
    } catch (error) {
      if (!(error instanceof CoveError)) throw error;
      if (error.code === 'COVE_ERR_CREDENTIALS_ACCESS') throw portalErrors.forbidden();
      // STS refused or cannot be reached: the same words a shell shows, in AWS's shapes.
      throw error.statusCode === 403
        ? portalErrors.forbidden(error.message)
        : portalErrors.tooManyRequests(error.message);
    }
    const { credentials } = issued;
    return {
      roleCredentials: {
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey,
        sessionToken: credentials.sessionToken,
        expiration: credentials.expiration.getTime(),
      },
    };
  }
}

export default fp(
  async (app: FastifyInstance) => {
    app.decorate(
      'ssoPortal',
      new SsoPortalService({
        directory: app.directory,
        credentials: app.credentials,
        minRemainingS: app.config.credentials.minRemainingS,
        publicUrl: app.config.publicUrl,
        region: app.config.defaultRegion,
      }),
    );
  },
  { name: 'sso-portal', dependencies: ['directory', 'credentials', 'sso-sign-in'] },
);
