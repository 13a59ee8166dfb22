/**
 * Environment and home routes: the status line's view (`GET /api/environments/:region`), Restart
 * environment, Delete home, and the admin's list and delete. Users only ever reach their own
 * environment (the key is their id, never a parameter); admins name a user id.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { audit } from '../audit.js';
import { errors } from '../errors.js';
import { regionGuard } from '../regions.js';
import type { AdminHome, DeleteHomeRequest, EnvironmentInfo } from '../protocol/api.js';
import { ErrorBody, type Fits } from '../route-schemas.js';

const Time = Type.String({ format: 'date-time' });
const RegionParams = Type.Object({ region: Type.String({ minLength: 1, maxLength: 64 }) });
const AdminHomeParams = Type.Object({
  userId: Type.String({ minLength: 1, maxLength: 100 }),
  region: Type.String({ minLength: 1, maxLength: 64 }),
});
/** Loose on purpose: anything but the word gets a 400 that says what to type, not a schema error. */
const DeleteBody = Type.Object({ confirm: Type.Optional(Type.Unknown()) });

const HomeView = Type.Object({
  usedBytes: Type.Integer(),
  totalBytes: Type.Integer(),
  sizeBytes: Type.Integer(),
  lastUsedAt: Time,
  expiresAt: Time,
});
const EnvironmentReply = Type.Object({
  status: Type.Union([Type.Literal('running'), Type.Literal('stopped'), Type.Literal('missing')]),
  home: Type.Union([HomeView, Type.Null()]),
});
const RestartReply = Type.Object({ terminalsClosed: Type.Integer() });
const DeleteReply = Type.Object({ deleted: Type.Boolean(), terminalsClosed: Type.Integer() });
const AdminHomeSchema = Type.Object({
  userId: Type.String(),
  username: Type.Union([Type.String(), Type.Null()]),
  region: Type.String(),
  sizeBytes: Type.Integer(),
  usedBytes: Type.Union([Type.Integer(), Type.Null()]),
  lastUsedAt: Time,
  expiresAt: Time,
});

export const homeProtocolProofs = [
  true satisfies Fits<typeof EnvironmentReply, EnvironmentInfo>,
  true satisfies Fits<typeof AdminHomeSchema, AdminHome>,
] as const;

const confirmed = (body: { confirm?: unknown } | undefined): body is DeleteHomeRequest =>
  body?.confirm === 'delete';

export default async function homeRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const checkRegion = regionGuard(app.config);
  const userOf = (request: FastifyRequest) =>
    (request.principal as NonNullable<FastifyRequest['principal']>).user;

  app.get(
    '/api/environments/:region',
    {
      preHandler: app.requireUser,
      schema: {
        params: RegionParams,
        response: { 200: EnvironmentReply, '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (request) => {
      const { region } = request.params;
      checkRegion(region);
      const key = { ownerId: userOf(request).id, region };
      const [status, home] = await Promise.all([app.environments.status(key), app.homes.view(key)]);
      return { status: status.state, home };
    },
  );

  app.post(
    '/api/environments/:region/restart',
    {
      preHandler: app.requireUser,
      schema: {
        params: RegionParams,
        body: Type.Optional(Type.Object({}, { additionalProperties: false })),
        response: { 200: RestartReply, '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (request) => {
      const { region } = request.params;
      checkRegion(region);
      const key = { ownerId: userOf(request).id, region };
      const result = await app.homeLifecycle.restart(key);
      await audit(app.store, request, {
        action: 'environment.restart',
        target: `environment:${region}:${key.ownerId}`,
        details: { region, terminalsClosed: result.terminalsClosed },
      });
      return result;
    },
  );

  app.delete(
    '/api/environments/:region/home',
    {
      preHandler: app.requireUser,
      schema: {
        params: RegionParams,
        body: Type.Optional(DeleteBody),
        response: { 200: DeleteReply, '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (request) => {
      const { region } = request.params;
      checkRegion(region);
      if (!confirmed(request.body)) throw errors.homeConfirmRequired();
      const key = { ownerId: userOf(request).id, region };
      const result = await app.homeLifecycle.deleteHome(key);
      await audit(app.store, request, {
        action: 'home.delete',
        target: `home:${region}:${key.ownerId}`,
        details: { region, ...result },
      });
      return result;
    },
  );

  await app.register(async (admin) => {
    const routes = admin.withTypeProvider<TypeBoxTypeProvider>();
    routes.addHook('onRequest', app.requireAdmin);

    routes.get(
      '/api/admin/homes',
      { schema: { response: { 200: Type.Array(AdminHomeSchema), '5xx': ErrorBody } } },
      () => app.homes.adminList(),
    );

    routes.delete(
      '/api/admin/homes/:userId/:region',
      {
        schema: {
          params: AdminHomeParams,
          body: Type.Optional(DeleteBody),
          response: { 200: DeleteReply, '4xx': ErrorBody, '5xx': ErrorBody },
        },
      },
      async (request) => {
        const { userId, region } = request.params;
        checkRegion(region);
        if (!confirmed(request.body)) throw errors.homeConfirmRequired();
        const key = { ownerId: userId, region };
        if (!(await app.homes.info(key))) throw errors.notFound('That home');
        const result = await app.homeLifecycle.deleteHome(key);
        await audit(app.store, request, {
          action: 'admin.home.delete',
          target: `home:${region}:${userId}`,
          details: { region, userId, ...result },
        });
        return result;
      },
    );
  });
}
