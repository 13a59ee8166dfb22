/**
 * First-start directory content: the `admins` group (always ensured) and, on a new install only,
 * permission sets named like AWS's predefined ones. The seed is recorded in the audit log, so an
 * administrator who deletes them (even all of them) does not see them come back at the next start.
 */
import type { FastifyInstance } from 'fastify';
import { adminGroupName } from '../auth/auth-plugin.js';
import { audit } from '../audit.js';
import { StoreError } from '../errors.js';
import type { Store } from '../store/store.js';
import { defaultRoleArnTemplate } from './effective-access.js';

export const seedAction = 'directory.seed';

export const defaultPermissionSets = [
  {
    name: 'AdministratorAccess',
    description: 'Provides full access to AWS services and resources.',
  },
  {
    name: 'PowerUserAccess',
    description:
      'Provides full access to AWS services and resources, but does not allow management of users and groups.',
  },
  {
    name: 'ReadOnlyAccess',
    description: 'Provides read-only access to AWS services and resources.',
  },
  {
    name: 'Billing',
    description:
      'Grants permissions for billing and cost management, including viewing account usage and budgets.',
  },
] as const;

export interface SeedResult {
  readonly adminGroupCreated: boolean;
  readonly permissionSetsCreated: readonly string[];
}

/**
 * Idempotent: runs at every start. Instances starting at once on one PostgreSQL may both find
 * nothing seeded; the later one's insert conflicts, and its second pass sees the first's seed.
 */
export async function seedDirectory(app: FastifyInstance): Promise<SeedResult> {
  try {
    return await seedOnce(app.store);
  } catch (error) {
    if (error instanceof StoreError && error.kind === 'conflict') return seedOnce(app.store);
    throw error;
  }
}

function seedOnce(store: Store): Promise<SeedResult> {
  return store.transaction(async (tx) => {
    let adminGroupCreated = false;
    if (!(await tx.groups.getByName(adminGroupName))) {
      await tx.groups.create({
        name: adminGroupName,
        description: 'Cove administrators: full access to the admin console.',
      });
      adminGroupCreated = true;
    }
    const created: string[] = [];
    const seededBefore = (await tx.audit.list({ action: seedAction, limit: 1 })).length > 0;
    if (!seededBefore && (await tx.permissionSets.list()).length === 0) {
      for (const set of defaultPermissionSets) {
        await tx.permissionSets.create({
          name: set.name,
          description: set.description,
          sessionDurationS: 3600,
          roleArnTemplate: defaultRoleArnTemplate,
        });
        created.push(set.name);
      }
    }
    if (!seededBefore)
      await audit(tx, undefined, {
        action: seedAction,
        actor: { id: null, name: null },
        details: { adminGroupCreated, permissionSets: created },
      });
    return { adminGroupCreated, permissionSetsCreated: created };
  });
}
