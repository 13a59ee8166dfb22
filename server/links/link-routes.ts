/**
 * "Open in Cove" link routes. The shell page asks `GET /api/links/repository` what a link's `git=`
 * would clone (so the confirmation card can name the folder, or say why it is refused, before
 * anything happens), then, once the user confirmed and the terminal is open,
 * `POST /api/environments/:region/clones`. Both need a signed-in full session; the POST also the
 * CSRF check every state-changing route gets. The environment is always the caller's own (the key
 * is their id, never a parameter). The typed command never reaches the server.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { SANDBOX_HOME } from '../../sandbox/index.js';
import { regionGuard } from '../regions.js';
import { maxGitUrlLength } from './git-link.js';
import { RepositoryCloner } from './repository-cloner.js';
import { ErrorBody } from '../route-schemas.js';

// Longer than a link may be, so an over-long one gets the coded refusal rather than a schema error.
const GitUrl = Type.String({ maxLength: maxGitUrlLength * 4 });
const RegionParams = Type.Object({ region: Type.String({ minLength: 1, maxLength: 64 }) });
const Repository = Type.Object({ url: Type.String(), folder: Type.String() });
const CloneReply = Type.Object({
  url: Type.String(),
  folder: Type.String(),
  outcome: Type.Union([Type.Literal('cloned'), Type.Literal('reused')]),
});

export default async function linkRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const checkRegion = regionGuard(app.config);
  const cloner = new RepositoryCloner({
    allowedPrefixes: app.config.links.gitAllowedPrefixes,
    timeoutMs: app.config.links.cloneTimeoutS * 1000,
    home: SANDBOX_HOME,
    environments: {
      status: (key) => app.environments.status(key),
      hold: (key) => app.environments.hold(key),
      exec: (key, cmd, options) => app.environments.driver(key.region).exec(key, cmd, options),
    },
  });
  const userOf = (request: FastifyRequest) =>
    (request.principal as NonNullable<FastifyRequest['principal']>).user;

  app.get(
    '/api/links/repository',
    {
      preHandler: app.requireUser,
      schema: {
        querystring: Type.Object({ git: GitUrl }),
        response: { 200: Repository, '4xx': ErrorBody },
      },
    },
    async (request) => cloner.check(request.query.git),
  );

  app.post(
    '/api/environments/:region/clones',
    {
      preHandler: app.requireUser,
      schema: {
        params: RegionParams,
        body: Type.Object({ git: GitUrl }, { additionalProperties: false }),
        response: { 200: CloneReply, '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (request) => {
      checkRegion(request.params.region);
      const key = { ownerId: userOf(request).id, region: request.params.region };
      const result = await cloner.clone(key, request.body.git);
      request.log.info({ region: key.region, folder: result.folder, outcome: result.outcome }, 'link clone');
      return result;
    },
  );
}
