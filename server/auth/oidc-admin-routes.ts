/**
 * The admin console's identity providers: each configured provider with its users and last
 * sign-in, and a Test that fetches its discovery document now. Behind `app.requireAdmin`.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';

const ProviderView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  issuer: Type.String(),
  provisioning: Type.String(),
  users: Type.Integer(),
  lastSignInAt: Type.Union([Type.String(), Type.Null()]),
});

export default async function oidcAdminRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  await app.register(async (admin) => {
    const routes = admin.withTypeProvider<TypeBoxTypeProvider>();
    routes.addHook('onRequest', app.requireAdmin);
    routes.get(
      '/api/admin/identity-providers',
      { schema: { response: { 200: Type.Array(ProviderView) } } },
      () => app.oidc.adminList(),
    );
    routes.post(
      '/api/admin/identity-providers/:id/test',
      {
        schema: {
          params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
          response: {
            200: Type.Object({ ok: Type.Boolean(), checkedAt: Type.String(), message: Type.String() }),
          },
        },
      },
      async (request) => app.oidc.test(request, request.params.id),
    );
  });
}
