/**
 * SCIM 2.0 provisioning (RFC 7643/7644) of Cove users and groups by an identity provider's
 * connector (Okta, Entra ID). Each SCIM client has its own bearer token (kept hashed, shown once,
 * revocable) naming the OpenID provider its users sign in with. Users it creates are that
 * provider's (`source` = `oidc:<provider>`): the first OpenID sign-in with the same user name binds
 * them (server/auth/oidc-service.ts). A client sees and changes only its provider's users and the
 * groups its provider's clients made; a local user of the same name is never merged (409).
 *
 * Every change goes through the DirectoryService, so its rules hold here too (name rules,
 * look-alike names, the last administrator) and `active: false` ends the user's sessions and open
 * terminals at once. Every change and every refusal is audited, never with a token.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { audit } from '../audit.js';
import { CoveError, errors } from '../errors.js';
import { normalizeName } from '../protocol/api.js';
import { hashToken, newToken } from '../auth/session-service.js';
import { displayName, validateEmail, validateUsername } from '../directory/directory-validation.js';
import type { GroupRecord, ScimResourceRecord, ScimTokenRecord, UserRecord } from '../store/store.js';
import { ScimError, scimErrors } from './scim-error.js';
import { parseFilter, type EqualityFilter } from './scim-filter.js';
import {
  resourceTypes,
  schemaDefinitions,
  schemaUrns,
  scimLimits,
  serviceProviderConfig,
} from './scim-schema.js';

declare module 'fastify' {
  interface FastifyInstance {
    scim: ScimService;
  }
}

export const tokenPrefix = 'cove_scim_';
/** The throttle scope of failed SCIM token checks, per client address. */
export const authScope = 'scim.ip';

/** The authenticated SCIM client of one request. */
export interface ScimClient {
  readonly token: ScimTokenRecord;
}

export interface ScimTokenView {
  readonly id: string;
  readonly name: string;
  readonly providerId: string;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
}

export interface ListQuery {
  readonly filter?: string | undefined;
  readonly startIndex?: string | undefined;
  readonly count?: string | undefined;
  readonly excludedAttributes?: string | undefined;
}

type Json = Record<string, unknown>;

const iso = (ms: number): string => new Date(ms).toISOString();
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** User attributes Cove does not keep: accepted (IdPs send them all) and left out of answers. */
const ignoredUserAttributes = new Set([
  'name',
  'displayname',
  'nickname',
  'title',
  'locale',
  'preferredlanguage',
  'timezone',
  'usertype',
  'profileurl',
  'phonenumbers',
  'addresses',
  'roles',
  'photos',
  'ims',
  'entitlements',
  'x509certificates',
  'password',
  'groups',
]);

function isIgnoredUserPath(path: string): boolean {
  const lower = path.toLowerCase();
  if (lower.startsWith(schemaUrns.enterpriseUser.toLowerCase())) return true;
  const head = lower.replace(/^urn:ietf:params:scim:schemas:core:2\.0:user:/, '').split(/[.[]/)[0] ?? '';
  return ignoredUserAttributes.has(head);
}

/** `true`/`false`, and Entra's `"True"`/`"False"` strings. */
function booleanValue(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw scimErrors.invalidValue(`${field} must be true or false.`);
}

function stringValue(value: unknown, field: string, max = 1024): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max)
    throw scimErrors.invalidValue(`${field} must be a non-empty string of at most ${max} characters.`);
  return value;
}

function checkSchemas(body: Json, core: string, allowed: readonly string[]): void {
  const schemas = body.schemas;
  if (!Array.isArray(schemas) || !schemas.every((s) => typeof s === 'string'))
    throw scimErrors.invalidSyntax(`"schemas" must be a list of schema URNs that includes ${core}.`);
  const unknown = (schemas as string[]).filter(
    (s) => !allowed.some((a) => a.toLowerCase() === s.toLowerCase()),
  );
  if (unknown.length > 0)
    throw scimErrors.invalidSyntax(
      `Unknown schema URN ${JSON.stringify(unknown[0]?.slice(0, 200))}. Cove accepts ${allowed.join(', ')}.`,
    );
  if (!(schemas as string[]).some((s) => s.toLowerCase() === core.toLowerCase()))
    throw scimErrors.invalidSyntax(`"schemas" must include ${core}.`);
}

