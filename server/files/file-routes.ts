/**
 * File transfer routes (issue 6). A user only ever reaches their own environment and uploads: the
 * key is their id, never a parameter, and another user's upload id answers like an unknown one.
 * After each transfer: an audit entry and a one-line notice in the user's open terminals there.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { audit } from '../audit.js';
import { errors } from '../errors.js';
import { regionGuard } from '../regions.js';
import { formatTransferBytes } from '../protocol/api.js';
import type {
  CompleteUploadResponse,
  DownloadProgressResponse,
  DownloadRequest,
  DownloadResponse,
  FileListing,
  PartStoredRequest,
  UploadRequest,
  UploadResponse,
} from '../protocol/files.js';
import { progressIdPattern } from '../protocol/files.js';
import { escapeForTerminal } from './file-names.js';
import type { TransferDone } from './s3-file-transfer.js';
import { ErrorBody, type Fits } from '../route-schemas.js';

const RegionParams = Type.Object({ region: Type.String({ minLength: 1, maxLength: 64 }) });
const UploadParams = Type.Object({
  region: Type.String({ minLength: 1, maxLength: 64 }),
  id: Type.String({ minLength: 1, maxLength: 64 }),
});
/** Names and paths are checked by file-names.ts, which says why; the schema only bounds them. */
const UploadBody = Type.Object(
  {
    dir: Type.String({ default: '~', maxLength: 4096 }),
    files: Type.Array(
      Type.Object(
        {
          name: Type.String({ maxLength: 1024 }),
          size: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 100 },
    ),
    onConflict: Type.Optional(Type.Union([Type.Literal('keep-both'), Type.Literal('replace')])),
  },
  { additionalProperties: false },
);
const Ticket = Type.Union([
  Type.Object({ id: Type.String(), name: Type.String(), url: Type.String() }),
  Type.Object({
    id: Type.String(),
    name: Type.String(),
    partSize: Type.Integer(),
    parts: Type.Array(Type.Object({ partNumber: Type.Integer(), url: Type.String() })),
  }),
]);
const UploadReply = Type.Object({ uploads: Type.Array(Ticket), expiresAt: Type.String() });
const CompleteBody = Type.Object(
  {
    parts: Type.Optional(
      Type.Array(
        Type.Object(
          {
            partNumber: Type.Integer({ minimum: 1, maximum: 10_000 }),
            etag: Type.String({ maxLength: 200 }),
          },
          { additionalProperties: false },
        ),
        { maxItems: 10_000 },
      ),
    ),
  },
  { additionalProperties: false },
);
const PartParams = Type.Object({
  region: Type.String({ minLength: 1, maxLength: 64 }),
  id: Type.String({ minLength: 1, maxLength: 64 }),
  partNumber: Type.Integer({ minimum: 1, maximum: 10_000 }),
});
const PartBody = Type.Object(
  { etag: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);
const CompleteReply = Type.Object({ path: Type.String(), size: Type.Integer(), sha256: Type.String() });
const ProgressId = Type.String({ pattern: progressIdPattern });
const DownloadBody = Type.Object(
  { path: Type.String({ minLength: 1, maxLength: 4096 }), progressId: Type.Optional(ProgressId) },
  { additionalProperties: false },
);
const ProgressParams = Type.Object({
  region: Type.String({ minLength: 1, maxLength: 64 }),
  progressId: ProgressId,
});
const ProgressReply = Type.Object({ bytes: Type.Integer(), size: Type.Optional(Type.Integer()) });
const DownloadReply = Type.Object({ url: Type.String(), name: Type.String(), size: Type.Integer() });
const ListQuery = Type.Object({ dir: Type.String({ default: '~', maxLength: 4096 }) });
const ListReply = Type.Object({
  dir: Type.String(),
  entries: Type.Array(
    Type.Object({
      name: Type.String(),
      type: Type.Union([
        Type.Literal('file'),
        Type.Literal('dir'),
        Type.Literal('symlink'),
        Type.Literal('other'),
      ]),
      size: Type.Integer(),
      modifiedAt: Type.String(),
    }),
  ),
  truncated: Type.Boolean(),
});

export const fileProtocolProofs = [
  true satisfies Fits<typeof UploadBody, UploadRequest>,
  true satisfies Fits<typeof UploadReply, UploadResponse>,
  true satisfies Fits<typeof PartBody, PartStoredRequest>,
  true satisfies Fits<typeof CompleteReply, CompleteUploadResponse>,
  true satisfies Fits<typeof DownloadReply, DownloadResponse>,
  true satisfies Fits<typeof DownloadBody, DownloadRequest>,
  true satisfies Fits<typeof ProgressReply, DownloadProgressResponse>,
  true satisfies Fits<typeof ListReply, FileListing>,
] as const;

const replies = { '4xx': ErrorBody, '5xx': ErrorBody };

/** The terminal line: `uploaded ~/data.csv (12.3 MB)`, with nothing in it a terminal would act on. */
export function transferNotice(done: Pick<TransferDone, 'direction' | 'path' | 'size'>): string {
  const verb = done.direction === 'upload' ? 'uploaded' : 'downloaded';
  return `${verb} ${escapeForTerminal(done.path)} (${formatTransferBytes(done.size)})`;
}

export default async function fileRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const checkRegion = regionGuard(app.config);
  const ownerOf = (request: FastifyRequest) => {
    const { user } = request.principal as NonNullable<FastifyRequest['principal']>;
    return { id: user.id, username: user.username };
  };
  const finished = async (request: FastifyRequest, region: string, done: TransferDone): Promise<void> => {
    const owner = ownerOf(request);
    app.metrics.fileTransferred(done.direction, done.size);
    await audit(app.store, request, {
      action: done.direction === 'upload' ? 'file.upload' : 'file.download',
      target: `environment:${region}:${owner.id}`,
      details: { region, path: done.path, size: done.size, direction: done.direction, sha256: done.sha256 },
    });
    const message = transferNotice(done);
    for (const terminal of app.terminals.list(owner.id, region).filter((t) => t.attached))
      terminal.notify({
        type: 'notice',
        kind: 'file-transfer',
        message,
        direction: done.direction,
        path: done.path,
        size: done.size,
      });
  };

  app.post(
    '/api/environments/:region/uploads',
    {
      preHandler: app.requireUser,
      schema: { params: RegionParams, body: UploadBody, response: { 200: UploadReply, ...replies } },
    },
    async (request) => {
      const { region } = request.params;
      checkRegion(region);
      // The service's readonly arrays are the same JSON.
      return (await app.files.transfer.createUploads(ownerOf(request), region, request.body)) as Static<
        typeof UploadReply
      >;
    },
  );

  app.post(
    '/api/environments/:region/uploads/:id/parts/:partNumber',
    {
      preHandler: app.requireUser,
      schema: { params: PartParams, body: PartBody, response: { 204: Type.Null(), ...replies } },
    },
    async (request, reply) => {
      const { region, id, partNumber } = request.params;
      checkRegion(region);
      await app.files.transfer.reportPart(ownerOf(request), region, id, partNumber, request.body.etag);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/environments/:region/uploads/:id/complete',
    {
      preHandler: app.requireUser,
      schema: {
        params: UploadParams,
        body: Type.Optional(CompleteBody),
        response: { 200: CompleteReply, ...replies },
      },
    },
    async (request) => {
      const { region, id } = request.params;
      checkRegion(region);
      const { saved, repeated } = await app.files.transfer.completeUpload(
        ownerOf(request),
        region,
        id,
        request.body ?? {},
      );
      // Asked again because the first answer was lost: audited and announced once.
      if (!repeated) await finished(request, region, { direction: 'upload', ...saved });
      return saved;
    },
  );

  app.delete(
    '/api/environments/:region/uploads/:id',
    {
      preHandler: app.requireUser,
      schema: { params: UploadParams, response: { 204: Type.Null(), ...replies } },
    },
    async (request, reply) => {
      const { region, id } = request.params;
      checkRegion(region);
      await app.files.transfer.cancelUpload(ownerOf(request), region, id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/environments/:region/downloads',
    {
      preHandler: app.requireUser,
      schema: { params: RegionParams, body: DownloadBody, response: { 200: DownloadReply, ...replies } },
    },
    async (request) => {
      const { region } = request.params;
      checkRegion(region);
      const { path, progressId } = request.body;
      const done = await app.files.transfer.download(ownerOf(request), region, path, progressId);
      await finished(request, region, done);
      return { url: done.url, name: done.name, size: done.size };
    },
  );

  app.get(
    '/api/environments/:region/downloads/progress/:progressId',
    {
      preHandler: app.requireUser,
      schema: { params: ProgressParams, response: { 200: ProgressReply, ...replies } },
    },
    async (request) => {
      const { region, progressId } = request.params;
      checkRegion(region);
      const progress = app.files.transfer.progress.get(ownerOf(request).id, region, progressId);
      if (!progress) throw errors.filesProgressNotFound();
      return progress;
    },
  );

  app.get(
    '/api/environments/:region/files',
    {
      preHandler: app.requireUser,
      schema: { params: RegionParams, querystring: ListQuery, response: { 200: ListReply, ...replies } },
    },
    async (request) => {
      const { region } = request.params;
      checkRegion(region);
      return (await app.files.transfer.list(ownerOf(request), region, request.query.dir)) as Static<
        typeof ListReply
      >;
    },
  );
}
