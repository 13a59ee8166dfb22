/**
 * `/scim/v2`: the SCIM 2.0 API for identity providers' provisioning connectors. A machine API:
 * a SCIM bearer token is the only credential (no cookies; exempt from the browser origin rule in
 * server/plugins/csrf.ts), bodies are `application/scim+json` (or `application/json`), and every
 * failure answers in SCIM's error shape (RFC 7644 §3.12), audited.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { CoveError } from '../errors.js';
import { ScimError, scimErrors } from './scim-error.js';
import { schemaUrns } from './scim-schema.js';
import type { ListQuery, ScimClient } from './scim-service.js';

declare module 'fastify' {
  interface FastifyRequest {
    scimClient: ScimClient | undefined;
  }
}

export const scimPrefix = '/scim/v2';
/** 1,000 members at ~100 bytes each, with room: larger bodies are refused before parsing. */
const bodyLimitBytes = 256 * 1024;
const scimType = 'application/scim+json; charset=utf-8';

/*
 * Request schemas only: answers are SCIM JSON the service builds and this file serializes with
 * SCIM's content type. A schema refusal still answers in SCIM's error shape (setErrorHandler).
 * The filter's length is the parser's to refuse, as `invalidFilter`.
 */
// Fastify's router refuses longer path parameters itself (414, maxParamLength 100).
const idSchema = { params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }) };
const listSchema = {
  querystring: Type.Object({
    filter: Type.Optional(Type.String()),
    startIndex: Type.Optional(Type.String({ maxLength: 12 })),
    count: Type.Optional(Type.String({ maxLength: 12 })),
    excludedAttributes: Type.Optional(Type.String({ maxLength: 256 })),
    attributes: Type.Optional(Type.String({ maxLength: 256 })),
  }),
};

type IdRequest = FastifyRequest<{ Params: { id: string } }>;
type ListRequest = FastifyRequest<{ Querystring: ListQuery }>;

