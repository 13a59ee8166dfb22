/**
 * Terminal HTTP and WebSocket routes.
 *
 * The WebSocket is checked before the upgrade: a signed-in full session (else HTTP 401, no 101),
 * the exact configured Origin (else 403), a well-formed id (else 400). Tokens in the query string
 * are never read. An unknown id and another user's id are both accepted and then closed with
 * 4404, so the two cannot be told apart (and a browser, which cannot see an HTTP status of a
 * refused upgrade, learns that the terminal is gone and can offer a new one).
 */
import type { Socket } from 'node:net';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { errors } from '../errors.js';
import { regionGuard } from '../regions.js';
import { CloseCode } from '../protocol/terminal-wire.js';
import { terminalIdPattern } from './terminal-id.js';
import { TerminalSocket } from './terminal-socket.js';
import { TerminalOpener } from './terminal-opener.js';
import { SessionWatcher } from '../auth/session-watcher.js';
import type { Terminal } from './terminal.js';
import type {} from '../homes/home-service.js';
import type {} from '../usage/usage-meter.js';
import type {} from '../recordings/recording-service.js';
import { ErrorBody } from '../route-schemas.js';

// An empty region is let through to `checkRegion`, so it too gets the list of allowed ones.
const RegionParams = Type.Object({ region: Type.String({ maxLength: 64 }) });
const TerminalParams = Type.Object({
  region: Type.String({ minLength: 1, maxLength: 64 }),
  id: Type.String({ pattern: terminalIdPattern }),
});
const CreateBody = Type.Object(
  {
    accountId: Type.Optional(Type.String({ pattern: '^\\d{12}$' })),
    permissionSet: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);
const RecordedMode = Type.Union([Type.Literal('output'), Type.Literal('output+input')]);
const TerminalInfo = Type.Object({
  terminalId: Type.String(),
  createdAt: Type.Integer(),
  accountId: Type.Optional(Type.String()),
  permissionSet: Type.Optional(Type.String()),
  attached: Type.Boolean(),
  /** The session is recorded (the page says so in its banner and status line). */
  recorded: Type.Optional(RecordedMode),
});

const upgradeTimeoutMs = 5_000;

const info = (t: Terminal) => ({
  terminalId: t.id,
  createdAt: t.createdAt,
  ...(t.accountId ? { accountId: t.accountId } : {}),
  ...(t.permissionSet ? { permissionSet: t.permissionSet } : {}),
  attached: t.attached,
  ...(t.recorded ? { recorded: t.recorded } : {}),
});

export default async function terminalRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  // Fastify answers a bad URL or an over-long id (414) by itself, outside the hooks that end a
  // refused upgrade's socket, so such a socket would stay open for good. `ws` clears this timeout
  // when an upgrade completes.
  app.server.on('upgrade', (_request, socket: Socket) => {
    socket.setTimeout(upgradeTimeoutMs, () => socket.destroy());
  });
  const opener = new TerminalOpener({
    access: app.directory,
    environments: app.environments,
    usage: app.usage,
    homes: app.homes,
    terminals: app.terminals,
    recordings: app.recordings,
  });
  const { maxSocketsPerUser } = app.config.terminals;
  const socketsPerUser = new Map<string, number>();

  // The backstop behind the revocation events: an ended session, a disabled user or a removed
  // assignment closes the socket within one interval even when no event reached this process.
  const watcher = new SessionWatcher({
    store: app.store,
    now: app.now,
    intervalMs: app.config.auth.sessionRecheckS * 1000,
    hasAccess: (userId, accountId, permissionSet) => opener.hasAccess(userId, accountId, permissionSet),
    onError: (error) => app.log.warn({ err: error }, 'terminal session re-check failed'),
  });
  const accessChanged = app.directory.onAccessChanged(
    (change) => void watcher.recheck('all' in change ? undefined : change.userIds),
  );
  app.addHook('onClose', async () => {
    accessChanged.dispose();
    watcher.dispose();
  });

  const checkRegion = regionGuard(app.config);

  app.post(
    '/api/environments/:region/terminals',
    {
      preHandler: app.requireUser,
      schema: {
        params: RegionParams,
        body: Type.Optional(CreateBody),
        response: {
          201: Type.Object({ terminalId: Type.String(), recorded: Type.Optional(RecordedMode) }),
          '4xx': ErrorBody,
          '5xx': ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { region } = request.params;
      checkRegion(region);
      const user = (request.principal as NonNullable<FastifyRequest['principal']>).user;
      const terminal = await opener.open({ id: user.id, username: user.username }, region, request.body);
      request.log.info({ terminalId: terminal.id, region }, 'terminal created');
      return reply
        .status(201)
        .send({ terminalId: terminal.id, ...(terminal.recorded ? { recorded: terminal.recorded } : {}) });
    },
  );

  app.get(
    '/api/environments/:region/terminals',
    {
      preHandler: app.requireUser,
      schema: {
        params: RegionParams,
        response: { 200: Type.Object({ terminals: Type.Array(TerminalInfo) }), '4xx': ErrorBody },
      },
    },
    async (request) => {
      checkRegion(request.params.region);
      const userId = (request.principal as NonNullable<FastifyRequest['principal']>).user.id;
      return { terminals: app.terminals.list(userId, request.params.region).map(info) };
    },
  );

  app.delete(
    '/api/environments/:region/terminals/:id',
    {
      preHandler: app.requireUser,
      schema: { params: TerminalParams, response: { 204: Type.Null(), '4xx': ErrorBody } },
    },
    async (request, reply) => {
      checkRegion(request.params.region);
      const userId = (request.principal as NonNullable<FastifyRequest['principal']>).user.id;
      const terminal = app.terminals.get(userId, request.params.id);
      if (!terminal || terminal.region !== request.params.region) throw errors.notFound('That terminal');
      terminal.close('closed', null);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/environments/:region/terminals/:id/ws',
    {
      websocket: true,
      schema: { params: TerminalParams },
      // Runs before the upgrade: a refusal here is a plain HTTP response, never a 101.
      preValidation: async (request) => {
        if (request.headers.origin !== app.config.publicUrl) throw errors.csrf();
        await app.requireUser(request);
      },
    },
    (socket, request) => {
      const principal = request.principal as NonNullable<FastifyRequest['principal']>;
      const { region, id } = request.params as { region: string; id: string };
      // A page opens one socket per tab; hundreds at once are a script holding server memory.
      // Counted before the id is looked up, so a flood of foreign or missing ids is capped too.
      const userId = principal.user.id;
      const open = socketsPerUser.get(userId) ?? 0;
      if (open >= maxSocketsPerUser) {
        socket.close(
          CloseCode.rateLimited,
          `Too many open terminal connections (${maxSocketsPerUser}). Close some tabs and reconnect.`,
        );
        return;
      }
      socketsPerUser.set(userId, open + 1);
      socket.once('close', () => {
        const left = (socketsPerUser.get(userId) ?? 1) - 1;
        if (left > 0) socketsPerUser.set(userId, left);
        else socketsPerUser.delete(userId);
      });
      const terminal = app.terminals.get(principal.user.id, id);
      if (!terminal || terminal.region !== region) {
        socket.close(CloseCode.notFound, 'No such terminal. Open a new one.');
        return;
      }
      const connection = new TerminalSocket(socket, terminal, {
        sessionIdHash: principal.session.idHash,
        userId: principal.user.id,
        heartbeatMs: app.config.terminals.heartbeatS * 1000,
        onHeartbeatMissed: () =>
          request.log.info({ terminalId: id }, 'terminal socket missed its heartbeat; closed it'),
        onError: (error, what) => request.log.debug({ err: error, what }, 'terminal socket problem'),
      });
      app.terminals.track(connection, principal.session.expiresAt);
      const watch = watcher.watch({
        sessionIdHash: principal.session.idHash,
        userId: principal.user.id,
        ...(terminal.accountId ? { accountId: terminal.accountId } : {}),
        ...(terminal.permissionSet ? { permissionSet: terminal.permissionSet } : {}),
        end: (code, reason) => {
          connection.close(code, reason);
          // Access to the account is gone: the shell goes too (its credentials would be refused).
          if (code === CloseCode.forbidden) terminal.close('revoked', null, reason);
        },
      });
      connection.onClosed(() => watch.dispose());
      if (!connection.start()) socket.close(CloseCode.notFound, 'No such terminal. Open a new one.');
    },
  );
}
