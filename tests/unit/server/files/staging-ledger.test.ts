import { describe, expect, it } from 'vitest';
import { CoveError } from '../../../../server/errors.js';
import {
  MemoryStagingLedger,
  type StagedEntry,
  type StagingLedger,
  type StagingLimits,
} from '../../../../server/files/staging-ledger.js';

const MB = 1_000_000;
const limits: StagingLimits = { maxBytesPerUser: 100 * MB, maxCopyingDownloadsPerUser: 2 };
const entry = (id: string, bytes: number, extra: Partial<StagedEntry> = {}): StagedEntry => ({
  id,
  ownerId: 'alice',
  region: 'us-east-1',
  kind: 'download',
  bytes,
  copying: false,
  keys: [id],
  ...extra,
});

async function refusal(work: Promise<unknown>): Promise<{ code: string; statusCode: number }> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CoveError);
  return error as CoveError;
}

/** The contract every StagingLedger keeps (a Store-backed one runs the same cases). */
function stagingLedgerContract(name: string, make: (limits: StagingLimits) => StagingLedger): void {
  const ledger = () => make(limits);
  describe(`${name} (H03 staging bounds)`, () => {
    it('H03 refuses bytes past the per-user bound, per user, and frees them on remove', async () => {
      const l = ledger();
      await l.add([entry('a', 60 * MB)]);
      expect(await refusal(l.add([entry('b', 50 * MB)]))).toMatchObject({
        code: 'COVE_ERR_FILES_STAGING_FULL',
        statusCode: 429,
        details: { usedBytes: 60 * MB, neededBytes: 50 * MB, limitBytes: 100 * MB },
      });
      // Another user's bytes are theirs alone.
      await l.add([entry('c', 90 * MB, { ownerId: 'bob' })]);
      await l.remove('a');
      await l.add([entry('b', 50 * MB)]);
      expect(await l.usage('alice')).toEqual({ bytes: 50 * MB, copyingDownloads: 0 });
    });

    it('H03 one transfer over the whole bound is too large (413), whatever else is staged', async () => {
      expect(await refusal(ledger().add([entry('a', 101 * MB)]))).toMatchObject({
        code: 'COVE_ERR_FILES_TOO_LARGE',
        statusCode: 413,
      });
    });

    it('H03 adds several entries all or none', async () => {
      const l = ledger();
      await refusal(l.add([entry('a', 60 * MB), entry('b', 60 * MB)]));
      expect(await l.usage('alice')).toEqual({ bytes: 0, copyingDownloads: 0 });
    });

    it('H03 bounds downloads being copied at once; a finished copy frees its slot', async () => {
      const l = ledger();
      await l.add([entry('a', 0, { copying: true })]);
      await l.add([entry('b', 0, { copying: true })]);
      expect(await refusal(l.add([entry('c', 0, { copying: true })]))).toMatchObject({
        code: 'COVE_ERR_FILES_TOO_MANY_DOWNLOADS',
        statusCode: 429,
      });
      await l.update('a', { copying: false });
      await l.add([entry('c', 0, { copying: true })]);
    });

    it('H03 grows an archive as it is written and refuses past the bound', async () => {
      const l = ledger();
      await l.add([entry('held', 40 * MB), entry('tar', 0, { copying: true })]);
      await l.grow('tar', 50 * MB);
      expect(await refusal(l.grow('tar', 20 * MB))).toMatchObject({ code: 'COVE_ERR_FILES_STAGING_FULL' });
      expect((await l.get('tar'))?.bytes).toBe(50 * MB);
      await l.remove('held');
      expect(await refusal(l.grow('tar', 60 * MB))).toMatchObject({ code: 'COVE_ERR_FILES_TOO_LARGE' });
    });

    it('H03 hands out expired entries once, and they stop counting', async () => {
      const l = ledger();
      await l.add([entry('a', 30 * MB, { expiresAt: 1000 }), entry('b', 30 * MB, { expiresAt: 5000 })]);
      expect((await l.takeExpired(999)).map((e) => e.id)).toEqual([]);
      expect((await l.takeExpired(1000)).map((e) => e.id)).toEqual(['a']);
      expect((await l.takeExpired(1000)).map((e) => e.id)).toEqual([]);
      expect(await l.usage('alice')).toEqual({ bytes: 30 * MB, copyingDownloads: 0 });
    });
  });
}

stagingLedgerContract('MemoryStagingLedger', (l) => new MemoryStagingLedger(l));