/** The primary email of a SCIM `emails` list (or the first), validated; null when none. */
function primaryEmail(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (!Array.isArray(value)) throw scimErrors.invalidValue('emails must be a list of {"value": "…"}.');
  const entries = value.filter(isObject);
  const chosen = entries.find((e) => e.primary === true || e.primary === 'True') ?? entries[0];
  if (chosen === undefined) return null;
  return emailValue(chosen.value);
}

function emailValue(value: unknown): string | null {
  if (value === null) return null;
  try {
    return validateEmail(stringValue(value, 'emails.value'), 'emails.value');
  } catch (error) {
    if (error instanceof CoveError) throw scimErrors.invalidValue(error.message);
    throw error;
  }
}

function externalIdValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return stringValue(value, 'externalId', scimLimits.maxExternalIdChars);
}

/** Directory refusals in SCIM's words: name clashes are `uniqueness`, the rest `invalidValue`. */
function fromDirectory(error: unknown): unknown {
  if (!(error instanceof CoveError) || error instanceof ScimError) return error;
  if (error.statusCode === 409 || error.code === 'COVE_ERR_DIRECTORY_NAME_LOOKALIKE')
    return error.code === 'COVE_ERR_CONFLICT' &&
      /last enabled administrator|no enabled administrator/.test(error.message)
      ? new ScimError(409, error.message, undefined, 'last_admin')
      : scimErrors.uniqueness(error.message);
  if (error.statusCode === 400) return scimErrors.invalidValue(error.message);
  if (error.statusCode === 404) return scimErrors.notFound('That resource');
  return error;
}

async function directoryCall<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw fromDirectory(error);
  }
}

interface UserState {
  active: boolean;
  email: string | null;
  externalId: string | null;
}

interface PatchOperation {
  readonly op: 'add' | 'replace' | 'remove';
  readonly path: string | undefined;
  readonly value: unknown;
}

function patchOperations(body: unknown): PatchOperation[] {
  if (!isObject(body)) throw scimErrors.invalidSyntax('The body must be a PatchOp JSON object.');
  checkSchemas(body, schemaUrns.patchOp, [schemaUrns.patchOp]);
  const operations = body.Operations ?? body.operations;
  if (!Array.isArray(operations) || operations.length === 0)
    throw scimErrors.invalidSyntax('"Operations" must be a non-empty list.');
  if (operations.length > scimLimits.maxOperations)
    throw scimErrors.tooLarge(
      `One PATCH may carry at most ${scimLimits.maxOperations} operations; this one has ${operations.length}. Send them in several requests.`,
    );
  return operations.map((raw: unknown, i) => {
    if (!isObject(raw)) throw scimErrors.invalidSyntax(`Operations[${i}] must be an object.`);
    const op = typeof raw.op === 'string' ? raw.op.toLowerCase() : '';
    if (op !== 'add' && op !== 'replace' && op !== 'remove')
      throw scimErrors.invalidSyntax(`Operations[${i}].op must be add, replace or remove.`);
    if (raw.path !== undefined && typeof raw.path !== 'string')
      throw scimErrors.invalidPath(`Operations[${i}].path must be a string.`);
    return { op, path: raw.path as string | undefined, value: raw.value };
  });
}

/** Member ids of a `members` value (`[{"value": "<id>"}]`). */
function memberIds(value: unknown): string[] {
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  return list.map((m, i) => {
    if (!isObject(m) || typeof m.value !== 'string' || m.value.length === 0 || m.value.length > 200)
      throw scimErrors.invalidValue(`members[${i}] must be {"value": "<user id>"}.`);
    return m.value;
  });
}

function countMembers(operations: readonly PatchOperation[]): number {
  let n = 0;
  for (const o of operations) {
    if (Array.isArray(o.value)) n += o.value.length;
    else if (isObject(o.value) && Array.isArray(o.value.members)) n += o.value.members.length;
  }
  return n;
}

function tooManyMembers(n: number): ScimError {
  return scimErrors.tooLarge(
    `One request may name at most ${scimLimits.maxMembers} members; this one names ${n}. Send the members in several PATCH requests.`,
  );
}

export class ScimService {
  constructor(private readonly app: FastifyInstance) {}

  private get store() {
    return this.app.store;
  }

  private location(kind: 'Users' | 'Groups', id: string): string {
    return `${this.app.config.publicUrl}/scim/v2/${kind}/${encodeURIComponent(id)}`;
  }

