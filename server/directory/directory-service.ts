/**
 * The directory (IAM Identity Center's model): users, groups, AWS accounts, permission sets and
 * assignments, with every rule that keeps it consistent (normalized unique names, AWS limits, at
 * least one admin). Routes and other areas use it as `app.directory`; terminals ask it what a user
 * may use (`accessFor`, `effectiveAccess`) and listen to `onAccessChanged` to end what is no
 * longer allowed.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { CoveError, StoreError, errors } from '../errors.js';
import { normalizeName } from '../protocol/api.js';
import type { AdminAssignmentView, AdminGroupView, AdminUserView } from './directory-schemas.js';
import type {
  AccountRecord,
  AssignmentRecord,
  GroupRecord,
  RecordMode,
  PermissionSetRecord,
  PrincipalType,
  Store,
  StoreRepositories,
  UserRecord,
  InviteRecord,
} from '../store/store.js';
import type { SessionService } from '../auth/session-service.js';
import { adminGroupName } from '../auth/auth-plugin.js';
import { createInvite } from '../auth/invites.js';
import { Argon2PasswordHasher, passwordPolicyProblem, type PasswordHasher } from '../auth/password-hasher.js';
import { CsvSyntaxError, parseCsv, type CsvRecord } from './csv.js';
import { LookalikeIndex, unusualCodePoints } from './confusable-skeleton.js';
import {
  defaultRoleArnTemplate,
  resolveEffectiveAccess,
  type EffectiveAccessEntry,
} from './effective-access.js';
import {
  limits,
  validateAccountId,
  validateAccountName,
  validateDescription,
  validateEmail,
  validateGroupName,
  validatePermissionSetName,
  validateRoleArnTemplate,
  validateRoleOverrides,
  validateSessionDuration,
  validateSessionPolicy,
  validateUsername,
} from './directory-validation.js';

declare module 'fastify' {
  interface FastifyInstance {
    directory: DirectoryService;
  }
}

/** Whose access may have changed; `all` when it is not cheap to say. */
export type AccessChange = { readonly userIds: readonly string[] } | { readonly all: true };

export interface DirectoryDependencies {
  readonly store: Store;
  readonly sessions: Pick<SessionService, 'destroyAllFor'>;
  readonly passwords: PasswordHasher;
  /**
   * Issues a one-time link to set a password (replacing older ones), writing through `store`
   * (the caller's transaction) and touching nothing else.
   */
  readonly invite: (userId: string, store: StoreRepositories) => Promise<{ url: string }>;
  /** Ids of the configured identity providers (`auth.oidc`). */
  readonly identityProviders?: readonly string[];
}

export interface NewUserInput {
  readonly username: string;
  readonly password?: string;
  readonly email?: string;
  readonly groups?: readonly string[];
  readonly mfaRequired?: boolean;
  /** A configured identity provider's id: see CreateUserRequest. */
  readonly identityProvider?: string;
}

export interface BulkCreatedUser {
  readonly id: string;
  readonly username: string;
  readonly email: string;
  /** Group names as stored, `;`-separated. */
  readonly group: string;
  readonly inviteUrl: string;
}

export interface BulkResult {
  readonly users: readonly BulkCreatedUser[];
  readonly groupsCreated: readonly string[];
}

export interface PermissionSetInput {
  readonly name?: string;
  readonly description?: string;
  readonly sessionDurationS?: number;
  readonly roleArnTemplate?: string;
  readonly sessionPolicy?: unknown;
  readonly roleOverrides?: Readonly<Record<string, string>>;
  readonly record?: RecordMode;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const maxBulkRows = 1000;
const rosterColumns = ['name', 'email', 'group'];

interface RosterRow {
  /** Row number as a spreadsheet shows it: the header is row 1. */
  readonly row: number;
  readonly username: string;
  readonly email: string | null;
  readonly groups: readonly string[];
}

interface RowProblems {
  readonly row: number;
  readonly problems: string[];
}

function rosterError(problems: readonly RowProblems[]): CoveError {
  const shown = problems
    .slice(0, 20)
    .map((p) => `row ${p.row}: ${p.problems.map((text) => text.replace(/\.$/, '')).join('; ')}`)
    .join(' | ');
  const more = problems.length > 20 ? ` (and ${problems.length - 20} more rows)` : '';
  return errors.badRequest(`Nothing was created. Fix these rows and upload again: ${shown}${more}.`, {
    rows: problems,
  });
}

/** A unique key taken, when two requests race past the same check (or two Cove instances do). */
function isUniqueViolation(error: unknown): boolean {
  return error instanceof StoreError && error.kind === 'conflict';
}

function lookalikeError(
  field: string,
  kind: 'user' | 'group' | 'account',
  name: string,
  lookalike: string,
): CoveError {
  return errors.directoryNameLookalike(field, kind, name, lookalike, unusualCodePoints(name));
}

async function orConflict<T>(work: Promise<T>, message: string): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (isUniqueViolation(error)) throw errors.conflict(message);
    throw error;
  }
}

