/**
 * The admin API (`/api/admin/*`: users, groups, accounts, permission sets, assignments, audit log)
 * and the access portal (`/api/portal`). Every admin route is behind `app.requireAdmin` and every
 * change writes an audit entry (who, what, target; never a secret).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { audit } from '../audit.js';
import { errors } from '../errors.js';
import { bulkUserCsvAnswerColumns } from '../protocol/api.js';
import type { AccountRecord, PermissionSetRecord } from '../store/store.js';
import type {} from '../usage/usage-meter.js';
import { formatCsv } from './csv.js';
import { Type } from '@sinclair/typebox';
import {
  AccountIdParams,
  AdminAccountSchema,
  AdminAssignmentSchema,
  AdminGroupSchema,
  AdminPermissionSetSchema,
  AdminUserSchema,
  AuditQuery,
  AuditReply,
  CreateAccountBody,
  CreateAssignmentBody,
  CreateGroupBody,
  CreatePermissionSetBody,
  CreateUserBody,
  CreateUserReply,
  CsvText,
  IdParams,
  InviteReply,
  PortalReply,
  SetMembersBody,
  UpdateAccountBody,
  UpdateGroupBody,
  UpdatePermissionSetBody,
  UpdateUserBody,
  type AdminGroupView,
} from './directory-schemas.js';

/** A class roster of 1000 rows fits with room to spare; anything bigger is a mistake or abuse. */
const csvBodyLimitBytes = 256 * 1024;

const iso = (ms: number): string => new Date(ms).toISOString();
const accountView = (a: AccountRecord) => ({
  accountId: a.accountId,
  name: a.name,
  createdAt: iso(a.createdAt),
});
const permissionSetView = (p: PermissionSetRecord) => ({ ...p, createdAt: iso(p.createdAt) });
const NoContent = Type.Null({ description: 'No content' });