function asScimError(error: FastifyError | Error, request: FastifyRequest): ScimError {
  if (error instanceof ScimError) return error;
  switch ((error as FastifyError).code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return scimErrors.mediaType();
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return scimErrors.tooLarge(
        `The request body is larger than ${bodyLimitBytes / 1024} KiB. Send fewer members per request.`,
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return scimErrors.invalidSyntax('The request body is not valid JSON.');
  }
  if (error instanceof CoveError)
    return new ScimError(error.statusCode, error.message, undefined, error.code);
  // A request schema refused a part of the request (`querystring/startIndex must NOT have …`).
  if ((error as FastifyError).validation)
    return scimErrors.invalidValue(`The request is not valid: ${error.message.slice(0, 200)}.`);
  const status = (error as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500)
    return new ScimError(status, 'The request is not valid.', undefined, 'request_invalid');
  request.log.error({ err: error }, 'unhandled SCIM error');
  return new ScimError(
    500,
    `Cove could not do that (reference ${request.id}). Try again; if it keeps failing, tell the Cove administrator.`,
    undefined,
    'internal',
  );
}

function send(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.status(status).type(scimType).send(JSON.stringify(body));
}

export default async function scimRoutes(app: FastifyInstance): Promise<void> {
  const { scim } = app;
  await app.register(
    async (routes) => {
      routes.decorateRequest('scimClient', undefined);
      routes.removeAllContentTypeParsers();
      routes.addContentTypeParser(
        ['application/scim+json', 'application/json'],
        { parseAs: 'string', bodyLimit: bodyLimitBytes },
        (_request, body, done) => {
          try {
            done(null, JSON.parse(body as string));
          } catch {
            done(scimErrors.invalidSyntax('The request body is not valid JSON.'));
          }
        },
      );
      // onRequest: no body is read for a caller without a valid token.
      routes.addHook('onRequest', async (request) => {
        request.scimClient = await scim.authenticate(request.headers.authorization, request.ip);
      });
      routes.setErrorHandler(async (error: FastifyError | Error, request, reply) => {
        const scimError = asScimError(error, request);
        request.log.info({ status: scimError.status, reason: scimError.reason }, 'SCIM request refused');
        try {
          // A throttled address was audited up to its limit; more rows would only let it fill the log.
          if (scimError.reason !== 'throttled') await scim.refused(request, request.scimClient, scimError);
        } catch (auditError) {
          request.log.error({ err: auditError }, 'could not audit a SCIM refusal');
        }
        reply.headers(scimError.headers);
        if (scimError.status === 401) reply.header('www-authenticate', 'Bearer realm="Cove SCIM"');
        return send(reply, scimError.status, scimError);
      });
      routes.setNotFoundHandler(async (request) => {
        request.scimClient = await scim.authenticate(request.headers.authorization, request.ip);
        throw scimErrors.notFound('That SCIM endpoint');
      });

      const client = (request: FastifyRequest): ScimClient => request.scimClient as ScimClient;
      const listOf = (resources: unknown[]) => ({
        schemas: [schemaUrns.listResponse],
        totalResults: resources.length,
        startIndex: 1,
        itemsPerPage: resources.length,
        Resources: resources,
      });

      // ---- Discovery ----
      routes.get('/ServiceProviderConfig', async (_request, reply) =>
        send(reply, 200, scim.serviceProviderConfig()),
      );
      routes.get('/ResourceTypes', async (_request, reply) => send(reply, 200, listOf(scim.resourceTypes())));
      routes.get('/ResourceTypes/:id', { schema: idSchema }, async (request: IdRequest, reply) => {
        const found = scim.resourceTypes().find((r) => r.id === request.params.id);
        if (!found) throw scimErrors.notFound(`Resource type ${request.params.id.slice(0, 100)}`);
        return send(reply, 200, found);
      });
      routes.get('/Schemas', async (_request, reply) => send(reply, 200, listOf(scim.schemas())));
      routes.get('/Schemas/:id', { schema: idSchema }, async (request: IdRequest, reply) => {
        const found = scim.schemas().find((s) => s.id === request.params.id);
        if (!found) throw scimErrors.notFound(`Schema ${request.params.id.slice(0, 200)}`);
        return send(reply, 200, found);
      });

      // ---- Users ----
      routes.get('/Users', { schema: listSchema }, async (request: ListRequest, reply) =>
        send(reply, 200, await scim.listUsers(client(request), request.query)),
      );
      routes.post('/Users', async (request, reply) => {
        const user = await scim.createUser(request, client(request), request.body);
        reply.header('location', (user.meta as { location: string }).location);
        return send(reply, 201, user);
      });
      routes.get('/Users/:id', { schema: idSchema }, async (request: IdRequest, reply) =>
        send(reply, 200, await scim.getUser(client(request), request.params.id)),
      );
      routes.put('/Users/:id', { schema: idSchema }, async (request: IdRequest, reply) =>
        send(reply, 200, await scim.replaceUser(request, client(request), request.params.id, request.body)),
      );
      routes.patch('/Users/:id', { schema: idSchema }, async (request: IdRequest, reply) =>
        send(reply, 200, await scim.patchUser(request, client(request), request.params.id, request.body)),
      );
      routes.delete('/Users/:id', { schema: idSchema }, async (request: IdRequest, reply) => {
        await scim.deleteUser(request, client(request), request.params.id);
        return reply.status(204).send();
      });

      // ---- Groups ----
      routes.get('/Groups', { schema: listSchema }, async (request: ListRequest, reply) =>
        send(reply, 200, await scim.listGroups(client(request), request.query)),
      );
      routes.post('/Groups', async (request, reply) => {
        const group = await scim.createGroup(request, client(request), request.body);
        reply.header('location', (group.meta as { location: string }).location);
        return send(reply, 201, group);
      });
      routes.get(
        '/Groups/:id',
        { schema: { ...idSchema, querystring: listSchema.querystring } },
        async (request: FastifyRequest<{ Params: { id: string }; Querystring: ListQuery }>, reply) =>
          send(reply, 200, await scim.getGroup(client(request), request.params.id, request.query)),
      );
      routes.put('/Groups/:id', { schema: idSchema }, async (request: IdRequest, reply) =>
        send(reply, 200, await scim.replaceGroup(request, client(request), request.params.id, request.body)),
      );
      routes.patch('/Groups/:id', { schema: idSchema }, async (request: IdRequest, reply) => {
        await scim.patchGroup(request, client(request), request.params.id, request.body);
        return reply.status(204).send();
      });
      routes.delete('/Groups/:id', { schema: idSchema }, async (request: IdRequest, reply) => {
        await scim.deleteGroup(request, client(request), request.params.id);
        return reply.status(204).send();
      });
    },
    { prefix: scimPrefix },
  );
}