  // ---- Tokens (admin console) ----

  tokenView(t: ScimTokenRecord): ScimTokenView {
    return {
      id: t.id,
      name: t.name,
      providerId: t.providerId,
      createdAt: iso(t.createdAt),
      lastUsedAt: t.lastUsedAt === null ? null : iso(t.lastUsedAt),
      revokedAt: t.revokedAt === null ? null : iso(t.revokedAt),
    };
  }

  async listTokens(): Promise<ScimTokenView[]> {
    return (await this.store.scimTokens.list()).map((t) => this.tokenView(t));
  }

  /** Makes a token; its value is in the answer only (the store keeps its SHA-256). */
  async createToken(
    request: FastifyRequest,
    input: { name: string; providerId: string },
  ): Promise<{ token: ScimTokenView; secret: string }> {
    const name = displayName(input.name);
    if (name.length === 0 || name.length > scimLimits.maxTokenNameChars)
      throw errors.badRequest(
        `name: give the token a name of 1 to ${scimLimits.maxTokenNameChars} characters.`,
        {
          field: 'name',
        },
      );
    const providers = this.app.config.auth.oidc.map((p) => p.id);
    if (!providers.includes(input.providerId))
      throw errors.badRequest(
        providers.length === 0
          ? 'providerId: SCIM users sign in through an identity provider, and none is configured. Add one under auth.oidc first (README: Sign in with your IdP).'
          : `providerId: "${input.providerId}" is not a configured identity provider (auth.oidc ids: ${providers.join(', ')}).`,
        { field: 'providerId' },
      );
    const secret = `${tokenPrefix}${newToken()}`;
    const token = await this.store.scimTokens.create({
      name,
      tokenHash: hashToken(secret),
      providerId: input.providerId,
    });
    await audit(this.store, request, {
      action: 'admin.scim_token.created',
      target: token.id,
      details: { name, providerId: token.providerId },
    });
    return { token: this.tokenView(token), secret };
  }

  async revokeToken(request: FastifyRequest, id: string): Promise<ScimTokenView> {
    const token = await this.store.scimTokens.get(id);
    if (!token) throw errors.notFound(`SCIM token ${id}`);
    if (!(await this.store.scimTokens.revoke(id, this.app.now())))
      throw errors.conflict(`The SCIM token "${token.name}" is already revoked.`);
    await audit(this.store, request, {
      action: 'admin.scim_token.revoked',
      target: id,
      details: { name: token.name, providerId: token.providerId },
    });
    return this.tokenView((await this.store.scimTokens.get(id)) ?? token);
  }

  // ---- Authentication and audit ----

  /**
   * The client behind `Authorization: Bearer cove_scim_…`; a session cookie never counts. Failed
   * checks count per client address (in the store, across instances); past the limit the address
   * waits (429), like sign-ins.
   */
  async authenticate(authorization: string | undefined, ip: string): Promise<ScimClient> {
    const now = this.app.now();
    const waitMs = await this.store.throttles.retryAfter(authScope, ip, now);
    if (waitMs > 0) throw scimErrors.throttled(Math.ceil(waitMs / 1000));
    try {
      return await this.checkToken(authorization);
    } catch (error) {
      if (error instanceof ScimError && error.status === 401) {
        const { auth } = this.app.config;
        await this.store.throttles.recordFailure(authScope, ip, now, {
          allowed: scimLimits.maxAuthFailuresPerIp,
          quietMs: Math.max(auth.throttleWindowS, auth.throttleMaxDelayS) * 1000,
          baseDelayMs: auth.throttleBaseDelayS * 1000,
          maxDelayMs: auth.throttleMaxDelayS * 1000,
        });
      }
      throw error;
    }
  }

  private async checkToken(authorization: string | undefined): Promise<ScimClient> {
    const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
    if (!match?.[1])
      throw scimErrors.unauthorized(authorization === undefined ? 'no_token' : 'malformed_header');
    const value = match[1];
    if (!value.startsWith(tokenPrefix) || value.length > 200)
      throw scimErrors.unauthorized('not_a_scim_token');
    const token = await this.store.scimTokens.getByHash(hashToken(value));
    if (!token) throw scimErrors.unauthorized('unknown_token');
    if (token.revokedAt !== null) throw scimErrors.unauthorized('revoked_token');
    await this.store.scimTokens.touch(token.id, this.app.now());
    return { token };
  }

