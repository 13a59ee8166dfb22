/**
 * The files service (`app.files`): one staging bucket per region (configured S3, or the embedded
 * s3rver on loopback for regions without), the start-up bucket check, the staging sweep and the
 * transfer itself. A bad bucket turns file transfer off in its region with a logged fix-it
 * message; the rest of Cove keeps working.
 */
import { join } from 'node:path';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import { EmbeddedS3, embeddedBucket, embeddedCredentials, embeddedRegion } from './embedded-s3.js';
import { checkStagingBucket, checkStagingLifecycle } from './s3-check.js';
import { S3FileTransfer, createS3Client, type StagingBucket } from './s3-file-transfer.js';
import { StagingSweep } from './staging-sweep.js';
import { CoveFilesHelper } from './cove-files-helper.js';
import { SANDBOX_CREDENTIALS_DIR } from '../../sandbox/index.js';
import { TransferSocket } from './transfer-socket.js';

/** How long the helper has to connect to its transfer socket after its exec starts. */
const socketAcceptTimeoutMs = 30_000;

export interface FileService {
  readonly transfer: S3FileTransfer;
  readonly sweep: StagingSweep;
  /** Present when at least one region has no S3 of its own. */
  readonly embedded: EmbeddedS3 | undefined;
  /** Settles once every configured bucket was checked (start-up does not wait for it). */
  readonly checked: Promise<void>;
  /** Staging bucket per region. */
  readonly staging: ReadonlyMap<string, StagingBucket>;
}

declare module 'fastify' {
  interface FastifyInstance {
    files: FileService;
  }
}

/** Logs the lifecycle advice once per bucket and prefix, the first time the bucket answers. */
async function checkLifecycleOnce(
  staging: StagingBucket,
  lifecycle: { retentionS: number; checked: Set<string> },
  timeoutMs: number,
  log: FastifyBaseLogger,
): Promise<void> {
  const key = `${staging.bucket}\u0000${staging.prefix}`;
  if (lifecycle.checked.has(key)) return;
  lifecycle.checked.add(key);
  const { level, message } = await checkStagingLifecycle({
    client: staging.client,
    bucket: staging.bucket,
    prefix: staging.prefix,
    retentionS: lifecycle.retentionS,
    timeoutMs,
  });
  const fields = { bucket: staging.bucket, prefix: staging.prefix };
  if (level === 'warn') log.warn(fields, `staging bucket lifecycle: ${message}`);
  else log.info(fields, `staging bucket lifecycle: ${message}`);
}

async function checkConfigured(
  transfer: S3FileTransfer,
  checks: { region: string; staging: StagingBucket; bucketRegion: string }[],
  origin: string,
  timeoutMs: number,
  lifecycle: { retentionS: number; checked: Set<string> },
  log: FastifyBaseLogger,
): Promise<void> {
  for (const { region, staging, bucketRegion } of checks) {
    const result = await checkStagingBucket({
      client: staging.client,
      bucket: staging.bucket,
      region: bucketRegion,
      origin,
      timeoutMs,
    });
    if (result.ok || result.kind === 'misconfigured')
      await checkLifecycleOnce(staging, lifecycle, timeoutMs, log);
    if (result.ok) {
      if (transfer.problems(region))
        log.info({ region }, 'file transfer staging bucket fixed; transfer is on');
      transfer.setProblems(region, undefined);
    } else if (result.kind === 'misconfigured') {
      transfer.setProblems(region, result.problems);
      log.error(
        { region, bucket: staging.bucket, problems: result.problems },
        `file transfer is off in ${region} until the staging bucket is fixed: ${result.problems.join('; ')}`,
      );
    } else {
      // Unreachable now says nothing about the configuration: requests get 503 until S3 answers.
      log.warn({ region, bucket: staging.bucket, problems: result.problems }, 'staging bucket not reachable');
    }
  }
}

