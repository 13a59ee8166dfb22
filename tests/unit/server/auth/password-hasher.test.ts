import { describe, expect, it } from 'vitest';
import {
  Argon2PasswordHasher,
  passwordMaxLength,
  passwordMinLength,
  passwordPolicyProblem,
} from '../../../../server/auth/password-hasher.js';

const cheap = { argon2MemoryKiB: 1024, argon2TimeCost: 1 };

describe('passwordPolicyProblem', () => {
  it('accepts 10 to 256 characters that are not the user name', () => {
    expect(passwordMinLength).toBe(10);
    expect(passwordMaxLength).toBe(256);
    expect(passwordPolicyProblem('a'.repeat(10), 'alice')).toBeUndefined();
    expect(passwordPolicyProblem('a'.repeat(256), 'alice')).toBeUndefined();
    // Characters, not bytes: ten emoji are ten characters.
    expect(passwordPolicyProblem('🔑'.repeat(10), 'alice')).toBeUndefined();
  });

  it('says what to do when a password is refused', () => {
    expect(passwordPolicyProblem('a'.repeat(9), 'alice')).toMatch(/at least 10 characters/);
    expect(passwordPolicyProblem('a'.repeat(257), 'alice')).toMatch(/at most 256 characters/);
    expect(passwordPolicyProblem('Alexandrina', 'alexandrina')).toMatch(/not your user name/);
    expect(passwordPolicyProblem(' alexandrina ', 'alexandrina')).toMatch(/not your user name/);
  });
});

describe('Argon2PasswordHasher', () => {
  const hasher = new Argon2PasswordHasher(cheap);

  it('hashes with argon2id at the configured cost and verifies', async () => {
    const hash = await hasher.hash('correct horse battery');
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    expect(await hasher.verify(hash, 'correct horse battery')).toBe(true);
    expect(await hasher.verify(hash, 'correct horse batterY')).toBe(false);
    expect(await hasher.hash('correct horse battery')).not.toBe(hash);
  });

  it('answers false, without throwing, for a missing or malformed hash', async () => {
    expect(await hasher.verify(null, 'anything at all')).toBe(false);
    expect(await hasher.verify('not-a-hash', 'anything at all')).toBe(false);
  });

  it('knows when a hash was made at another cost', async () => {
    const hash = await hasher.hash('correct horse battery');
    expect(hasher.needsRehash(hash)).toBe(false);
    expect(new Argon2PasswordHasher({ argon2MemoryKiB: 2048, argon2TimeCost: 1 }).needsRehash(hash)).toBe(
      true,
    );
    expect(hasher.needsRehash('garbage')).toBe(true);
  });
});