  async refused(request: FastifyRequest, client: ScimClient | undefined, error: ScimError): Promise<void> {
    await audit(this.store, request, {
      action: 'scim.refused',
      target: null,
      actor: { id: null, name: client ? `scim:${client.token.name}` : null },
      details: {
        reason: error.reason,
        status: error.status,
        method: request.method,
        route: request.routeOptions.url ?? null,
        ...(client ? { tokenId: client.token.id } : {}),
        detail: error.detail.slice(0, 300),
      },
    });
  }

  private async record(
    request: FastifyRequest,
    client: ScimClient,
    action: string,
    target: string,
    details: Record<string, unknown>,
  ): Promise<void> {
    await audit(this.store, request, {
      action: `scim.${action}`,
      target,
      actor: { id: null, name: `scim:${client.token.name}` },
      details: { tokenId: client.token.id, providerId: client.token.providerId, ...details },
    });
  }

  // ---- Users ----

  private source(client: ScimClient): string {
    return `oidc:${client.token.providerId}`;
  }

  private async scopedUser(client: ScimClient, id: string): Promise<UserRecord> {
    const user = await this.store.users.get(id);
    if (!user || user.source !== this.source(client)) throw scimErrors.notFound(`User ${id}`);
    return user;
  }

  private userResource(user: UserRecord, meta: ScimResourceRecord | undefined): Json {
    return {
      schemas: [schemaUrns.user],
      id: user.id,
      ...(meta?.externalId ? { externalId: meta.externalId } : {}),
      userName: user.username,
      active: !user.disabled,
      emails: user.email === null ? [] : [{ value: user.email, type: 'work', primary: true }],
      meta: {
        resourceType: 'User',
        created: iso(meta?.createdAt ?? user.createdAt),
        lastModified: iso(meta?.updatedAt ?? user.createdAt),
        location: this.location('Users', user.id),
      },
    };
  }

  private async userAnswer(user: UserRecord): Promise<Json> {
    return this.userResource(user, await this.store.scimResources.get('user', user.id));
  }

  async getUser(client: ScimClient, id: string): Promise<Json> {
    return this.userAnswer(await this.scopedUser(client, id));
  }

  async listUsers(client: ScimClient, query: ListQuery): Promise<Json> {
    const filter =
      query.filter === undefined ? undefined : parseFilter(query.filter, ['userName', 'externalId', 'id']);
    const source = this.source(client);
    const metas = new Map(
      (await this.store.scimResources.list('user', client.token.providerId)).map((r) => [r.resourceId, r]),
    );
    const users = (await this.store.users.list())
      .filter((u) => u.source === source)
      .filter((u) => !filter || matchesUser(u, metas.get(u.id), filter))
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    return this.page(users, query, (u) => this.userResource(u, metas.get(u.id)));
  }

  /** RFC 7644 §3.4.2.4: 1-based `startIndex`, `count` capped at the maximum (0: totals only). */
  private async page<T>(
    items: readonly T[],
    query: ListQuery,
    view: (item: T) => Json | Promise<Json>,
  ): Promise<Json> {
    const startIndex = Math.max(1, integer(query.startIndex, 'startIndex') ?? 1);
    const count = Math.min(
      scimLimits.maxCount,
      Math.max(0, integer(query.count, 'count') ?? scimLimits.maxCount),
    );
    const shown = await Promise.all(items.slice(startIndex - 1, startIndex - 1 + count).map(view));
    return {
      schemas: [schemaUrns.listResponse],
      totalResults: items.length,
      startIndex,
      itemsPerPage: shown.length,
      Resources: shown,
    };
  }

  private parseUser(body: unknown): { userName: string; state: UserState; ignored: string[] } {
    if (!isObject(body)) throw scimErrors.invalidSyntax('The body must be a SCIM User JSON object.');
    checkSchemas(body, schemaUrns.user, [schemaUrns.user, schemaUrns.enterpriseUser]);
    if (typeof body.userName !== 'string' || body.userName.trim() === '')
      throw scimErrors.invalidValue('userName is required.');
    let userName: string;
    try {
      userName = validateUsername(body.userName, 'userName');
    } catch (error) {
      throw fromDirectory(error);
    }
    return {
      userName,
      state: {
        active: body.active === undefined ? true : booleanValue(body.active, 'active'),
        email: primaryEmail(body.emails),
        externalId: externalIdValue(body.externalId),
      },
      ignored: 'password' in body ? ['password'] : [],
    };
  }

