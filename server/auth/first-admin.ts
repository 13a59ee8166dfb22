/**
 * Creates `admin` (in the admins group) when the directory has no users at all, with the password
 * from COVE_ADMIN_PASSWORD or, when unset, a random one-time password that must be changed at the
 * first sign-in. Does nothing once any user exists, so it is safe at every start.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { audit } from '../audit.js';
import { ConfigError } from '../config.js';
import { StoreError } from '../errors.js';
import { adminGroupName } from './auth-plugin.js';
import { Argon2PasswordHasher, passwordPolicyProblem } from './password-hasher.js';

export const firstAdminUsername = 'admin';

export interface FirstStart {
  readonly adminCreated: boolean;
  /** Set when no COVE_ADMIN_PASSWORD was given: print it once. */
  readonly oneTimeAdminPassword?: string;
}

export async function ensureFirstAdmin(
  app: FastifyInstance,
  password: string | undefined,
): Promise<FirstStart> {
  const { store } = app;
  if ((await store.users.count()) > 0) return { adminCreated: false };

  if (password !== undefined) {
    const problem = passwordPolicyProblem(password, firstAdminUsername);
    if (problem) throw new ConfigError([`COVE_ADMIN_PASSWORD is not acceptable: ${problem}`]);
  }
  // 18 random bytes: 24 URL-safe characters, easy to copy from the console.
  const oneTime = password === undefined ? randomBytes(18).toString('base64url') : undefined;
  const passwordHash = await new Argon2PasswordHasher(app.config.auth).hash(password ?? (oneTime as string));

  // Re-checked inside the transaction: two instances starting at once create one admin. On
  // PostgreSQL both may see no user; the second's insert then meets the first's `admin`.
  const created = await store
    .transaction(async (tx) => {
      if ((await tx.users.count()) > 0) return undefined;
      const user = await tx.users.create({
        username: firstAdminUsername,
        passwordHash,
        mustChangePassword: oneTime !== undefined,
      });
      const group =
        (await tx.groups.getByName(adminGroupName)) ??
        (await tx.groups.create({ name: adminGroupName, description: 'Cove administrators' }));
      await tx.groups.addMember(group.id, user.id);
      return user;
    })
    .catch((error: unknown) => {
      if (error instanceof StoreError && error.kind === 'conflict') return undefined;
      throw error;
    });
  if (!created) return { adminCreated: false };

  await audit(store, undefined, {
    action: 'auth.first_admin.created',
    target: created.id,
    actor: { id: null, name: 'system' },
    details: { passwordFrom: oneTime ? 'one-time' : 'COVE_ADMIN_PASSWORD' },
  });
  app.log.info({ username: firstAdminUsername }, 'created the first admin');
  return oneTime ? { adminCreated: true, oneTimeAdminPassword: oneTime } : { adminCreated: true };
}
