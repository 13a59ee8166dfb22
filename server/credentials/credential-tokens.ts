/**
 * Per-terminal tokens for the credentials endpoint. A token is `<terminalId>.<mac>` where the MAC
 * is HMAC-SHA256 over the container's id and start time and the terminal id, under a key kept in
 * `<dataDir>/secrets/`. Nothing is stored per token, so:
 * - a terminal that survives a Cove restart keeps a working token (same key, same container);
 * - every container start (a new container, or the same one started again) changes the MAC, so
 *   every older token stops working at once;
 * - a token names its terminal, so the server can ask whether that terminal still lives.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What identifies one start of one environment's container. */
export interface ContainerIncarnation {
  readonly containerId: string;
  readonly startedAt: Date;
}

const KEY_BYTES = 32;
const KEY_FILE = 'credential-token.key';
const terminalIdShape = /^[A-Za-z0-9_-]{22}$/;
const macShape = /^[A-Za-z0-9_-]{43}$/;

/** Reads the key from `<dataDir>/secrets/`, creating it (0600, directory 0700) at first start. */
export function loadOrCreateTokenKey(dataDir: string): Buffer {
  const dir = join(dataDir, 'secrets');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const path = join(dir, KEY_FILE);
  try {
    const key = readFileSync(path);
    if (key.length === KEY_BYTES) return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(KEY_BYTES);
  // `wx`: two servers starting on one data dir must not each keep a different key.
  try {
    writeFileSync(path, key, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readFileSync(path);
  }
}

export class CredentialTokens {
  constructor(private readonly key: Buffer) {
    if (key.length < 16) throw new Error('credential token key too short');
  }

  issue(incarnation: ContainerIncarnation, terminalId: string): string {
    return `${terminalId}.${this.mac(incarnation, terminalId)}`;
  }

  /** The terminal id when the token was issued for this incarnation; otherwise undefined. */
  verify(token: string, incarnation: ContainerIncarnation): string | undefined {
    const dot = token.indexOf('.');
    if (dot < 0) return undefined;
    const terminalId = token.slice(0, dot);
    const mac = token.slice(dot + 1);
    if (!terminalIdShape.test(terminalId) || !macShape.test(mac)) return undefined;
    const expected = Buffer.from(this.mac(incarnation, terminalId));
    return timingSafeEqual(expected, Buffer.from(mac)) ? terminalId : undefined;
  }

  private mac(incarnation: ContainerIncarnation, terminalId: string): string {
    return createHmac('sha256', this.key)
      .update(
        `cove-credentials-v1\0${incarnation.containerId}\0${incarnation.startedAt.getTime()}\0${terminalId}`,
      )
      .digest('base64url');
  }
}
