/**
 * What a user may use: the IAM Identity Center rule (direct assignments plus those of the user's
 * groups) as a pure function of directory records, so it is tested by exact equality and every
 * caller (portal, terminals, credentials) resolves access the same way.
 */
import type { AccountRecord, AssignmentRecord, PermissionSetRecord, UserRecord } from '../store/store.js';

export const defaultRoleArnTemplate = 'arn:aws:iam::{accountId}:role/Cove-{name}';

export interface EffectiveAccessEntry {
  readonly accountId: string;
  readonly accountName: string;
  readonly permissionSetId: string;
  /** The permission set's name. */
  readonly permissionSet: string;
  readonly permissionSetDescription: string;
  readonly sessionDurationS: number;
  readonly roleArn: string;
  /** Inline session policy passed to AssumeRole, if the permission set has one. */
  readonly sessionPolicy: string | null;
}

export interface EffectiveAccessInput {
  readonly user: Pick<UserRecord, 'id' | 'disabled'>;
  readonly groupIds: readonly string[];
  readonly assignments: readonly Pick<
    AssignmentRecord,
    'principalType' | 'principalId' | 'accountId' | 'permissionSetId'
  >[];
  readonly accounts: readonly Pick<AccountRecord, 'accountId' | 'name'>[];
  readonly permissionSets: readonly Pick<
    PermissionSetRecord,
    'id' | 'name' | 'description' | 'sessionDurationS' | 'roleArnTemplate' | 'sessionPolicy' | 'roleOverrides'
  >[];
}

/** Fills `{accountId}` and `{name}` in a role ARN template. */
export function renderRoleArn(template: string, accountId: string, permissionSetName: string): string {
  return template.replaceAll('{accountId}', accountId).replaceAll('{name}', permissionSetName);
}

/** Binary (not locale) order: the same on every server whatever its locale. */
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function resolveEffectiveAccess(input: EffectiveAccessInput): EffectiveAccessEntry[] {
  if (input.user.disabled) return [];
  const groups = new Set(input.groupIds);
  const accounts = new Map(input.accounts.map((a) => [a.accountId, a]));
  const sets = new Map(input.permissionSets.map((p) => [p.id, p]));
  const entries = new Map<string, EffectiveAccessEntry>();
  for (const a of input.assignments) {
    const applies = a.principalType === 'user' ? a.principalId === input.user.id : groups.has(a.principalId);
    if (!applies) continue;
    const account = accounts.get(a.accountId);
    const set = sets.get(a.permissionSetId);
    if (!account || !set) continue;
    const key = `${account.accountId}\u0000${set.id}`;
    if (entries.has(key)) continue;
    entries.set(key, {
      accountId: account.accountId,
      accountName: account.name,
      permissionSetId: set.id,
      permissionSet: set.name,
      permissionSetDescription: set.description,
      sessionDurationS: set.sessionDurationS,
      roleArn:
        set.roleOverrides[account.accountId] ??
        renderRoleArn(set.roleArnTemplate, account.accountId, set.name),
      sessionPolicy: set.sessionPolicy,
    });
  }
  return [...entries.values()].sort(
    (x, y) =>
      compare(x.accountName.toLowerCase(), y.accountName.toLowerCase()) ||
      compare(x.accountId, y.accountId) ||
      compare(x.permissionSet.toLowerCase(), y.permissionSet.toLowerCase()) ||
      compare(x.permissionSetId, y.permissionSetId),
  );
}
