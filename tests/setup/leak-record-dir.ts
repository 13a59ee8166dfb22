/**
 * Vitest globalSetup: one directory per run where the harnesses record what the R02 sweep greps
 * (tests/helpers/leak-record.ts), handed to every worker through TEST_LEAK_RECORD_DIR. Removed at
 * the end of the run, since it holds the secrets the tests saw; TEST_LEAK_RECORD_KEEP=1 keeps it
 * to look into a finding (the sweep names the files).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LEAK_RECORD_ENV } from '../helpers/leak-record.js';

export function setup(): () => void {
  if (process.env[LEAK_RECORD_ENV]) return () => undefined; // given by the caller: theirs to remove
  const dir = mkdtempSync(join(tmpdir(), 'cove-leak-record-'));
  process.env[LEAK_RECORD_ENV] = dir;
  return () => {
    if (process.env.TEST_LEAK_RECORD_KEEP === '1') return;
    rmSync(dir, { recursive: true, force: true });
  };
}
