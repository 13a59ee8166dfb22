import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { CredentialTokens, loadOrCreateTokenKey } from '../../../../server/credentials/credential-tokens.js';

const terminal = 'AbCdEfGhIjKlMnOpQrStUv';
const other = 'ZZZZZZZZZZZZZZZZZZZZZZ';
const started = { containerId: 'c'.repeat(64), startedAt: new Date('2026-01-01T10:00:00.123Z') };

describe('credential tokens', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('I04 verifies a token for the incarnation and terminal it was issued for', () => {
    const tokens = new CredentialTokens(randomBytes(32));
    const token = tokens.issue(started, terminal);
    expect(token.startsWith(`${terminal}.`)).toBe(true);
    expect(tokens.verify(token, started)).toBe(terminal);
  });

  it('I04 rejects the token after the container restarts (same id, new start) or is recreated', () => {
    const tokens = new CredentialTokens(randomBytes(32));
    const token = tokens.issue(started, terminal);
    expect(tokens.verify(token, { ...started, startedAt: new Date('2026-01-01T11:00:00Z') })).toBeUndefined();
    expect(tokens.verify(token, { ...started, containerId: 'd'.repeat(64) })).toBeUndefined();
  });

  it("I04 rejects another terminal's id with this terminal's MAC, a different key, and malformed tokens", () => {
    const tokens = new CredentialTokens(randomBytes(32));
    const token = tokens.issue(started, terminal);
    const mac = token.slice(token.indexOf('.') + 1);
    expect(tokens.verify(`${other}.${mac}`, started)).toBeUndefined();
    expect(new CredentialTokens(randomBytes(32)).verify(token, started)).toBeUndefined();
    for (const bad of ['', terminal, `${terminal}.`, `${terminal}.${mac}x`, `.${mac}`, `${token}.x`])
      expect(tokens.verify(bad, started)).toBeUndefined();
  });

  it('F03 keeps the key across restarts (a surviving terminal keeps its token), stored 0600 in a 0700 dir', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cove-token-key-'));
    dirs.push(dataDir);
    const first = loadOrCreateTokenKey(dataDir);
    const second = loadOrCreateTokenKey(dataDir);
    expect(second.equals(first)).toBe(true);
    expect(first.length).toBe(32);
    const token = new CredentialTokens(first).issue(started, terminal);
    expect(new CredentialTokens(second).verify(token, started)).toBe(terminal);
    expect(statSync(join(dataDir, 'secrets', 'credential-token.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'secrets')).mode & 0o777).toBe(0o700);
  });
});
