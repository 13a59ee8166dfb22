/**
 * Admin: start a group's environments ahead of a lesson, and follow the progress. Admins only;
 * every start is audited once with the group, region and count.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { audit } from '../audit.js';
import { regionGuard } from '../regions.js';
import type { PrestartProgress } from '../protocol/api.js';
import { ErrorBody, type Fits } from '../route-schemas.js';

const Id = Type.String({ minLength: 1, maxLength: 100 });
const Progress = Type.Object({
  id: Type.String(),
  groupId: Type.String(),
  groupName: Type.String(),
  region: Type.String(),
  total: Type.Integer(),
  started: Type.Integer(),
  skipped: Type.Integer(),
  failed: Type.Integer(),
  failures: Type.Array(Type.Object({ username: Type.String(), message: Type.String() })),
  done: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
});

export const prestartProtocolProofs = [true satisfies Fits<typeof Progress, PrestartProgress>] as const;

export default async function prestartRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const checkRegion = regionGuard(app.config);
  await app.register(async (admin) => {
    const routes = admin.withTypeProvider<TypeBoxTypeProvider>();
    routes.addHook('onRequest', app.requireAdmin);

    routes.post(
      '/api/admin/groups/:groupId/prestart',
      {
        schema: {
          params: Type.Object({ groupId: Id }),
          body: Type.Object(
            { region: Type.String({ minLength: 1, maxLength: 64 }) },
            { additionalProperties: false },
          ),
          response: { 202: Progress, '4xx': ErrorBody, '5xx': ErrorBody },
        },
      },
      async (request, reply) => {
        const { region } = request.body;
        checkRegion(region);
        const progress = await app.prestarts.start(request.params.groupId, region);
        await audit(app.store, request, {
          action: 'admin.environments.prestart',
          target: `group:${progress.groupId}`,
          details: { group: progress.groupName, region, total: progress.total, prestartId: progress.id },
        });
        return reply.code(202).send(progress);
      },
    );

    routes.get(
      '/api/admin/prestarts/:id',
      {
        schema: {
          params: Type.Object({ id: Id }),
          response: { 200: Progress, '4xx': ErrorBody, '5xx': ErrorBody },
        },
      },
      async (request) => app.prestarts.get(request.params.id),
    );
  });
}
