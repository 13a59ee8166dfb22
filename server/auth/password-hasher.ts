/**
 * Password hashing with argon2id (@node-rs/argon2) and the password policy. Unknown users are
 * checked against a dummy hash of the same cost, so a wrong user name takes as long as a wrong
 * password and timing does not reveal which accounts exist.
 */
import { randomBytes } from 'node:crypto';
import { hash, parseOptions, verify, type Algorithm } from '@node-rs/argon2';
import { passwordRules } from '../protocol/api.js';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Checks a password; with no stored hash it still spends the same time and answers false. */
  verify(storedHash: string | null, password: string): Promise<boolean>;
  /** True when the stored hash was made with other parameters (rehash after a good sign-in). */
  needsRehash(storedHash: string): boolean;
}

export interface Argon2Cost {
  readonly argon2MemoryKiB: number;
  readonly argon2TimeCost: number;
}

export const passwordMinLength = passwordRules.minLength;
export const passwordMaxLength = passwordRules.maxLength;

/** The policy, as a message that says what to do, or undefined when the password is acceptable. */
export function passwordPolicyProblem(password: string, username: string): string | undefined {
  const length = [...password].length;
  if (length < passwordMinLength) return `Choose a password of at least ${passwordMinLength} characters.`;
  if (length > passwordMaxLength) return `Choose a password of at most ${passwordMaxLength} characters.`;
  if (password.normalize('NFKC').trim().toLowerCase() === username.normalize('NFKC').trim().toLowerCase())
    return 'Choose a password that is not your user name.';
  return undefined;
}

// The package declares its enum `const`, which isolatedModules cannot inline.
const argon2id = 2 as Algorithm;

/** Dummy hashes per cost, computed once: the first unknown-user sign-in pays for it. */
const dummyHashes = new Map<string, Promise<string>>();

export class Argon2PasswordHasher implements PasswordHasher {
  private readonly options: {
    algorithm: Algorithm;
    memoryCost: number;
    timeCost: number;
    parallelism: number;
  };

  constructor(cost: Argon2Cost) {
    this.options = {
      algorithm: argon2id,
      memoryCost: cost.argon2MemoryKiB,
      timeCost: cost.argon2TimeCost,
      parallelism: 1,
    };
  }

  hash(password: string): Promise<string> {
    return hash(password, this.options);
  }

  async verify(storedHash: string | null, password: string): Promise<boolean> {
    if (storedHash === null) {
      await verify(await this.dummyHash(), password).catch(() => false);
      return false;
    }
    try {
      return await verify(storedHash, password);
    } catch {
      // A malformed stored hash is a failed sign-in, never a 500 that tells the account exists.
      return false;
    }
  }

  needsRehash(storedHash: string): boolean {
    try {
      const used = parseOptions(storedHash);
      return (
        used.algorithm !== this.options.algorithm ||
        used.memoryCost !== this.options.memoryCost ||
        used.timeCost !== this.options.timeCost
      );
    } catch {
      return true;
    }
  }

  private dummyHash(): Promise<string> {
    const key = `${this.options.memoryCost}:${this.options.timeCost}`;
    let dummy = dummyHashes.get(key);
    if (!dummy) {
      dummy = hash(randomBytes(16).toString('hex'), this.options);
      dummyHashes.set(key, dummy);
      dummy.catch(() => dummyHashes.delete(key));
    }
    return dummy;
  }
}