  async createUser(request: FastifyRequest, client: ScimClient, body: unknown): Promise<Json> {
    const { userName, state, ignored } = this.parseUser(body);
    const existing = await this.store.users.getByUsername(userName);
    if (existing)
      throw existing.source === this.source(client)
        ? scimErrors.uniqueness(`A user with userName "${userName}" already exists (id ${existing.id}).`)
        : scimErrors.uniqueness(
            `Cove already has a user named "${userName}" that this SCIM client does not manage (a local user, or another identity provider's). Cove never merges them: rename one of them, or ask a Cove administrator.`,
          );
    const { user } = await directoryCall(
      this.app.directory.createUser({
        username: userName,
        ...(state.email !== null ? { email: state.email } : {}),
        identityProvider: client.token.providerId,
      }),
    );
    const created = state.active
      ? user
      : ((await this.store.users.update(user.id, { disabled: true })) ?? user);
    const meta = await this.store.scimResources.save(
      {
        kind: 'user',
        resourceId: user.id,
        providerId: client.token.providerId,
        externalId: state.externalId,
        tokenId: client.token.id,
      },
      this.app.now(),
    );
    await this.record(request, client, 'user.created', user.id, {
      userName,
      active: state.active,
      ...(ignored.length > 0 ? { ignored } : {}),
    });
    return this.userResource(created, meta);
  }

  async replaceUser(request: FastifyRequest, client: ScimClient, id: string, body: unknown): Promise<Json> {
    const user = await this.scopedUser(client, id);
    const { userName, state } = this.parseUser(body);
    if (userName !== user.username)
      throw scimErrors.mutability(
        `userName cannot change in Cove (it is "${user.username}"). Deprovision the user and provision the new name.`,
      );
    return this.applyUser(request, client, user, state);
  }

  async patchUser(request: FastifyRequest, client: ScimClient, id: string, body: unknown): Promise<Json> {
    const operations = patchOperations(body);
    const user = await this.scopedUser(client, id);
    const meta = await this.store.scimResources.get('user', id);
    const state: UserState = {
      active: !user.disabled,
      email: user.email,
      externalId: meta?.externalId ?? null,
    };
    for (const [i, o] of operations.entries()) {
      if (o.path !== undefined) {
        applyUserPath(state, user, o.op, o.path, o.value, i);
        continue;
      }
      if (o.op === 'remove') throw scimErrors.noTarget(`Operations[${i}]: remove needs a path.`);
      if (!isObject(o.value))
        throw scimErrors.invalidValue(
          `Operations[${i}]: without a path, value must be an object of attributes.`,
        );
      for (const [key, value] of Object.entries(o.value)) applyUserPath(state, user, o.op, key, value, i);
    }
    return this.applyUser(request, client, user, state);
  }

  private async applyUser(
    request: FastifyRequest,
    client: ScimClient,
    user: UserRecord,
    state: UserState,
  ): Promise<Json> {
    const actor = `scim:${client.token.id}`;
    const { user: updated, changes } = await directoryCall(
      this.app.directory.updateUser(actor, user.id, { disabled: !state.active, email: state.email }),
    );
    const before = await this.store.scimResources.get('user', user.id);
    const meta = await this.store.scimResources.save(
      {
        kind: 'user',
        resourceId: user.id,
        providerId: client.token.providerId,
        externalId: state.externalId,
        tokenId: client.token.id,
      },
      this.app.now(),
    );
    const changed = { ...changes, ...(before?.externalId !== state.externalId ? { externalId: true } : {}) };
    if (Object.keys(changed).length > 0)
      await this.record(
        request,
        client,
        changes.disabled === true ? 'user.disabled' : 'user.updated',
        user.id,
        { userName: user.username, changes: changed },
      );
    return this.userResource(updated, meta);
  }

  async deleteUser(request: FastifyRequest, client: ScimClient, id: string): Promise<void> {
    const user = await this.scopedUser(client, id);
    await directoryCall(this.app.directory.deleteUser(`scim:${client.token.id}`, id));
    await this.store.scimResources.delete('user', id);
    await this.record(request, client, 'user.deleted', id, { userName: user.username });
  }

  // ---- Groups ----