export class DirectoryService {
  private readonly listeners = new Set<(change: AccessChange) => void>();
  private readonly store: Store;

  constructor(private readonly deps: DirectoryDependencies) {
    this.store = deps.store;
  }

  // ---- What a user may use ----

  /** Every account × permission set the user may use, sorted for display. Empty when disabled. */
  async effectiveAccess(userId: string): Promise<EffectiveAccessEntry[]> {
    const user = await this.store.users.get(userId);
    if (!user) return [];
    const [groups, assignments, accounts, permissionSets] = await Promise.all([
      this.store.groups.groupsOf(userId),
      this.store.assignments.list(),
      this.store.accounts.list(),
      this.store.permissionSets.list(),
    ]);
    return resolveEffectiveAccess({
      user,
      groupIds: groups.map((g) => g.id),
      assignments,
      accounts,
      permissionSets,
    });
  }

  /** The entry when the user may use that account with that permission set (by name), else undefined. */
  async accessFor(
    userId: string,
    accountId: string,
    permissionSetName: string,
  ): Promise<EffectiveAccessEntry | undefined> {
    const wanted = normalizeName(permissionSetName);
    return (await this.effectiveAccess(userId)).find(
      (e) => e.accountId === accountId && normalizeName(e.permissionSet) === wanted,
    );
  }

