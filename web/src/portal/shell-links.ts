/** Where "Open shell" goes: `/shell/<region>` plus the account × permission set it is bound to. */
export function shellUrl(region: string, binding?: { accountId: string; permissionSet: string }): string {
  const path = `/shell/${encodeURIComponent(region)}`;
  if (!binding) return path;
  const query = new URLSearchParams({ account: binding.accountId, permissionSet: binding.permissionSet });
  return `${path}?${query.toString()}`;
}
