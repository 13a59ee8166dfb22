/**
 * The admin console's SCIM tokens: list (never the values), create (the value is in this one
 * answer only) and revoke. Behind `app.requireAdmin`, audited by the service.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';

const TokenView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  providerId: Type.String(),
  createdAt: Type.String(),
  lastUsedAt: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
});

export default async function scimAdminRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  await app.register(async (admin) => {
    const routes = admin.withTypeProvider<TypeBoxTypeProvider>();
    routes.addHook('onRequest', app.requireAdmin);

    routes.get('/api/admin/scim-tokens', { schema: { response: { 200: Type.Array(TokenView) } } }, () =>
      app.scim.listTokens(),
    );

    routes.post(
      '/api/admin/scim-tokens',
      {
        schema: {
          body: Type.Object(
            {
              name: Type.String({
                maxLength: 200,
                description: 'What the token is for, e.g. "Okta production".',
              }),
              providerId: Type.String({
                maxLength: 100,
                description: 'The auth.oidc provider id its users sign in with.',
              }),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ token: TokenView, secret: Type.String() }) },
        },
      },
      async (request, reply) => reply.status(201).send(await app.scim.createToken(request, request.body)),
    );

    routes.post(
      '/api/admin/scim-tokens/:id/revoke',
      {
        schema: {
          params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
          response: { 200: TokenView },
        },
      },
      async (request) => app.scim.revokeToken(request, request.params.id),
    );
  });
}
