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
import { CoveError, StoreError, errors } from '../errors.js';
import { regionGuard } from '../regions.js';
import { CloseCode } from '../protocol/terminal-wire.js';
import { resolveEffectiveAccess } from '../directory/effective-access.js';
import { terminalIdPattern } from './terminal-id.js';
import { TerminalSocket } from './terminal-socket.js';
import { terminalErrors } from './terminal-service.js';
import { SessionWatcher } from '../auth/session-watcher.js';
import type { Terminal } from './terminal.js';
import type {} from '../homes/home-service.js';
import type {} from '../usage/usage-meter.js';

const ErrorBody = Type.Object(
  { code: Type.String(), message: Type.String() },
  { additionalProperties: true },
);
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
const TerminalInfo = Type.Object({
  terminalId: Type.String(),
  createdAt: Type.Integer(),
  accountId: Type.Optional(Type.String()),
  permissionSet: Type.Optional(Type.String()),
  attached: Type.Boolean(),
});

const upgradeTimeoutMs = 5_000;

/** The same body for an unknown and an unassigned account × permission set: no enumeration. */
const noAccess = () =>
  new CoveError(
    'COVE_ERR_TERMINAL_ACCESS',
    403,
    'You do not have that account and permission set. Pick one from the portal.',
  );

/**
 * The disk under the data directory is full (a home's metadata, the database): said as such with
 * 507, not as an internal error, so the user knows it is the server and open terminals carry on.
 */
const hostFull = (cause: unknown) =>
  new CoveError(
    'COVE_ERR_TERMINAL_HOST_FULL',
    507,
    'The server is out of disk space, so no new terminal can open. Your open terminals keep working; ask your administrator.',
    { cause },
  );

function isDiskFull(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    if (current instanceof StoreError && current.kind === 'full') return true;
    const { code, cause } = current as { code?: unknown; cause?: unknown };
    if (code === 'ENOSPC') return true;
    current = cause;
  }
  return false;
}

interface DirectoryAccess {
  accessFor(userId: string, accountId: string, permissionSetName: string): Promise<unknown>;
}

async function hasAccess(
  app: FastifyInstance,
  userId: string,
  accountId: string,
  permissionSet: string,
): Promise<boolean> {
  if (app.hasDecorator('directory')) {
    const directory = (app as unknown as { directory: Partial<DirectoryAccess> }).directory;
    if (typeof directory.accessFor === 'function')
      return Boolean(await directory.accessFor(userId, accountId, permissionSet));
  }
  const { store } = app;
  const [user, groups, assignments, accounts, permissionSets] = await Promise.all([
    store.users.get(userId),
    store.groups.groupsOf(userId),
    store.assignments.list(),
    store.accounts.list(),
    store.permissionSets.list(),
  ]);
  if (!user) return false;
  return resolveEffectiveAccess({
    user,
    groupIds: groups.map((g) => g.id),
    assignments,
    accounts,
    permissionSets,
  }).some((entry) => entry.accountId === accountId && entry.permissionSet === permissionSet);
}

const info = (t: Terminal) => ({
  terminalId: t.id,
  createdAt: t.createdAt,
  ...(t.accountId ? { accountId: t.accountId } : {}),
  ...(t.permissionSet ? { permissionSet: t.permissionSet } : {}),
  attached: t.attached,
});

export default async function terminalRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  // Fastify answers a bad URL or an over-long id (414) by itself, outside the hooks that end a
  // refused upgrade's socket, so such a socket would stay open for good. `ws` clears this timeout
  // when an upgrade completes.
  app.server.on('upgrade', (_request, socket: Socket) => {
    socket.setTimeout(upgradeTimeoutMs, () => socket.destroy());
  });
  const { maxSocketsPerUser } = app.config.terminals;
  const socketsPerUser = new Map<string, number>();

  // The backstop behind the revocation events: an ended session, a disabled user or a removed
  // assignment closes the socket within one interval even when no event reached this process.
  const watcher = new SessionWatcher({
    store: app.store,
    now: app.now,
    intervalMs: app.config.auth.sessionRecheckS * 1000,
    hasAccess: (userId, accountId, permissionSet) => hasAccess(app, userId, accountId, permissionSet),
    onError: (error) => app.log.warn({ err: error }, 'terminal session re-check failed'),
  });
  const accessChanged = app.hasDecorator('directory')
    ? app.directory.onAccessChanged(
        (change) => void watcher.recheck('all' in change ? undefined : change.userIds),
      )
    : undefined;
  app.addHook('onClose', async () => {
    accessChanged?.dispose();
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
        response: { 201: Type.Object({ terminalId: Type.String() }), '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { region } = request.params;
      checkRegion(region);
      const user = (request.principal as NonNullable<FastifyRequest['principal']>).user;
      const body = request.body ?? {};
      if (body.accountId !== undefined || body.permissionSet !== undefined) {
        if (!body.accountId || !body.permissionSet) throw noAccess();
        if (!(await hasAccess(app, user.id, body.accountId, body.permissionSet))) throw noAccess();
      }
      // An engine that is down (or restarting) is said at once, not after a shell fails to open.
      if (!(await app.environments.reachable(region))) throw terminalErrors.backendUnavailable(region);
      // So is an environment that may not start (no firewall in enforce mode, engine too old).
      await app.environments.assertCanStart({ ownerId: user.id, region });
      // Before anything starts: an exhausted weekly quota refuses with the time it resets.
      await app.usage.assertTimeLeft(user.id);
      // The home first: one that cannot be created (the host is out of space) is refused here
      // with its own status (507) instead of as a terminal that fails before its page attaches.
      if (app.hasDecorator('homes'))
        await app.homes.prepare({ ownerId: user.id, region }).catch((error: unknown) => {
          throw isDiskFull(error) ? hostFull(error) : error;
        });
      const terminal = app.terminals.create({ id: user.id, username: user.username }, region, {
        ...(body.accountId ? { accountId: body.accountId } : {}),
        ...(body.permissionSet ? { permissionSet: body.permissionSet } : {}),
      });
      request.log.info({ terminalId: terminal.id, region }, 'terminal created');
      return reply.status(201).send({ terminalId: terminal.id });
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
