/**
 * The directory as the admin pages see it: one cache of users, groups, accounts and permission
 * sets that every tab reads, reloaded after each change so pickers never offer stale choices.
 */
import type {
  AdminAccount,
  AdminGroup,
  AdminPermissionSet,
  AdminUser,
} from '../../../server/protocol/api.js';
import { getJson, listOf } from '../lib/api.js';

export class AdminData {
  users: AdminUser[] = [];
  groups: AdminGroup[] = [];
  accounts: AdminAccount[] = [];
  permissionSets: AdminPermissionSet[] = [];

  async reload(...parts: ('users' | 'groups' | 'accounts' | 'permissionSets')[]): Promise<void> {
    const all = parts.length === 0;
    await Promise.all([
      all || parts.includes('users')
        ? getJson<unknown>('/api/admin/users').then((v) => (this.users = listOf<AdminUser>(v)))
        : null,
      all || parts.includes('groups')
        ? getJson<unknown>('/api/admin/groups').then((v) => (this.groups = listOf<AdminGroup>(v)))
        : null,
      all || parts.includes('accounts')
        ? getJson<unknown>('/api/admin/accounts').then((v) => (this.accounts = listOf<AdminAccount>(v)))
        : null,
      all || parts.includes('permissionSets')
        ? getJson<unknown>('/api/admin/permission-sets').then(
            (v) => (this.permissionSets = listOf<AdminPermissionSet>(v)),
          )
        : null,
    ]);
    this.users.sort((a, b) => a.username.localeCompare(b.username));
    this.groups.sort((a, b) => a.name.localeCompare(b.name));
    this.accounts.sort((a, b) => a.name.localeCompare(b.name));
    this.permissionSets.sort((a, b) => a.name.localeCompare(b.name));
  }
}