  private async scopedGroup(
    client: ScimClient,
    id: string,
  ): Promise<{ group: GroupRecord; meta: ScimResourceRecord }> {
    const meta = await this.store.scimResources.get('group', id);
    const group = meta?.providerId === client.token.providerId ? await this.store.groups.get(id) : undefined;
    if (!group || !meta) throw scimErrors.notFound(`Group ${id}`);
    return { group, meta };
  }

  /** Members this client may see and set: its provider's users. */
  private async scopedMembers(client: ScimClient, groupId: string): Promise<UserRecord[]> {
    const source = this.source(client);
    const ids = new Set(await this.store.groups.members(groupId));
    return (await this.store.users.list()).filter((u) => ids.has(u.id) && u.source === source);
  }

  private async groupResource(
    client: ScimClient,
    group: GroupRecord,
    meta: ScimResourceRecord,
    withMembers: boolean,
  ): Promise<Json> {
    const members = withMembers ? await this.scopedMembers(client, group.id) : [];
    return {
      schemas: [schemaUrns.group],
      id: group.id,
      ...(meta.externalId ? { externalId: meta.externalId } : {}),
      displayName: group.name,
      ...(withMembers
        ? {
            members: members.map((u) => ({
              value: u.id,
              display: u.username,
              $ref: this.location('Users', u.id),
            })),
          }
        : {}),
      meta: {
        resourceType: 'Group',
        created: iso(meta.createdAt),
        lastModified: iso(meta.updatedAt),
        location: this.location('Groups', group.id),
      },
    };
  }

  async getGroup(client: ScimClient, id: string, query: ListQuery): Promise<Json> {
    const { group, meta } = await this.scopedGroup(client, id);
    return this.groupResource(client, group, meta, !excludesMembers(query));
  }

  async listGroups(client: ScimClient, query: ListQuery): Promise<Json> {
    const filter =
      query.filter === undefined ? undefined : parseFilter(query.filter, ['displayName', 'externalId', 'id']);
    const metas = await this.store.scimResources.list('group', client.token.providerId);
    const groups = new Map((await this.store.groups.list()).map((g) => [g.id, g]));
    const found = metas
      .flatMap((meta) => {
        const group = groups.get(meta.resourceId);
        return group ? [{ group, meta }] : [];
      })
      .filter(({ group, meta }) => !filter || matchesGroup(group, meta, filter))
      .sort((a, b) => a.meta.createdAt - b.meta.createdAt || (a.group.id < b.group.id ? -1 : 1));
    const withMembers = !excludesMembers(query);
    return this.page(found, query, ({ group, meta }) => this.groupResource(client, group, meta, withMembers));
  }

  private parseGroup(body: unknown): {
    name: string;
    externalId: string | null;
    members: string[] | undefined;
  } {
    if (!isObject(body)) throw scimErrors.invalidSyntax('The body must be a SCIM Group JSON object.');
    checkSchemas(body, schemaUrns.group, [schemaUrns.group, schemaUrns.entraGroup]);
    if (Array.isArray(body.members) && body.members.length > scimLimits.maxMembers)
      throw tooManyMembers(body.members.length);
    return {
      name: stringValue(body.displayName, 'displayName', 256),
      externalId: externalIdValue(body.externalId),
      members: body.members === undefined ? undefined : memberIds(body.members),
    };
  }

  /** Every id must be one of this client's users. */
  private async assertScopedUsers(client: ScimClient, ids: readonly string[]): Promise<void> {
    const source = this.source(client);
    const users = new Map((await this.store.users.list()).map((u) => [u.id, u]));
    const bad = ids.filter((id) => users.get(id)?.source !== source);
    if (bad.length > 0)
      throw scimErrors.invalidValue(
        `members: ${bad.length} value(s) are not users this client manages, e.g. ${JSON.stringify(bad[0]?.slice(0, 100))}.`,
      );
  }

