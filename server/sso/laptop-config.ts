/**
 * The `~/.aws/config` text the portal's "Use from your laptop" panel shows: one `sso-session`
 * pointing at Cove (start URL, and the `services` section that sends the SSO OIDC and portal
 * calls to Cove instead of AWS), and one profile per assignment. Pure, tested by exact equality.
 */
import { profileName } from '../credentials/aws-config-block.js';

export interface LaptopProfile {
  readonly accountId: string;
  readonly accountName: string;
  readonly permissionSet: string;
}

export interface LaptopConfigInput {
  /** Cove's public URL, without a trailing slash. */
  readonly publicUrl: string;
  /** `sso_region` (the SDKs require one) and each profile's `region`. */
  readonly region: string;
  readonly profiles: readonly LaptopProfile[];
  /** The session's name in the file; default `cove`. */
  readonly sessionName?: string;
}

export function laptopConfig(input: LaptopConfigInput): string {
  const session = input.sessionName ?? 'cove';
  const lines = [
    `[sso-session ${session}]`,
    `sso_start_url = ${input.publicUrl}/start`,
    `sso_region = ${input.region}`,
    'sso_registration_scopes = sso:account:access',
    `services = ${session}-endpoints`,
    '',
    `[services ${session}-endpoints]`,
    'sso_oidc =',
    `  endpoint_url = ${input.publicUrl}/aws/oidc`,
    'sso =',
    `  endpoint_url = ${input.publicUrl}/aws/portal`,
  ];
  const seen = new Set<string>();
  for (const p of input.profiles) {
    let name = profileName(p.accountName, p.permissionSet) || p.accountId;
    if (seen.has(name)) name = `${name}-${p.accountId}`;
    seen.add(name);
    lines.push(
      '',
      `[profile ${name}]`,
      `sso_session = ${session}`,
      `sso_account_id = ${p.accountId}`,
      `sso_role_name = ${p.permissionSet}`,
      `region = ${input.region}`,
      `services = ${session}-endpoints`,
    );
  }
  return `${lines.join('\n')}\n`;
}
