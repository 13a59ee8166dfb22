/**
 * The AWS CLI sign-in's HTTP faces:
 * - `/aws/oidc/*`: SSO OIDC (RegisterClient, StartDeviceAuthorization, CreateToken) as AWS's
 *   rest-json protocol has them, for `AWS_ENDPOINT_URL_SSO_OIDC`;
 * - `/aws/portal/*`: the portal API (ListAccounts, ListAccountRoles, GetRoleCredentials,
 *   Logout), for `AWS_ENDPOINT_URL_SSO`;
 * - `/aws/oidc/authorize`: where the CLI sends the browser (authorization code flow);
 * - `/api/sso/*`: the "Authorize request" page and the portal's laptop config;
 * - `/start`: the start URL, which opens the portal.
 * The `/aws` APIs take no cookies: only the client secret or the bearer token counts, so the
 * CSRF rules (which are about cookies) do not apply to them (server/plugins/csrf.ts).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AwsApiError, oidcErrors, portalErrors } from './aws-api-error.js';
import type { SsoCaller } from './sso-sign-in-service.js';
import { ErrorBody } from '../route-schemas.js';

const S = Type.Optional(Type.String({ maxLength: 4096 }));

/** Answers with AWS's shape; anything unexpected is logged and becomes AWS's generic 500. */
function awsErrorHandler(fallback: () => AwsApiError, invalid: (message: string) => AwsApiError) {
  return (error: FastifyError | AwsApiError, request: FastifyRequest, reply: FastifyReply) => {
    let aws: AwsApiError;
    if (error instanceof AwsApiError) aws = error;
    else if ('validation' in error && error.validation) aws = invalid('The request is not valid.');
    else if ('statusCode' in error && error.statusCode !== undefined && error.statusCode < 500)
      aws = invalid('The request is not valid.');
    else {
      request.log.error({ err: error }, 'unhandled error');
      aws = fallback();
    }
    if (aws.statusCode < 500) request.log.info({ awsError: aws.type }, 'request refused');
    return reply
      .status(aws.statusCode)
      .header('x-amzn-errortype', aws.type)
      .header('cache-control', 'no-store')
      .send(aws.body);
  };
}

async function oidcApi(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler(awsErrorHandler(oidcErrors.internal, oidcErrors.invalidRequest));
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('cache-control', 'no-store');
  });

  app.post(
    '/client/register',
    {
      schema: {
        body: Type.Object(
          {
            clientName: S,
            clientType: S,
            scopes: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 20 })),
            grantTypes: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 10 })),
            redirectUris: Type.Optional(Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 10 })),
            issuerUrl: S,
          },
          { additionalProperties: true },
        ),
        response: {
          200: Type.Object({
            clientId: Type.String(),
            clientSecret: Type.String(),
            clientIdIssuedAt: Type.Integer(),
            clientSecretExpiresAt: Type.Integer(),
            authorizationEndpoint: Type.String(),
            tokenEndpoint: Type.String(),
          }),
        },
      },
    },
    async (request) => app.ssoSignIn.registerClient(request.body, request.ip),
  );

  app.post(
    '/device_authorization',
    {
      schema: {
        body: Type.Object({ clientId: S, clientSecret: S, startUrl: S }, { additionalProperties: true }),
        response: {
          200: Type.Object({
            deviceCode: Type.String(),
            userCode: Type.String(),
            verificationUri: Type.String(),
            verificationUriComplete: Type.String(),
            expiresIn: Type.Integer(),
            interval: Type.Integer(),
          }),
        },
      },
    },
    async (request) => app.ssoSignIn.startDeviceAuthorization(request.body, request.ip),
  );

  app.post(
    '/token',
    {
      schema: {
        body: Type.Object(
          {
            clientId: S,
            clientSecret: S,
            grantType: S,
            deviceCode: S,
            code: S,
            refreshToken: S,
            redirectUri: S,
            codeVerifier: S,
            scope: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 20 })),
          },
          { additionalProperties: true },
        ),
        response: {
          200: Type.Object({
            accessToken: Type.String(),
            tokenType: Type.String(),
            expiresIn: Type.Integer(),
            refreshToken: Type.String(),
          }),
        },
      },
    },
    async (request) => app.ssoSignIn.createToken(request.body),
  );
}

const bearer = (request: FastifyRequest): string | undefined => {
  const value = request.headers['x-amz-sso_bearer_token'];
  return typeof value === 'string' ? value : undefined;
};

