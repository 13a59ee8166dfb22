/**
 * What an operator sees when Cove's PostgreSQL is not there at start: the real process
 * (`server/main.ts`) exits with one line that names the database without its password and says
 * what to check — no stack trace, no waiting forever.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../../helpers/free-port.js';

const repoRoot = resolve(import.meta.dirname, '../../../..');
const dataDir = mkdtempSync(join(tmpdir(), 'cove-db-start-'));

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function startCove(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'server/main.ts')], {
    cwd: repoRoot,
    env: { ...process.env, COVE_DATA_DIR: dataDir, COVE_PORT: '0', COVE_HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // Bounded: a process that hangs instead of refusing fails the test rather than the run.
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolveExit) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolveExit({ code, output, ms: Date.now() - started });
    }),
  );
}

describe('a database that is down at start', () => {
  it('refuses to start with one line naming the database without its password, and what to check', async () => {
    const port = await freeLoopbackPort();
    const result = await startCove({ COVE_DATABASE_URL: `postgres://cove:s3cret-pw@127.0.0.1:${port}/cove` });
    expect(result.code, result.output).toBe(1);
    const lines = result.output.trim().split('\n');
    expect(lines, result.output).toHaveLength(1);
    expect(lines[0]).toBe(
      `Cove could not start: its database (PostgreSQL postgres://cove:***@127.0.0.1:${port}/cove) does not answer. Check database.url (COVE_DATABASE_URL) and that PostgreSQL runs and accepts connections from here, then start Cove again.`,
    );
    expect(result.output).not.toContain('s3cret-pw');
    expect(result.output).not.toMatch(/\bat \S+ \(|ECONNREFUSED/);
  }, 90_000);

  it('a URL that is not a database URL is a configuration problem, said before anything is opened', async () => {
    const result = await startCove({ COVE_DATABASE_URL: 'mysql://cove:s3cret-pw@127.0.0.1/cove' });
    expect(result.code, result.output).toBe(1);
    expect(result.output).toMatch(/configuration is not valid/);
    expect(result.output).toMatch(/database\.url/);
    expect(result.output).not.toContain('s3cret-pw');
  }, 90_000);
});
