/**
 * The text blocks of the Command line access panel, as pure functions of the credentials: what a
 * user pastes into bash, PowerShell or `~/.aws/credentials`.
 */
import type { CliCredentialsResponse } from '../../../server/protocol/credentials.js';

/** STS values are base64 and alphanumerics; escaping anyway keeps a paste from running anything. */
const bashQuoted = (value: string): string => `"${value.replace(/[\\"$`]/g, (ch) => `\\${ch}`)}"`;
const powerShellQuoted = (value: string): string => `"${value.replace(/[`"$]/g, (ch) => `\`${ch}`)}"`;

export function bashExports(c: CliCredentialsResponse): string {
  return [
    `export AWS_ACCESS_KEY_ID=${bashQuoted(c.accessKeyId)}`,
    `export AWS_SECRET_ACCESS_KEY=${bashQuoted(c.secretAccessKey)}`,
    `export AWS_SESSION_TOKEN=${bashQuoted(c.sessionToken)}`,
    `export AWS_REGION=${bashQuoted(c.region)}`,
  ].join('\n');
}

export function powerShellLines(c: CliCredentialsResponse): string {
  return [
    `$Env:AWS_ACCESS_KEY_ID=${powerShellQuoted(c.accessKeyId)}`,
    `$Env:AWS_SECRET_ACCESS_KEY=${powerShellQuoted(c.secretAccessKey)}`,
    `$Env:AWS_SESSION_TOKEN=${powerShellQuoted(c.sessionToken)}`,
    `$Env:AWS_REGION=${powerShellQuoted(c.region)}`,
  ].join('\n');
}

/** The profile name IAM Identity Center uses: `<account id>_<permission set>`. */
export function profileName(accountId: string, permissionSet: string): string {
  return `${accountId}_${permissionSet}`;
}

export function credentialsFileBlock(
  c: CliCredentialsResponse,
  accountId: string,
  permissionSet: string,
): string {
  return [
    `[${profileName(accountId, permissionSet)}]`,
    `aws_access_key_id=${c.accessKeyId}`,
    `aws_secret_access_key=${c.secretAccessKey}`,
    `aws_session_token=${c.sessionToken}`,
  ].join('\n');
}

/** "in 7 h 59 min", "in 12 min", "expired". */
export function timeLeft(expiresAtMs: number, nowMs: number): string {
  const minutes = Math.floor((expiresAtMs - nowMs) / 60_000);
  if (minutes < 1) return expiresAtMs > nowMs ? 'in less than a minute' : 'expired';
  const hours = Math.floor(minutes / 60);
  return hours > 0 ? `in ${hours} h ${minutes % 60} min` : `in ${minutes} min`;
}