async function portalApi(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler(
    awsErrorHandler(
      () => portalErrors.tooManyRequests('Cove could not answer. Try again.'),
      portalErrors.invalidRequest,
    ),
  );
  // Every portal call needs a live access token; the caller rides on the request.
  app.decorateRequest('ssoCaller', undefined);
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('cache-control', 'no-store');
    const caller = await app.ssoSignIn.caller(bearer(request));
    if (!caller) throw portalErrors.unauthorized();
    request.ssoCaller = caller;
  });
  // Logout sends no body, sometimes with a JSON content type: take it as empty.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, _body, done) =>
    done(null, {}),
  );

  const Page = { next_token: S, max_result: S };
  const callerOf = (request: FastifyRequest) => request.ssoCaller as NonNullable<FastifyRequest['ssoCaller']>;

  app.get(
    '/assignment/accounts',
    {
      schema: {
        querystring: Type.Object(Page),
        response: {
          200: Type.Object({
            accountList: Type.Array(Type.Object({ accountId: Type.String(), accountName: Type.String() })),
            nextToken: Type.Optional(Type.String()),
          }),
        },
      },
    },
    async (request) =>
      app.ssoPortal.listAccounts(callerOf(request), {
        nextToken: request.query.next_token,
        maxResults: request.query.max_result,
      }),
  );

  app.get(
    '/assignment/roles',
    {
      schema: {
        querystring: Type.Object({ account_id: S, ...Page }),
        response: {
          200: Type.Object({
            roleList: Type.Array(Type.Object({ roleName: Type.String(), accountId: Type.String() })),
            nextToken: Type.Optional(Type.String()),
          }),
        },
      },
    },
    async (request) =>
      app.ssoPortal.listAccountRoles(callerOf(request), request.query.account_id, {
        nextToken: request.query.next_token,
        maxResults: request.query.max_result,
      }),
  );

  app.get(
    '/federation/credentials',
    {
      schema: {
        querystring: Type.Object({ role_name: S, account_id: S }),
        response: {
          200: Type.Object({
            roleCredentials: Type.Object({
              accessKeyId: Type.String(),
              secretAccessKey: Type.String(),
              sessionToken: Type.String(),
              expiration: Type.Number(),
            }),
          }),
        },
      },
    },
    async (request) =>
      app.ssoPortal.getRoleCredentials(
        callerOf(request),
        request.query.account_id,
        request.query.role_name,
        request,
      ),
  );

  app.post('/logout', { schema: { response: { 200: Type.Object({}) } } }, async (request) => {
    await app.ssoSignIn.logout(callerOf(request), request);
    return {};
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    ssoCaller: SsoCaller | undefined;
  }
}

export default async function ssoRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  await app.register(oidcApi, { prefix: '/aws/oidc' });
  await app.register(portalApi, { prefix: '/aws/portal' });

  const userOf = (request: FastifyRequest) =>
    (request.principal as NonNullable<FastifyRequest['principal']>).user;

  app.get('/start', { schema: { response: { 302: Type.Null() } } }, async (_request, reply) =>
    reply.redirect('/', 302),
  );

  app.get(
    '/aws/oidc/authorize',
    {
      schema: {
        querystring: Type.Object({
          response_type: S,
          client_id: S,
          redirect_uri: S,
          state: S,
          code_challenge: S,
          code_challenge_method: S,
          scopes: S,
        }),
        response: { 302: Type.Null(), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const page = await app.ssoSignIn.authorize({
        responseType: q.response_type,
        clientId: q.client_id,
        redirectUri: q.redirect_uri,
        state: q.state,
        codeChallenge: q.code_challenge,
        codeChallengeMethod: q.code_challenge_method,
      });
      return reply.header('cache-control', 'no-store').redirect(page, 302);
    },
  );

  const RequestView = Type.Object({
    userCode: Type.String(),
    kind: Type.Union([Type.Literal('device'), Type.Literal('code')]),
    clientName: Type.String(),
    expiresAt: Type.Integer(),
  });
  const CodeParams = Type.Object({ userCode: Type.String({ minLength: 1, maxLength: 32 }) });

  app.get(
    '/api/sso/requests/:userCode',
    {
      preHandler: app.requireUser,
      schema: { params: CodeParams, response: { 200: RequestView, '4xx': ErrorBody } },
    },
    async (request) => app.ssoSignIn.requestFor(userOf(request), request.params.userCode),
  );

  app.post(
    '/api/sso/requests/:userCode/decision',
    {
      preHandler: app.requireUser,
      schema: {
        params: CodeParams,
        body: Type.Object({ allow: Type.Boolean() }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            status: Type.Union([Type.Literal('approved'), Type.Literal('denied')]),
            redirectTo: Type.Optional(Type.String()),
          }),
          '4xx': ErrorBody,
        },
      },
    },
    async (request) =>
      app.ssoSignIn.decide(userOf(request), request.params.userCode, request.body.allow, request),
  );

  app.get(
    '/api/sso/laptop-config',
    {
      preHandler: app.requireUser,
      schema: {
        response: {
          200: Type.Object({ startUrl: Type.String(), region: Type.String(), config: Type.String() }),
          '4xx': ErrorBody,
        },
      },
    },
    async (request) => app.ssoPortal.laptopConfigFor(userOf(request).id),
  );
}
