/**
 * For the R02 sweep: every Cove app a test builds (createTestApp, startCove, the auth, home and
 * terminal rigs, tests that call buildApp themselves) records the cookies and secrets it hands
 * out, every error body it sends, every line it logs to a stream, and, as it closes, its
 * containers' inspect and home files (tests/helpers/leak-record.ts). A thin wrapper around
 * `buildApp`: the app under test is the real one, with three more hooks.
 */
import { Writable } from 'node:stream';
import { vi } from 'vitest';
import type * as AppModule from '../../server/app.js';
import { leakRecord } from '../helpers/leak-record.js';

vi.mock('../../server/app.js', async (importOriginal) => {
  const original = await importOriginal<typeof AppModule>();
  const buildApp: typeof original.buildApp = async (deps) => {
    let logStream = deps.logStream;
    if (logStream && leakRecord.dir()) {
      const target = logStream;
      const record = leakRecord.logSink('app');
      logStream = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          record(chunk.toString());
          // At once, not on the target's callback (a tick later): tests read their log array
          // right after the line that logs.
          target.write(chunk);
          callback();
        },
      });
    }
    const app = await original.buildApp({ ...deps, logStream });
    leakRecord.watchApp(app, 'app');
    // Tests remove their containers right after closing the app: keep their inspect and homes.
    app.addHook('preClose', async () => {
      await leakRecord.snapshotContainers('app', deps.config.dataDir);
    });
    return app;
  };
  return { ...original, buildApp };
});