  async createGroup(request: FastifyRequest, client: ScimClient, body: unknown): Promise<Json> {
    const input = this.parseGroup(body);
    const key = normalizeName(input.name);
    const clash = (await this.store.groups.list()).find((g) => normalizeName(g.name) === key);
    if (clash)
      throw scimErrors.uniqueness(
        (await this.store.scimResources.get('group', clash.id))?.providerId === client.token.providerId
          ? `A group with displayName "${clash.name}" already exists (id ${clash.id}).`
          : `Cove already has a group named "${clash.name}" that this SCIM client does not manage. Cove never merges them: rename one of them.`,
      );
    if (input.members) await this.assertScopedUsers(client, input.members);
    const group = await directoryCall(this.app.directory.createGroup({ name: input.name }));
    const meta = await this.store.scimResources.save(
      {
        kind: 'group',
        resourceId: group.id,
        providerId: client.token.providerId,
        externalId: input.externalId,
        tokenId: client.token.id,
      },
      this.app.now(),
    );
    if (input.members && input.members.length > 0)
      await directoryCall(this.app.directory.setGroupMembers(group.id, input.members));
    await this.record(request, client, 'group.created', group.id, {
      displayName: group.name,
      members: input.members?.length ?? 0,
    });
    return this.groupResource(client, group, meta, true);
  }

  async replaceGroup(request: FastifyRequest, client: ScimClient, id: string, body: unknown): Promise<Json> {
    const { group } = await this.scopedGroup(client, id);
    const input = this.parseGroup(body);
    return this.applyGroup(request, client, group, {
      name: input.name,
      externalId: input.externalId,
      members: input.members ?? [],
    });
  }

  /** 204 on success (RFC 7644 §3.5.2 lets the server answer a PATCH with no body). */
  async patchGroup(request: FastifyRequest, client: ScimClient, id: string, body: unknown): Promise<void> {
    const operations = patchOperations(body);
    const members = countMembers(operations);
    if (members > scimLimits.maxMembers) throw tooManyMembers(members);
    const { group, meta } = await this.scopedGroup(client, id);
    let name = group.name;
    let externalId = meta.externalId;
    const current = new Set((await this.scopedMembers(client, id)).map((u) => u.id));
    const wanted = new Set(current);
    const setMembers = (op: PatchOperation['op'], ids: readonly string[] | undefined) => {
      if (op === 'replace') wanted.clear();
      if (op === 'remove' && ids === undefined) wanted.clear();
      for (const m of ids ?? []) {
        if (op === 'remove') wanted.delete(m);
        else wanted.add(m);
      }
    };
    const apply = (op: PatchOperation['op'], path: string, value: unknown, i: number) => {
      const lower = path.toLowerCase().replace(/^urn:ietf:params:scim:schemas:core:2\.0:group:/, '');
      if (lower === 'displayname') {
        if (op === 'remove') throw scimErrors.mutability('displayName cannot be removed.');
        name = stringValue(value, 'displayName', 256);
      } else if (lower === 'externalid') {
        externalId = op === 'remove' ? null : externalIdValue(value);
      } else if (lower === 'id') {
        if (value !== group.id) throw scimErrors.mutability('id cannot change.');
      } else if (lower === 'members') {
        setMembers(
          op,
          op === 'remove' && (value === undefined || value === null) ? undefined : memberIds(value),
        );
      } else if (lower.startsWith('members[')) {
        const inner = /^members\[(.*)\]$/i.exec(path)?.[1];
        if (op !== 'remove' || inner === undefined)
          throw scimErrors.invalidPath(
            `Operations[${i}]: a members[…] path is supported only to remove a member.`,
          );
        const filter = parseFilter(inner, ['value']);
        setMembers('remove', [filter.value]);
      } else
        throw scimErrors.invalidPath(
          `Operations[${i}]: Cove groups have no attribute "${path.slice(0, 100)}".`,
        );
    };
    for (const [i, o] of operations.entries()) {
      if (o.path !== undefined) apply(o.op, o.path, o.value, i);
      else if (o.op === 'remove') throw scimErrors.noTarget(`Operations[${i}]: remove needs a path.`);
      else if (!isObject(o.value))
        throw scimErrors.invalidValue(
          `Operations[${i}]: without a path, value must be an object of attributes.`,
        );
      else for (const [key, value] of Object.entries(o.value)) apply(o.op, key, value, i);
    }
    await this.applyGroup(request, client, group, { name, externalId, members: [...wanted] });
  }