export default async function directoryRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const { directory, store } = app;
  const actorId = (request: FastifyRequest): string => request.principal?.user.id ?? '';
  const record = (
    request: FastifyRequest,
    action: string,
    target: string,
    details: Record<string, unknown> = {},
  ) => audit(store, request, { action: `admin.${action}`, target, details });

  app.addContentTypeParser(
    'text/csv',
    { parseAs: 'string', bodyLimit: csvBodyLimitBytes },
    (_request, body, done) => {
      done(null, body);
    },
  );

  const groupView = async (id: string): Promise<AdminGroupView> => {
    const group = (await directory.listGroups()).find((g) => g.id === id);
    if (!group) throw errors.notFound(`Group ${id}`);
    return group;
  };

  // ---- Portal (any signed-in user) ----

  app.get(
    '/api/portal',
    { onRequest: app.requireUser, schema: { response: { 200: PortalReply } } },
    async (request) => {
      const [access, usage] = await Promise.all([
        directory.effectiveAccess(actorId(request)),
        app.usage.summary(actorId(request)),
      ]);
      return {
        regions: app.config.regions.map((r) => ({ id: r.id, name: r.name })),
        defaultRegion: app.config.defaultRegion,
        assignments: access.map((e) => ({
          accountId: e.accountId,
          accountName: e.accountName,
          permissionSet: e.permissionSet,
          permissionSetDescription: e.permissionSetDescription,
          sessionDurationS: e.sessionDurationS,
        })),
        usage,
      };
    },
  );

  // Everything below is for administrators only.
  await app.register(async (admin) => {
    const routes = admin.withTypeProvider<TypeBoxTypeProvider>();
    // onRequest, so no body is parsed or validated for someone who may not call these at all.
    routes.addHook('onRequest', app.requireAdmin);

    // ---- Users ----

    routes.get('/api/admin/users', { schema: { response: { 200: Type.Array(AdminUserSchema) } } }, () =>
      directory.listUsers(),
    );

    routes.post(
      '/api/admin/users',
      { schema: { body: CreateUserBody, response: { 201: CreateUserReply } } },
      async (request, reply) => {
        const { user, inviteUrl } = await directory.createUser(request.body);
        await record(request, 'user.create', `user:${user.id}`, {
          username: user.username,
          groups: request.body.groups ?? [],
          mfaRequired: user.mfaRequired,
          invite: inviteUrl !== undefined,
          ...(request.body.identityProvider ? { identityProvider: request.body.identityProvider } : {}),
        });
        return reply
          .status(201)
          .send({ id: user.id, username: user.username, ...(inviteUrl ? { inviteUrl } : {}) });
      },
    );

    routes.post(
      '/api/admin/users/bulk',
      { schema: { body: CsvText, response: { 201: CsvText } } },
      async (request, reply) => {
        const result = await directory.bulkCreateUsers(request.body);
        await record(request, 'user.bulk_create', 'users', {
          usernames: result.users.map((u) => u.username),
          groupsCreated: result.groupsCreated,
        });
        const rows = result.users.map((u) => [u.username, u.email, u.group, u.inviteUrl]);
        return reply
          .status(201)
          .header('content-type', 'text/csv; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(formatCsv([[...bulkUserCsvAnswerColumns], ...rows]));
      },
    );

    routes.patch(
      '/api/admin/users/:id',
      { schema: { params: IdParams, body: UpdateUserBody, response: { 200: AdminUserSchema } } },
      async (request) => {
        const { user, changes } = await directory.updateUser(
          actorId(request),
          request.params.id,
          request.body,
        );
        // Recorded even when nothing changed: the log shows what an administrator tried to do.
        await record(request, changes.disabled === true ? 'user.disable' : 'user.update', `user:${user.id}`, {
          username: user.username,
          ...changes,
        });
        return directory.adminView(user);
      },
    );

    routes.post(
      '/api/admin/users/:id/reset-password',
      { schema: { params: IdParams, response: { 200: InviteReply } } },
      async (request) => {
        const { user, inviteUrl } = await directory.resetPassword(request.params.id);
        await record(request, 'user.reset_password', `user:${user.id}`, { username: user.username });
        return { inviteUrl };
      },
    );

    routes.post(
      '/api/admin/users/:id/reset-mfa',
      { schema: { params: IdParams, response: { 200: AdminUserSchema } } },
      async (request) => {
        const user = await directory.resetMfa(request.params.id);
        await record(request, 'user.reset_mfa', `user:${user.id}`, { username: user.username });
        return directory.adminView(user);
      },
    );

    routes.delete(
      '/api/admin/users/:id',
      { schema: { params: IdParams, response: { 204: NoContent } } },
      async (request, reply) => {
        const user = await directory.deleteUser(actorId(request), request.params.id);
        await record(request, 'user.delete', `user:${user.id}`, { username: user.username });
        return reply.status(204).send(null);
      },
    );

    // ---- Groups ----

    routes.get('/api/admin/groups', { schema: { response: { 200: Type.Array(AdminGroupSchema) } } }, () =>
      directory.listGroups(),
    );

    routes.post(
      '/api/admin/groups',
      { schema: { body: CreateGroupBody, response: { 201: AdminGroupSchema } } },
      async (request, reply) => {
        const group = await directory.createGroup(request.body);
        await record(request, 'group.create', `group:${group.id}`, {
          name: group.name,
          ...(group.homeSizeBytes !== null ? { homeSizeBytes: group.homeSizeBytes } : {}),
          ...(group.weeklyUsageLimitS !== null ? { weeklyUsageLimitS: group.weeklyUsageLimitS } : {}),
          ...(group.record !== 'off' ? { record: group.record } : {}),
        });
        return reply.status(201).send(await groupView(group.id));
      },
    );

    routes.patch(
      '/api/admin/groups/:id',
      { schema: { params: IdParams, body: UpdateGroupBody, response: { 200: AdminGroupSchema } } },
      async (request) => {
        const before = await directory.getGroup(request.params.id);
        const group = await directory.updateGroup(request.params.id, request.body);
        await record(request, 'group.update', `group:${group.id}`, {
          name: group.name,
          ...(before.name !== group.name ? { previousName: before.name } : {}),
          ...(before.description !== group.description ? { description: group.description } : {}),
          ...(before.homeSizeBytes !== group.homeSizeBytes ? { homeSizeBytes: group.homeSizeBytes } : {}),
          ...(before.weeklyUsageLimitS !== group.weeklyUsageLimitS
            ? { weeklyUsageLimitS: group.weeklyUsageLimitS }
            : {}),
          ...(before.record !== group.record ? { record: group.record } : {}),
        });
        return groupView(group.id);
      },
    );

    routes.delete(
      '/api/admin/groups/:id',
      { schema: { params: IdParams, response: { 204: NoContent } } },
      async (request, reply) => {
        const group = await directory.deleteGroup(request.params.id);
        await record(request, 'group.delete', `group:${group.id}`, { name: group.name });
        return reply.status(204).send(null);
      },
    );

    routes.put(
      '/api/admin/groups/:id/members',
      { schema: { params: IdParams, body: SetMembersBody, response: { 200: AdminGroupSchema } } },
      async (request) => {
        const { group, added, removed, userNames } = await directory.setGroupMembers(
          request.params.id,
          request.body.userIds,
        );
        await record(request, 'group.members', `group:${group.id}`, {
          name: group.name,
          added,
          removed,
          userNames,
        });
        return groupView(group.id);
      },
    );

    // ---- Accounts ----

    routes.get(
      '/api/admin/accounts',
      { schema: { response: { 200: Type.Array(AdminAccountSchema) } } },
      async () => (await directory.listAccounts()).map(accountView),
    );

    routes.post(
      '/api/admin/accounts',
      { schema: { body: CreateAccountBody, response: { 201: AdminAccountSchema } } },
      async (request, reply) => {
        const account = await directory.createAccount(request.body);
        await record(request, 'account.create', `account:${account.accountId}`, { name: account.name });
        return reply.status(201).send(accountView(account));
      },
    );

    routes.patch(
      '/api/admin/accounts/:accountId',
      { schema: { params: AccountIdParams, body: UpdateAccountBody, response: { 200: AdminAccountSchema } } },
      async (request) => {
        const before = await directory.getAccount(request.params.accountId);
        const account = await directory.updateAccount(request.params.accountId, request.body);
        await record(request, 'account.update', `account:${account.accountId}`, {
          name: account.name,
          previousName: before.name,
        });
        return accountView(account);
      },
    );

    routes.delete(
      '/api/admin/accounts/:accountId',
      { schema: { params: AccountIdParams, response: { 204: NoContent } } },
      async (request, reply) => {
        const account = await directory.deleteAccount(request.params.accountId);
        await record(request, 'account.delete', `account:${account.accountId}`, { name: account.name });
        return reply.status(204).send(null);
      },
    );

    // ---- Permission sets ----

    routes.get(
      '/api/admin/permission-sets',
      { schema: { response: { 200: Type.Array(AdminPermissionSetSchema) } } },
      async () => (await directory.listPermissionSets()).map(permissionSetView),
    );

    routes.post(
      '/api/admin/permission-sets',
      { schema: { body: CreatePermissionSetBody, response: { 201: AdminPermissionSetSchema } } },
      async (request, reply) => {
        const set = await directory.createPermissionSet(request.body);
        await record(request, 'permission_set.create', `permission_set:${set.id}`, {
          name: set.name,
          sessionDurationS: set.sessionDurationS,
          roleArnTemplate: set.roleArnTemplate,
          sessionPolicy: set.sessionPolicy !== null,
          roleOverrides: Object.keys(set.roleOverrides),
          ...(set.record !== 'off' ? { record: set.record } : {}),
        });
        return reply.status(201).send(permissionSetView(set));
      },
    );

    routes.patch(
      '/api/admin/permission-sets/:id',
      {
        schema: {
          params: IdParams,
          body: UpdatePermissionSetBody,
          response: { 200: AdminPermissionSetSchema },
        },
      },
      async (request) => {
        const { set, changed } = await directory.updatePermissionSet(request.params.id, request.body);
        await record(request, 'permission_set.update', `permission_set:${set.id}`, {
          name: set.name,
          changed,
        });
        return permissionSetView(set);
      },
    );

    routes.delete(
      '/api/admin/permission-sets/:id',
      { schema: { params: IdParams, response: { 204: NoContent } } },
      async (request, reply) => {
        const set = await directory.deletePermissionSet(request.params.id);
        await record(request, 'permission_set.delete', `permission_set:${set.id}`, { name: set.name });
        return reply.status(204).send(null);
      },
    );

    // ---- Assignments ----

    routes.get(
      '/api/admin/assignments',
      { schema: { response: { 200: Type.Array(AdminAssignmentSchema) } } },
      () => directory.listAssignments(),
    );

    routes.post(
      '/api/admin/assignments',
      { schema: { body: CreateAssignmentBody, response: { 201: AdminAssignmentSchema } } },
      async (request, reply) => {
        const assignment = await directory.createAssignment(request.body);
        await record(request, 'assignment.create', `assignment:${assignment.id}`, {
          principal: `${assignment.principalType}:${assignment.principalName}`,
          accountId: assignment.accountId,
          permissionSet: assignment.permissionSet,
        });
        return reply.status(201).send(assignment);
      },
    );

    routes.delete(
      '/api/admin/assignments/:id',
      { schema: { params: IdParams, response: { 204: NoContent } } },
      async (request, reply) => {
        const assignment = await directory.deleteAssignment(request.params.id);
        await record(request, 'assignment.delete', `assignment:${assignment.id}`, {
          principal: `${assignment.principalType}:${assignment.principalName}`,
          accountId: assignment.accountId,
          permissionSet: assignment.permissionSet,
        });
        return reply.status(204).send(null);
      },
    );

    // ---- Audit log ----

    routes.get(
      '/api/admin/audit',
      { schema: { querystring: AuditQuery, response: { 200: AuditReply } } },
      async (request) => {
        const { limit, beforeId, action } = request.query;
        const entries = await store.audit.list({
          limit: limit ?? 100,
          ...(beforeId !== undefined ? { beforeId } : {}),
          ...(action !== undefined ? { action } : {}),
        });
        return {
          entries: entries.map((e) => ({
            id: e.id,
            at: iso(e.at),
            actor: e.actorName,
            action: e.action,
            target: e.target,
            details: e.details,
            ip: e.ip,
          })),
        };
      },
    );
  });
}