  /** Called after any change that can take access away. Returns a disposable. */
  onAccessChanged(listener: (change: AccessChange) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  private changed(change: AccessChange): void {
    for (const listener of this.listeners) listener(change);
  }

  // ---- Users ----

  async listUsers(): Promise<AdminUserView[]> {
    const users = await this.store.users.list();
    return Promise.all(users.map((u) => this.adminView(u)));
  }

  async getUser(id: string): Promise<UserRecord> {
    const user = await this.store.users.get(id);
    if (!user) throw errors.notFound(`User ${id}`);
    return user;
  }

  /** Creates a user; without a password the answer carries a one-time invite link. */
  async createUser(input: NewUserInput): Promise<{ user: UserRecord; inviteUrl?: string }> {
    const username = validateUsername(input.username);
    const email = validateEmail(input.email);
    const provider = input.identityProvider;
    if (provider !== undefined && !(this.deps.identityProviders ?? []).includes(provider))
      throw errors.badRequest(
        `identityProvider: "${provider}" is not a configured identity provider (auth.oidc ids: ${(this.deps.identityProviders ?? []).join(', ') || 'none'}).`,
        { field: 'identityProvider' },
      );
    if (provider !== undefined && input.password !== undefined)
      throw errors.badRequest(
        'password: a user of an identity provider signs in there and has no password.',
        {
          field: 'password',
        },
      );
    if (input.password !== undefined) {
      const problem = passwordPolicyProblem(input.password, username);
      if (problem) throw errors.badRequest(`password: ${problem}`, { field: 'password' });
    }
    const groups = await this.groupsByName(input.groups ?? [], 'groups');
    await this.assertUsernameFree(username);
    // Hash before the transaction: only store calls may run inside one.
    const passwordHash = input.password === undefined ? null : await this.deps.passwords.hash(input.password);
    return this.store.transaction(async (tx) => {
      await this.assertUsernameFree(username, tx);
      const user = await orConflict(
        tx.users.create({
          username,
          email,
          passwordHash,
          mfaRequired: input.mfaRequired ?? false,
          ...(provider !== undefined ? { source: `oidc:${provider}` } : {}),
        }),
        `A user named "${username}" already exists. Choose another user name.`,
      );
      for (const group of groups) await tx.groups.addMember(group.id, user.id);
      if (passwordHash !== null || provider !== undefined) return { user };
      const { url } = await this.deps.invite(user.id, tx);
      return { user, inviteUrl: url };
    });
  }

  async updateUser(
    actorId: string,
    id: string,
    patch: { disabled?: boolean; email?: string | null; mfaRequired?: boolean },
  ): Promise<{ user: UserRecord; changes: Readonly<Record<string, unknown>> }> {
    const user = await this.getUser(id);
    const email = patch.email === undefined ? undefined : validateEmail(patch.email);
    if (patch.disabled === true && !user.disabled) {
      if (id === actorId)
        throw errors.conflict('You cannot disable your own user. Ask another administrator.');
      await this.assertNotLastAdmin(id, 'disable');
    }
    const changes: { disabled?: boolean; email?: string | null; mfaRequired?: boolean } = {};
    if (patch.disabled !== undefined && patch.disabled !== user.disabled) changes.disabled = patch.disabled;
    if (email !== undefined && email !== user.email) changes.email = email;
    if (patch.mfaRequired !== undefined && patch.mfaRequired !== user.mfaRequired)
      changes.mfaRequired = patch.mfaRequired;
    const updated = await this.store.users.update(id, changes);
    if (!updated) throw errors.notFound(`User ${id}`);
    if (changes.disabled === true) {
      await this.deps.sessions.destroyAllFor(id);
      this.changed({ userIds: [id] });
    }
    return { user: updated, changes };
  }

  /** The old password stops working, sessions end, and a new invite link is the way back in. */
  async resetPassword(id: string): Promise<{ user: UserRecord; inviteUrl: string }> {
    const found = await this.getUser(id);
    // A password (or a link to set one) would give an IdP's user a way in that the IdP cannot end.
    if (found.source !== 'local')
      throw errors.federatedUserPassword(found.username, found.source.replace(/^oidc:/, ''));
    const result = await this.store.transaction(async (tx) => {
      const user = await tx.users.update(id, { passwordHash: null });
      if (!user) throw errors.notFound(`User ${id}`);
      const { url } = await this.deps.invite(id, tx);
      return { user, inviteUrl: url };
    });
    await this.deps.sessions.destroyAllFor(id);
    this.changed({ userIds: [id] });
    return result;
  }

  /** Clears the TOTP enrollment; the user enrolls again at the next sign-in (sessions end). */
  async resetMfa(id: string): Promise<UserRecord> {
    await this.getUser(id);
    await this.store.users.resetMfa(id);
    await this.deps.sessions.destroyAllFor(id);
    this.changed({ userIds: [id] });
    return this.getUser(id);
  }

  async deleteUser(actorId: string, id: string): Promise<UserRecord> {
    const user = await this.getUser(id);
    if (id === actorId) throw errors.conflict('You cannot delete your own user. Ask another administrator.');
    await this.assertNotLastAdmin(id, 'delete');
    // Before the delete: the rows would cascade away silently, and open shells would not hear of it.
    await this.deps.sessions.destroyAllFor(id);
    await this.store.transaction(async (tx) => {
      for (const a of await tx.assignments.list())
        if (a.principalType === 'user' && a.principalId === id) await tx.assignments.delete(a.id);
      await tx.users.delete(id);
    });
    this.changed({ userIds: [id] });
    return user;
  }

  /**
   * Creates users from a CSV roster (`name,email,group`; header required; `;` separates several
   * groups in one cell; missing groups are created). All or nothing: any bad row refuses the whole
   * file with every problem listed by row number (the header is row 1).
   */
  async bulkCreateUsers(csv: string): Promise<BulkResult> {
    const { rows, problems } = this.parseRoster(csv);
    const existingGroups = await this.store.groups.list();
    const groupByKey = new Map(existingGroups.map((g) => [normalizeName(g.name), g]));
    // Look-alikes of existing names and of each other: the roster must not add `admın` or a
    // second `Сlass A` (Cyrillic С) beside the real ones.
    const userNames = new LookalikeIndex((await this.store.users.list()).map((u) => u.username));
    const groupNames = new LookalikeIndex(existingGroups.map((g) => g.name));
    const newGroups = new Set<string>();
    /** Names this roster adds, with their row, so a clash between two rows names the other row. */
    const rowOf = new Map<string, number>();
    const lookalikeProblem = (field: string, kind: 'user' | 'group', name: string, taken: string) => {
      const other = rowOf.get(`${kind}:${taken}`);
      const where = other === undefined ? `the existing ${kind} "${taken}"` : `"${taken}" on row ${other}`;
      const unusual = unusualCodePoints(name);
      return `${field}: "${name}"${unusual.length > 0 ? ` (with ${unusual.join(', ')})` : ''} looks like ${where} (they differ only in characters that look alike)`;
    };
    for (const row of rows) {
      const found: string[] = [];
      if (await this.store.users.getByUsername(row.username))
        found.push(`name: a user named "${row.username}" already exists`);
      else {
        const taken = userNames.find(row.username);
        if (taken !== undefined) found.push(lookalikeProblem('name', 'user', row.username, taken));
        else {
          userNames.add(row.username);
          rowOf.set(`user:${row.username}`, row.row);
        }
      }
      for (const group of row.groups) {
        const key = normalizeName(group);
        if (groupByKey.has(key) || newGroups.has(key)) continue;
        const taken = groupNames.find(group);
        if (taken !== undefined) found.push(lookalikeProblem('group', 'group', group, taken));
        else {
          groupNames.add(group);
          newGroups.add(key);
          rowOf.set(`group:${group}`, row.row);
        }
      }
      if (found.length > 0) {
        const listed = problems.find((p) => p.row === row.row);
        if (listed) listed.problems.push(...found);
        else problems.push({ row: row.row, problems: found });
      }
    }
    if (problems.length > 0) throw rosterError(problems.sort((a, b) => a.row - b.row));
    return this.store.transaction(async (tx) => {
      const created: BulkCreatedUser[] = [];
      const groupsCreated: string[] = [];
      for (const row of rows) {
        const memberOf: GroupRecord[] = [];
        for (const name of row.groups) {
          let group = groupByKey.get(normalizeName(name));
          if (!group) {
            group = await tx.groups.create({ name });
            groupByKey.set(normalizeName(name), group);
            groupsCreated.push(group.name);
          }
          memberOf.push(group);
        }
        const user = await orConflict(
          tx.users.create({ username: row.username, email: row.email }),
          `Row ${row.row}: a user named "${row.username}" already exists. Nothing was created.`,
        );
        for (const group of memberOf) await tx.groups.addMember(group.id, user.id);
        const { url } = await this.deps.invite(user.id, tx);
        created.push({
          id: user.id,
          username: user.username,
          email: user.email ?? '',
          group: memberOf.map((g) => g.name).join(';'),
          inviteUrl: url,
        });
      }
      return { users: created, groupsCreated };
    });
  }

  /** Syntax, header and per-row checks, collecting every row's problems rather than stopping at the first. */
  private parseRoster(csv: string): { rows: RosterRow[]; problems: RowProblems[] } {
    let records: CsvRecord[];
    try {
      records = parseCsv(csv);
    } catch (error) {
      if (error instanceof CsvSyntaxError)
        throw rosterError([{ row: error.line, problems: [error.message] }]);
      throw error;
    }
    const [header, ...data] = records;
    const columns = header?.fields.map((f) => f.trim().toLowerCase()) ?? [];
    const unknown = columns.filter((c) => !rosterColumns.includes(c));
    if (!columns.includes('name') || unknown.length > 0 || new Set(columns).size !== columns.length)
      throw errors.badRequest(
        'The first row of the CSV must be the header "name,email,group" (email and group may be left out). Nothing was created.',
        { rows: [{ row: header?.line ?? 1, problems: ['the header must be name,email,group'] }] },
      );
    if (data.length === 0)
      throw errors.badRequest('The CSV has a header but no users. Add one row per user.');
    if (data.length > maxBulkRows)
      throw errors.badRequest(`The CSV has ${data.length} users; send at most ${maxBulkRows} per upload.`);

    const cell = (fields: string[], column: string): string => {
      const index = columns.indexOf(column);
      return index < 0 ? '' : (fields[index] ?? '');
    };
    const problems: RowProblems[] = [];
    const rows: RosterRow[] = [];
    const firstRowOf = new Map<string, number>();
    for (const record of data) {
      const found: string[] = [];
      const check = <T>(fn: () => T): T | undefined => {
        try {
          return fn();
        } catch (error) {
          if (error instanceof CoveError) found.push(error.message);
          else throw error;
          return undefined;
        }
      };
      if (record.fields.length !== columns.length)
        found.push(
          `it has ${record.fields.length} fields but the header has ${columns.length} (quote fields that contain commas)`,
        );
      const username = check(() => validateUsername(cell(record.fields, 'name'), 'name'));
      const email = check(() => validateEmail(cell(record.fields, 'email'), 'email'));
      const groups: string[] = [];
      for (const part of cell(record.fields, 'group').split(';')) {
        if (part.trim() === '') continue;
        const name = check(() => validateGroupName(part, 'group'));
        if (name !== undefined && !groups.some((g) => normalizeName(g) === normalizeName(name)))
          groups.push(name);
      }
      if (username !== undefined) {
        const first = firstRowOf.get(username);
        if (first !== undefined) found.push(`name: "${username}" is already on row ${first}`);
        else firstRowOf.set(username, record.line);
      }
      if (found.length > 0) problems.push({ row: record.line, problems: found });
      else if (username !== undefined && email !== undefined)
        rows.push({ row: record.line, username, email, groups });
    }
    return { rows, problems };
  }

  // ---- Groups ----

  async listGroups(): Promise<AdminGroupView[]> {
    const [groups, users] = await Promise.all([this.store.groups.list(), this.store.users.list()]);
    const names = new Map(users.map((u) => [u.id, u.username]));
    return Promise.all(
      groups.map(async (g) => {
        const members = (await this.store.groups.members(g.id))
          .map((id) => ({ id, username: names.get(id) ?? '' }))
          .sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
        return {
          id: g.id,
          name: g.name,
          description: g.description,
          homeSizeBytes: g.homeSizeBytes,
          weeklyUsageLimitS: g.weeklyUsageLimitS,
          record: g.record,
          members,
          createdAt: iso(g.createdAt),
        };
      }),
    );
  }

  async getGroup(id: string): Promise<GroupRecord> {
    const group = await this.store.groups.get(id);
    if (!group) throw errors.notFound(`Group ${id}`);
    return group;
  }

  async createGroup(input: {
    name: string;
    description?: string;
    homeSizeBytes?: number | null;
    weeklyUsageLimitS?: number | null;
    record?: RecordMode;
  }): Promise<GroupRecord> {
    const name = validateGroupName(input.name);
    const description = validateDescription(input.description ?? '', limits.groupDescriptionChars);
    return this.store.transaction(async (tx) => {
      await this.assertGroupNameFree(name, undefined, tx);
      return orConflict(
        tx.groups.create({
          name,
          description,
          homeSizeBytes: input.homeSizeBytes ?? null,
          weeklyUsageLimitS: input.weeklyUsageLimitS ?? null,
          record: input.record ?? 'off',
        }),
        `A group named "${name}" already exists.`,
      );
    });
  }

  async updateGroup(
    id: string,
    patch: {
      name?: string;
      description?: string;
      homeSizeBytes?: number | null;
      weeklyUsageLimitS?: number | null;
      record?: RecordMode;
    },
  ): Promise<GroupRecord> {
    const group = await this.getGroup(id);
    const name = patch.name === undefined ? undefined : validateGroupName(patch.name);
    const description =
      patch.description === undefined
        ? undefined
        : validateDescription(patch.description, limits.groupDescriptionChars);
    if (name !== undefined && name !== group.name) {
      if (group.name === adminGroupName)
        throw errors.conflict(
          `The "${adminGroupName}" group gives administrator rights; it cannot be renamed.`,
        );
      await this.assertGroupNameFree(name, id);
    }
    const updated = await orConflict(
      this.store.groups.update(id, {
        ...(name !== undefined ? { name } : {}),
        ...(description !== undefined ? { description } : {}),
        ...(patch.homeSizeBytes !== undefined ? { homeSizeBytes: patch.homeSizeBytes } : {}),
        ...(patch.weeklyUsageLimitS !== undefined ? { weeklyUsageLimitS: patch.weeklyUsageLimitS } : {}),
        ...(patch.record !== undefined ? { record: patch.record } : {}),
      }),
      `A group named "${name ?? ''}" already exists.`,
    );
    if (!updated) throw errors.notFound(`Group ${id}`);
    return updated;
  }

  async deleteGroup(id: string): Promise<GroupRecord> {
    const group = await this.getGroup(id);
    if (group.name === adminGroupName)
      throw errors.conflict(
        `The "${adminGroupName}" group gives administrator rights; it cannot be deleted.`,
      );
    const members = await this.store.groups.members(id);
    await this.store.groups.delete(id);
    this.changed({ userIds: members });
    return group;
  }

  /** Replaces the members. Unknown user ids are refused by name; the admins group never ends up empty. */
  async setGroupMembers(
    id: string,
    userIds: readonly string[],
  ): Promise<{
    group: GroupRecord;
    added: string[];
    removed: string[];
    /** User names of the added and removed, by id: the audit log reads names, ids stay exact. */
    userNames: Record<string, string>;
  }> {
    const group = await this.getGroup(id);
    const wanted = [...new Set(userIds)];
    const users = new Map((await this.store.users.list()).map((u) => [u.id, u]));
    const unknown = wanted.filter((u) => !users.has(u));
    if (unknown.length > 0)
      throw errors.badRequest(`userIds: these users do not exist: ${unknown.join(', ')}.`, {
        field: 'userIds',
        unknown,
      });
    if (group.name === adminGroupName && !wanted.some((u) => users.get(u)?.disabled === false))
      throw errors.conflict(
        'That would leave no enabled administrator. Keep at least one enabled user in the admins group.',
      );
    const before = await this.store.groups.members(id);
    await this.store.groups.setMembers(id, wanted);
    const added = wanted.filter((u) => !before.includes(u));
    const removed = before.filter((u) => !wanted.includes(u));
    this.changed({ userIds: [...added, ...removed] });
    const userNames = Object.fromEntries([...added, ...removed].map((u) => [u, users.get(u)?.username ?? u]));
    return { group, added, removed, userNames };
  }

  /**
   * Makes a federated user's memberships match the groups their identity provider names, by
   * exact group name. Groups that do not exist in Cove are ignored (and reported). The admins
   * group follows the claim only when `adminsFromClaim`; otherwise it is left as an
   * administrator set it, whatever the claim says.
   */
  async syncClaimedGroups(
    userId: string,
    claimed: readonly string[],
    options: { adminsFromClaim: boolean },
  ): Promise<{ added: string[]; removed: string[]; unknown: string[]; ignoredAdmins: boolean }> {
    const groups = await this.store.groups.list();
    const byName = new Map(groups.map((g) => [g.name, g]));
    const managed = (g: GroupRecord) => options.adminsFromClaim || g.name !== adminGroupName;
    const wanted = new Set(
      claimed.filter((name) => byName.has(name) && managed(byName.get(name) as GroupRecord)),
    );
    const unknown = claimed.filter((name) => !byName.has(name));
    const ignoredAdmins = !options.adminsFromClaim && claimed.includes(adminGroupName);
    const current = (await this.store.groups.groupsOf(userId)).filter(managed);
    const currentNames = new Set(current.map((g) => g.name));
    const added = [...wanted].filter((name) => !currentNames.has(name));
    const removed = current.filter((g) => !wanted.has(g.name)).map((g) => g.name);
    if (added.length === 0 && removed.length === 0) return { added, removed, unknown, ignoredAdmins };
    await this.store.transaction(async (tx) => {
      for (const name of added) await tx.groups.addMember((byName.get(name) as GroupRecord).id, userId);
      for (const name of removed) await tx.groups.removeMember((byName.get(name) as GroupRecord).id, userId);
    });
    this.changed({ userIds: [userId] });
    return { added, removed, unknown, ignoredAdmins };
  }

  // ---- Accounts ----

  async listAccounts(): Promise<AccountRecord[]> {
    return this.store.accounts.list();
  }

  async getAccount(accountId: string): Promise<AccountRecord> {
    const id = validateAccountId(accountId);
    const account = await this.store.accounts.get(id);
    if (!account) throw errors.notFound(`Account ${id}`);
    return account;
  }

  async createAccount(input: { accountId: string; name: string }): Promise<AccountRecord> {
    const accountId = validateAccountId(input.accountId);
    const name = validateAccountName(input.name);
    return this.store.transaction(async (tx) => {
      if (await tx.accounts.get(accountId)) throw errors.conflict(`Account ${accountId} is already in Cove.`);
      await this.assertAccountNameFree(name, undefined, tx);
      return orConflict(tx.accounts.create({ accountId, name }), `Account ${accountId} is already in Cove.`);
    });
  }

  async updateAccount(accountId: string, patch: { name: string }): Promise<AccountRecord> {
    const account = await this.getAccount(accountId);
    const name = validateAccountName(patch.name);
    await this.assertAccountNameFree(name, account.accountId);
    const updated = await this.store.accounts.update(account.accountId, { name });
    if (!updated) throw errors.notFound(`Account ${accountId}`);
    return updated;
  }

  async deleteAccount(accountId: string): Promise<AccountRecord> {
    const account = await this.getAccount(accountId);
    await this.store.accounts.delete(account.accountId);
    this.changed({ all: true });
    return account;
  }

  // ---- Permission sets ----

  async listPermissionSets(): Promise<PermissionSetRecord[]> {
    return this.store.permissionSets.list();
  }

  async getPermissionSet(id: string): Promise<PermissionSetRecord> {
    const set = await this.store.permissionSets.get(id);
    if (!set) throw errors.notFound(`Permission set ${id}`);
    return set;
  }

  async createPermissionSet(input: PermissionSetInput & { name: string }): Promise<PermissionSetRecord> {
    const name = validatePermissionSetName(input.name);
    const record = {
      name,
      description: validateDescription(input.description ?? '', limits.permissionSetDescriptionChars),
      sessionDurationS: validateSessionDuration(input.sessionDurationS ?? limits.minSessionDurationS),
      roleArnTemplate: validateRoleArnTemplate(input.roleArnTemplate ?? defaultRoleArnTemplate, name),
      sessionPolicy: validateSessionPolicy(input.sessionPolicy),
      roleOverrides: validateRoleOverrides(input.roleOverrides ?? {}),
      record: input.record ?? 'off',
    };
    return this.store.transaction(async (tx) => {
      await this.assertPermissionSetNameFree(name, undefined, tx);
      return orConflict(tx.permissionSets.create(record), `A permission set named "${name}" already exists.`);
    });
  }

  async updatePermissionSet(
    id: string,
    patch: PermissionSetInput,
  ): Promise<{ set: PermissionSetRecord; changed: string[] }> {
    const set = await this.getPermissionSet(id);
    const name = patch.name === undefined ? set.name : validatePermissionSetName(patch.name);
    const next = {
      name,
      description:
        patch.description === undefined
          ? set.description
          : validateDescription(patch.description, limits.permissionSetDescriptionChars),
      sessionDurationS:
        patch.sessionDurationS === undefined
          ? set.sessionDurationS
          : validateSessionDuration(patch.sessionDurationS),
      // A rename must still give valid ARNs, so the template is checked against the new name.
      roleArnTemplate: validateRoleArnTemplate(patch.roleArnTemplate ?? set.roleArnTemplate, name),
      sessionPolicy:
        patch.sessionPolicy === undefined ? set.sessionPolicy : validateSessionPolicy(patch.sessionPolicy),
      roleOverrides:
        patch.roleOverrides === undefined ? set.roleOverrides : validateRoleOverrides(patch.roleOverrides),
      record: patch.record ?? set.record,
    };
    if (normalizeName(name) !== normalizeName(set.name)) await this.assertPermissionSetNameFree(name, id);
    const changed = (Object.keys(next) as (keyof typeof next)[]).filter(
      (k) => JSON.stringify(next[k]) !== JSON.stringify(set[k]),
    );
    // The store writes NULL only when asked; a cleared policy must reach it as null.
    const updated = await orConflict(
      this.store.permissionSets.update(id, next),
      `A permission set named "${name}" already exists.`,
    );
    if (!updated) throw errors.notFound(`Permission set ${id}`);
    if (changed.length > 0) this.changed({ all: true });
    return { set: updated, changed };
  }

  async deletePermissionSet(id: string): Promise<PermissionSetRecord> {
    const set = await this.getPermissionSet(id);
    await this.store.permissionSets.delete(id);
    this.changed({ all: true });
    return set;
  }

  // ---- Assignments ----

  async listAssignments(): Promise<AdminAssignmentView[]> {
    const [assignments, users, groups, accounts, sets] = await Promise.all([
      this.store.assignments.list(),
      this.store.users.list(),
      this.store.groups.list(),
      this.store.accounts.list(),
      this.store.permissionSets.list(),
    ]);
    const userNames = new Map(users.map((u) => [u.id, u.username]));
    const groupNames = new Map(groups.map((g) => [g.id, g.name]));
    const accountNames = new Map(accounts.map((a) => [a.accountId, a.name]));
    const setNames = new Map(sets.map((p) => [p.id, p.name]));
    return assignments.map((a) => this.toAdminAssignment(a, userNames, groupNames, accountNames, setNames));
  }

  async createAssignment(input: {
    principalType: PrincipalType;
    principalId: string;
    accountId: string;
    permissionSet: string;
  }): Promise<AdminAssignmentView> {
    const accountId = validateAccountId(input.accountId);
    const principalName =
      input.principalType === 'user'
        ? (await this.store.users.get(input.principalId))?.username
        : (await this.store.groups.get(input.principalId))?.name;
    if (principalName === undefined)
      throw errors.badRequest(
        `principalId: there is no ${input.principalType} with id ${input.principalId}.`,
        {
          field: 'principalId',
        },
      );
    const account = await this.store.accounts.get(accountId);
    if (!account)
      throw errors.badRequest(
        `accountId: account ${accountId} is not in Cove. Add it under Accounts first.`,
        {
          field: 'accountId',
        },
      );
    const set = await this.permissionSetByName(input.permissionSet);
    if (!set)
      throw errors.badRequest(`permissionSet: there is no permission set named "${input.permissionSet}".`, {
        field: 'permissionSet',
      });
    const duplicate = `That ${input.principalType} already has ${set.name} in account ${accountId}.`;
    const record = await this.store.transaction(async (tx) => {
      const exists = (await tx.assignments.list()).some(
        (a) =>
          a.principalType === input.principalType &&
          a.principalId === input.principalId &&
          a.accountId === accountId &&
          a.permissionSetId === set.id,
      );
      if (exists) throw errors.conflict(duplicate);
      return orConflict(
        tx.assignments.create({
          principalType: input.principalType,
          principalId: input.principalId,
          accountId,
          permissionSetId: set.id,
        }),
        duplicate,
      );
    });
    return {
      id: record.id,
      principalType: record.principalType,
      principalId: record.principalId,
      principalName,
      accountId,
      accountName: account.name,
      permissionSetId: set.id,
      permissionSet: set.name,
      createdAt: iso(record.createdAt),
    };
  }

  async deleteAssignment(id: string): Promise<AdminAssignmentView> {
    const view = (await this.listAssignments()).find((a) => a.id === id);
    if (!view) throw errors.notFound(`Assignment ${id}`);
    await this.store.assignments.delete(id);
    this.changed(
      view.principalType === 'user'
        ? { userIds: [view.principalId] }
        : { userIds: await this.store.groups.members(view.principalId) },
    );
    return view;
  }

  // ---- Helpers ----

  /** The console's row for one user: groups and any invite not accepted yet. */
  async adminView(user: UserRecord): Promise<AdminUserView> {
    const [groups, invite, provisionedBy] = await Promise.all([
      this.store.groups.groupsOf(user.id),
      this.pendingInvite(user),
      this.provisionedBy(user),
    ]);
    return this.toAdminUser(user, groups, invite, provisionedBy);
  }

  /** The name of the SCIM token that provisioned the user, if one did. */
  private async provisionedBy(user: UserRecord): Promise<string | null> {
    if (user.source === 'local') return null;
    const resource = await this.store.scimResources.get('user', user.id);
    if (!resource) return null;
    return (await this.store.scimTokens.get(resource.tokenId))?.name ?? null;
  }

  /** The invite the user has not accepted yet: only while they have no password. */
  async pendingInvite(user: UserRecord): Promise<InviteRecord | undefined> {
    return user.passwordHash === null ? this.store.invites.pendingFor(user.id) : undefined;
  }

  toAdminUser(
    user: UserRecord,
    groups: readonly GroupRecord[],
    invite?: InviteRecord,
    provisionedBy: string | null = null,
  ): AdminUserView {
    return {
      id: user.id,
      username: user.username,
      email: user.email,
      disabled: user.disabled,
      mfaEnrolled: user.totpSecret !== null,
      mfaRequired: user.mfaRequired,
      groups: groups.map((g) => g.name),
      createdAt: iso(user.createdAt),
      lastLoginAt: user.lastLoginAt === null ? null : iso(user.lastLoginAt),
      invite: invite ? { expiresAt: iso(invite.expiresAt) } : null,
      source: user.source,
      provisionedBy,
    };
  }

  private toAdminAssignment(
    a: AssignmentRecord,
    users: Map<string, string>,
    groups: Map<string, string>,
    accounts: Map<string, string>,
    sets: Map<string, string>,
  ): AdminAssignmentView {
    return {
      id: a.id,
      principalType: a.principalType,
      principalId: a.principalId,
      principalName:
        (a.principalType === 'user' ? users.get(a.principalId) : groups.get(a.principalId)) ?? '',
      accountId: a.accountId,
      accountName: accounts.get(a.accountId) ?? '',
      permissionSetId: a.permissionSetId,
      permissionSet: sets.get(a.permissionSetId) ?? '',
      createdAt: iso(a.createdAt),
    };
  }

  private async permissionSetByName(name: string): Promise<PermissionSetRecord | undefined> {
    const key = normalizeName(name);
    return (await this.store.permissionSets.list()).find((p) => normalizeName(p.name) === key);
  }

  private async groupsByName(names: readonly string[], field: string): Promise<GroupRecord[]> {
    if (names.length === 0) return [];
    const groups = new Map((await this.store.groups.list()).map((g) => [normalizeName(g.name), g]));
    const found: GroupRecord[] = [];
    const missing: string[] = [];
    for (const name of names) {
      const group = groups.get(normalizeName(name));
      if (group) {
        if (!found.includes(group)) found.push(group);
      } else missing.push(name);
    }
    if (missing.length > 0)
      throw errors.badRequest(
        `${field}: no group named ${missing.map((m) => `"${m}"`).join(', ')}. Create it first.`,
        {
          field,
        },
      );
    return found;
  }

  private async assertUsernameFree(username: string, repos: StoreRepositories = this.store): Promise<void> {
    if (await repos.users.getByUsername(username))
      throw errors.conflict(
        `A user named "${username}" already exists (names ignore case and spacing). Choose another.`,
      );
    const users = await repos.users.list();
    const lookalike = new LookalikeIndex(users.map((u) => u.username)).find(username);
    if (lookalike !== undefined) throw lookalikeError('username', 'user', username, lookalike);
  }

  private async assertGroupNameFree(
    name: string,
    exceptId?: string,
    repos: StoreRepositories = this.store,
  ): Promise<void> {
    const key = normalizeName(name);
    const clash = (await repos.groups.list()).find((g) => normalizeName(g.name) === key && g.id !== exceptId);
    if (clash)
      throw errors.conflict(`A group named "${clash.name}" already exists (names ignore case and spacing).`);
    const others = (await repos.groups.list()).filter((g) => g.id !== exceptId);
    const lookalike = new LookalikeIndex(others.map((g) => g.name)).find(name);
    if (lookalike !== undefined) throw lookalikeError('name', 'group', name, lookalike);
  }

  private async assertAccountNameFree(
    name: string,
    exceptId?: string,
    repos: StoreRepositories = this.store,
  ): Promise<void> {
    const key = normalizeName(name);
    const clash = (await repos.accounts.list()).find(
      (a) => normalizeName(a.name) === key && a.accountId !== exceptId,
    );
    if (clash)
      throw errors.conflict(
        `Account ${clash.accountId} is already called "${clash.name}". Give each account its own name.`,
      );
    const others = (await repos.accounts.list()).filter((a) => a.accountId !== exceptId);
    const lookalike = new LookalikeIndex(others.map((a) => a.name)).find(name);
    if (lookalike !== undefined) throw lookalikeError('name', 'account', name, lookalike);
  }

  private async assertPermissionSetNameFree(
    name: string,
    exceptId?: string,
    repos: StoreRepositories = this.store,
  ): Promise<void> {
    const key = normalizeName(name);
    const clash = (await repos.permissionSets.list()).find(
      (p) => normalizeName(p.name) === key && p.id !== exceptId,
    );
    if (clash)
      throw errors.conflict(`A permission set named "${clash.name}" already exists (names ignore case).`);
  }

  /** Refuses to take away the last enabled administrator. */
  private async assertNotLastAdmin(userId: string, verb: 'disable' | 'delete'): Promise<void> {
    const admins = await this.store.groups.getByName(adminGroupName);
    if (!admins) return;
    const members = await this.store.groups.members(admins.id);
    if (!members.includes(userId)) return;
    const enabled = [];
    for (const id of members) if ((await this.store.users.get(id))?.disabled === false) enabled.push(id);
    if (enabled.length === 1 && enabled[0] === userId)
      throw errors.conflict(
        `That is the last enabled administrator; you cannot ${verb} it. Make another user an administrator first.`,
      );
  }
}

export default fp(
  async (app: FastifyInstance) => {
    const directory = new DirectoryService({
      store: app.store,
      sessions: app.sessions,
      passwords: new Argon2PasswordHasher(app.config.auth),
      invite: (userId, store) => createInvite(app, userId, store),
      identityProviders: app.config.auth.oidc.map((p) => p.id),
    });
    app.decorate('directory', directory);
  },
  { name: 'directory', dependencies: ['auth'] },
);