  private async applyGroup(
    request: FastifyRequest,
    client: ScimClient,
    group: GroupRecord,
    next: { name: string; externalId: string | null; members: readonly string[] },
  ): Promise<Json> {
    const scoped = new Set((await this.scopedMembers(client, group.id)).map((u) => u.id));
    const added = next.members.filter((m) => !scoped.has(m));
    if (added.length > 0) await this.assertScopedUsers(client, added);
    const removed = [...scoped].filter((m) => !next.members.includes(m));
    let updated = group;
    if (next.name !== group.name)
      updated = await directoryCall(this.app.directory.updateGroup(group.id, { name: next.name }));
    if (added.length > 0 || removed.length > 0) {
      // Members this client does not manage (local users an admin added) stay as they are.
      const others = (await this.store.groups.members(group.id)).filter((m) => !scoped.has(m));
      await directoryCall(
        this.app.directory.setGroupMembers(group.id, [...others, ...new Set(next.members)]),
      );
    }
    const meta = await this.store.scimResources.save(
      {
        kind: 'group',
        resourceId: group.id,
        providerId: client.token.providerId,
        externalId: next.externalId,
        tokenId: client.token.id,
      },
      this.app.now(),
    );
    await this.record(request, client, 'group.updated', group.id, {
      displayName: updated.name,
      ...(updated.name !== group.name ? { renamedFrom: group.name } : {}),
      membersAdded: added.length,
      membersRemoved: removed.length,
    });
    return this.groupResource(client, updated, meta, true);
  }

  async deleteGroup(request: FastifyRequest, client: ScimClient, id: string): Promise<void> {
    const { group } = await this.scopedGroup(client, id);
    await directoryCall(this.app.directory.deleteGroup(id));
    await this.store.scimResources.delete('group', id);
    await this.record(request, client, 'group.deleted', id, { displayName: group.name });
  }

  // ---- Discovery (RFC 7644 §4) ----

  serviceProviderConfig(): Json {
    return serviceProviderConfig(this.app.config.publicUrl);
  }

  resourceTypes(): Json[] {
    return resourceTypes(this.app.config.publicUrl);
  }

  schemas(): Json[] {
    return schemaDefinitions(this.app.config.publicUrl);
  }
}

function integer(value: string | undefined, field: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^-?\d{1,9}$/.test(value)) throw scimErrors.invalidValue(`${field} must be an integer.`);
  return Number(value);
}

function excludesMembers(query: ListQuery): boolean {
  return (query.excludedAttributes ?? '').split(',').some((a) => a.trim().toLowerCase() === 'members');
}

function matchesUser(
  user: UserRecord,
  meta: ScimResourceRecord | undefined,
  filter: EqualityFilter,
): boolean {
  switch (filter.attribute) {
    case 'userName':
      return user.username === normalizeName(filter.value);
    case 'externalId':
      return meta?.externalId === filter.value;
    default:
      return user.id === filter.value;
  }
}

function matchesGroup(group: GroupRecord, meta: ScimResourceRecord, filter: EqualityFilter): boolean {
  switch (filter.attribute) {
    case 'displayName':
      return normalizeName(group.name) === normalizeName(filter.value);
    case 'externalId':
      return meta.externalId === filter.value;
    default:
      return group.id === filter.value;
  }
}

function applyUserPath(
  state: UserState,
  user: UserRecord,
  op: PatchOperation['op'],
  path: string,
  value: unknown,
  i: number,
): void {
  const lower = path.toLowerCase().replace(/^urn:ietf:params:scim:schemas:core:2\.0:user:/, '');
  if (lower === 'active') {
    if (op === 'remove') throw scimErrors.mutability('active cannot be removed; set it to false.');
    state.active = booleanValue(value, 'active');
  } else if (lower === 'externalid') {
    state.externalId = op === 'remove' ? null : externalIdValue(value);
  } else if (lower === 'username') {
    if (op === 'remove' || typeof value !== 'string' || normalizeName(value) !== user.username)
      throw scimErrors.mutability(
        `userName cannot change in Cove (it is "${user.username}"). Deprovision the user and provision the new name.`,
      );
  } else if (lower === 'emails') {
    state.email = op === 'remove' ? null : primaryEmail(value);
  } else if (/^emails\[(type eq "work"|primary eq true)\]\.value$/.test(lower)) {
    state.email = op === 'remove' ? null : emailValue(value);
  } else if (!isIgnoredUserPath(path)) {
    throw scimErrors.invalidPath(`Operations[${i}]: Cove users have no attribute "${path.slice(0, 100)}".`);
  }
}

export default fp(
  async (app: FastifyInstance) => {
    app.decorate('scim', new ScimService(app));
  },
  { name: 'scim', dependencies: ['directory'] },
);
