/**
 * Command line access: `POST /api/credentials` gives the signed-in user temporary credentials for
 * one of their own assignments, for the portal's panel (see server/protocol/credentials.ts).
 * Secrets travel only in this response body: `no-store`, never in a URL, never logged (Fastify
 * logs no bodies; errors carry only coded messages).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { regionGuard } from '../regions.js';
import type { CliCredentialsRequest, CliCredentialsResponse } from '../protocol/credentials.js';
import { ErrorBody, type Fits } from '../route-schemas.js';

/** Loose lengths on purpose: anything unknown gets the same 403 as "not assigned", not a schema error. */
const CredentialsBody = Type.Object(
  {
    accountId: Type.String({ minLength: 1, maxLength: 64 }),
    permissionSet: Type.String({ minLength: 1, maxLength: 128 }),
    region: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
const CredentialsReply = Type.Object({
  accessKeyId: Type.String(),
  secretAccessKey: Type.String(),
  sessionToken: Type.String(),
  expiration: Type.String({ format: 'date-time' }),
  region: Type.String(),
  notice: Type.Optional(Type.String()),
});

export const credentialProtocolProofs = [
  true satisfies Fits<typeof CredentialsBody, CliCredentialsRequest>,
  true satisfies Fits<typeof CredentialsReply, CliCredentialsResponse>,
] as const;

export default async function credentialRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const checkRegion = regionGuard(app.config);
  const userOf = (request: FastifyRequest) =>
    (request.principal as NonNullable<FastifyRequest['principal']>).user;

  app.post(
    '/api/credentials',
    {
      preHandler: app.requireUser,
      schema: {
        body: CredentialsBody,
        response: { 200: CredentialsReply, '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (request, reply) => {
      // Before anything can fail: no cache may keep even an error of this route.
      void reply.header('cache-control', 'no-store');
      const { accountId, permissionSet, region = app.config.defaultRegion } = request.body;
      checkRegion(region);
      const issued = await app.credentials.forAssignment(userOf(request).id, accountId, permissionSet, {
        purpose: 'cli',
        request,
      });
      const { credentials } = issued;
      return {
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey,
        sessionToken: credentials.sessionToken,
        expiration: credentials.expiration.toISOString(),
        region,
        ...(issued.notice ? { notice: issued.notice } : {}),
      };
    },
  );
}
