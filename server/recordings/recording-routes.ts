/**
 * Recordings for administrators (`/api/admin/recordings`): search by user, time and identity,
 * one recording's record, and its asciicast file for the player. Anyone else, signed in or not,
 * gets the same 404 as for a recording that does not exist: recordings are not even confirmed to
 * exist. Every file fetch is audited (who watched whom).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { audit } from '../audit.js';
import type { RecordingRecord } from '../store/store.js';
import { recordingErrors } from './recording-service.js';
import { ErrorBody } from '../route-schemas.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const Time = Type.String({ format: 'date-time' });
const SearchQuery = Type.Object(
  {
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    accountId: Type.Optional(Type.String({ pattern: '^\\d{12}$' })),
    permissionSet: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    from: Type.Optional(Time),
    to: Type.Optional(Time),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  },
  { additionalProperties: false },
);
const RecordingView = Type.Object({
  id: Type.String(),
  terminalId: Type.String(),
  userId: Type.String(),
  username: Type.String(),
  region: Type.String(),
  accountId: Type.Union([Type.String(), Type.Null()]),
  permissionSet: Type.Union([Type.String(), Type.Null()]),
  mode: Type.String(),
  startedAt: Type.String(),
  endedAt: Type.Union([Type.String(), Type.Null()]),
  bytes: Type.Integer(),
  complete: Type.Boolean(),
});

const iso = (ms: number): string => new Date(ms).toISOString();
const view = (r: RecordingRecord) => ({
  id: r.id,
  terminalId: r.terminalId,
  userId: r.userId,
  username: r.username,
  region: r.region,
  accountId: r.accountId,
  permissionSet: r.permissionSet,
  mode: r.mode,
  startedAt: iso(r.startedAt),
  endedAt: r.endedAt === null ? null : iso(r.endedAt),
  bytes: r.bytes,
  complete: r.complete,
});

export default async function recordingRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  // Signed in (else 401 as everywhere), then admins only, and a 404 for everyone else.
  const adminsOnly = async (request: FastifyRequest): Promise<void> => {
    await app.requireUser(request);
    if (!request.principal?.isAdmin) throw recordingErrors.notFound();
  };
  const ms = (time: string | undefined): number | undefined =>
    time === undefined ? undefined : Date.parse(time);

  app.get(
    '/api/admin/recordings',
    {
      preHandler: adminsOnly,
      schema: {
        querystring: SearchQuery,
        response: { 200: Type.Object({ recordings: Type.Array(RecordingView) }), '4xx': ErrorBody },
      },
    },
    async (request) => {
      const { user, accountId, permissionSet, from, to, limit } = request.query;
      const found = await app.recordings.find({
        ...(user !== undefined ? { username: user } : {}),
        ...(accountId !== undefined ? { accountId } : {}),
        ...(permissionSet !== undefined ? { permissionSet } : {}),
        ...(from !== undefined ? { from: ms(from) } : {}),
        ...(to !== undefined ? { to: ms(to) } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      return { recordings: found.map(view) };
    },
  );

  app.get(
    '/api/admin/recordings/:id',
    {
      preHandler: adminsOnly,
      schema: { params: IdParams, response: { 200: RecordingView, '4xx': ErrorBody } },
    },
    async (request) => view(await app.recordings.get(request.params.id)),
  );

  app.get(
    '/api/admin/recordings/:id/cast',
    { preHandler: adminsOnly, schema: { params: IdParams } },
    async (request, reply) => {
      const { recording, size, stream } = await app.recordings.open(request.params.id);
      await audit(app.store, request, {
        action: 'recording.viewed',
        target: recording.id,
        details: { userId: recording.userId, username: recording.username },
      });
      return reply
        .header('content-type', 'application/x-asciicast; charset=utf-8')
        .header('content-length', String(size))
        .header('cache-control', 'no-store')
        .header('x-content-type-options', 'nosniff')
        .send(stream);
    },
  );
}