export default fp(
  async (app) => {
    const { config } = app;
    const log = app.log.child({ component: 'files' });
    const timeoutMs = config.files.s3TimeoutMs;
    const staging = new Map<string, StagingBucket>();
    const configured: { region: string; staging: StagingBucket; bucketRegion: string }[] = [];

    let embedded: EmbeddedS3 | undefined;
    if (config.regions.some((r) => !r.s3)) {
      try {
        embedded = await EmbeddedS3.start({
          directory: join(config.dataDir, 's3'),
          port: config.files.embeddedS3Port,
          buckets: [embeddedBucket],
          corsOrigins: [config.publicUrl],
        });
        log.info({ endpoint: embedded.endpoint }, 'embedded S3 for file transfer (for one machine only)');
      } catch (error) {
        log.error({ err: error }, 'could not start the embedded S3; file transfer is off');
      }
    }
    const server = embedded;
    const embeddedStaging: StagingBucket | undefined = server && {
      client: createS3Client({
        region: embeddedRegion,
        endpoint: server.endpoint,
        forcePathStyle: true,
        credentials: embeddedCredentials,
        timeoutMs,
      }),
      bucket: embeddedBucket,
      prefix: 'staging/',
      local: {
        refusePuts: (keyPrefix, forMs) => server.refusePuts(embeddedBucket, keyPrefix, forMs),
        freeBytes: () => server.freeBytes(),
      },
    };
    for (const region of config.regions) {
      if (region.s3) {
        const bucketRegion = region.s3.region ?? region.id;
        const bucket: StagingBucket = {
          client: createS3Client({
            region: bucketRegion,
            ...(region.s3.endpoint ? { endpoint: region.s3.endpoint } : {}),
            ...(region.s3.forcePathStyle !== undefined ? { forcePathStyle: region.s3.forcePathStyle } : {}),
            timeoutMs,
          }),
          bucket: region.s3.bucket,
          prefix: region.s3.prefix,
        };
        staging.set(region.id, bucket);
        configured.push({ region: region.id, staging: bucket, bucketRegion });
      } else if (embeddedStaging) {
        staging.set(region.id, embeddedStaging);
      }
    }

    const transfer = new S3FileTransfer({
      config,
      staging,
      // A transfer holds its environment: closing the last tab must not stop it mid-file.
      helper: new CoveFilesHelper(
        async (key, cmd, options) => {
          const hold = app.environments.hold(key);
          try {
            return await app.environments.driver(key.region).exec(key, cmd, options);
          } finally {
            hold.dispose();
          }
        },
        // The environment's own /run/cove: no other container mounts it.
        (key) =>
          TransferSocket.open({
            hostDir: app.credentialDelivery.directoryOf(key),
            containerDir: SANDBOX_CREDENTIALS_DIR,
            acceptTimeoutMs: socketAcceptTimeoutMs,
          }),
      ),
      ensure: (owner, region) => app.environments.ensure(owner, region),
      log,
      now: app.now,
    });
    server?.onFetched((bucket, key) => {
      if (bucket === embeddedBucket)
        transfer
          .fetched(key)
          .catch((error: unknown) => log.warn({ err: error }, 'fetched download not removed'));
    });
    const origin = config.publicUrl;
    const lifecycle = { retentionS: config.files.stagingRetentionS, checked: new Set<string>() };
    const buckets = [
      ...new Map([...staging.values()].map((s) => [`${s.bucket}\u0000${s.prefix}`, s])).values(),
    ];
    const sweep = new StagingSweep({
      buckets,
      retentionS: config.files.stagingRetentionS,
      log,
      now: app.now,
      alsoRun: async (olderThanMs) => {
        await transfer.forgetStale(olderThanMs);
        await transfer.sweepStaged();
        if (server) await server.sweepMultipartUploads(embeddedBucket, olderThanMs);
        // A bucket fixed since start turns transfer back on without a restart.
        const broken = configured.filter((c) => transfer.problems(c.region));
        if (broken.length > 0) await checkConfigured(transfer, broken, origin, timeoutMs, lifecycle, log);
      },
    });

    let resolveChecked: () => void = () => {};
    const checked = new Promise<void>((resolve) => (resolveChecked = resolve));
    app.decorate('files', { transfer, sweep, embedded, checked, staging } satisfies FileService);

    let timer: NodeJS.Timeout | undefined;
    app.addHook('onReady', async () => {
      void checkConfigured(transfer, configured, origin, timeoutMs, lifecycle, log)
        .catch((error: unknown) => log.error({ err: error }, 'staging bucket check failed'))
        .finally(resolveChecked)
        .then(() => sweep.run())
        .catch(() => undefined);
      timer = setInterval(() => void sweep.run().catch(() => undefined), config.files.sweepIntervalS * 1000);
      timer.unref();
    });
    app.addHook('onClose', async () => {
      clearInterval(timer);
      transfer.close();
      for (const s of staging.values()) s.client.destroy();
      await server
        ?.stop()
        .catch((error: unknown) => log.warn({ err: error }, 'embedded S3 did not stop cleanly'));
    });
  },
  { name: 'files', dependencies: ['environments', 'credential-delivery'] },
);
