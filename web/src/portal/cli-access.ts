/**
 * The portal's Command line access panel (IAM Identity Center's "Command line or programmatic
 * access"): fresh temporary credentials for one assignment as bash, PowerShell and
 * `~/.aws/credentials` text, each with a Copy button, and when they expire.
 *
 * Secrets live only in this dialog's DOM while it is open: fetched by POST (never in a URL), never
 * in the title or storage, and gone with the dialog.
 */
import type { PortalAssignment } from '../../../server/protocol/api.js';
import type { CliCredentialsRequest, CliCredentialsResponse } from '../../../server/protocol/credentials.js';
import { errorMessage, postJson } from '../lib/api.js';
import { copyBlock } from '../lib/copy-block.js';
import { openDialog } from '../lib/dialog.js';
import { h, replaceChildren, showAlert } from '../lib/dom.js';
import {
  bashExports,
  credentialsFileBlock,
  powerShellLines,
  profileName,
  timeLeft,
} from './cli-access-text.js';

/** Opens the panel for one assignment and fetches its credentials. */
export async function openCliAccess(set: PortalAssignment, region: string): Promise<void> {
  const body = h('div', { 'data-testid': 'cli-body' }, h('p', { class: 'muted' }, 'Getting credentials…'));
  const close = h('button', { type: 'button', class: 'btn btn-primary' }, 'Close');
  const dialog = openDialog(
    'Command line access',
    h('p', null, `${set.accountName} (${set.accountId}) · ${set.permissionSet}`),
    body,
    h('div', { class: 'dialog-actions' }, close),
  );
  dialog.element.dataset.testid = 'cli-dialog';
  dialog.element.style.maxWidth = 'min(46rem, calc(100vw - 2rem))';
  close.addEventListener('click', () => dialog.close());
  const timers: ReturnType<typeof setInterval>[] = [];
  dialog.element.addEventListener('close', () => timers.forEach(clearInterval));

  const request: CliCredentialsRequest = {
    accountId: set.accountId,
    permissionSet: set.permissionSet,
    region,
  };
  let credentials: CliCredentialsResponse;
  try {
    credentials = await postJson<CliCredentialsResponse>('/api/credentials', request);
  } catch (error) {
    const alert = h('div', { role: 'alert', 'data-testid': 'cli-error' });
    showAlert(alert, errorMessage(error));
    replaceChildren(body, alert);
    return;
  }
  if (!dialog.element.open) return;

  const expiresAt = new Date(credentials.expiration);
  const expiry = h('p', { 'data-testid': 'cli-expiry' });
  const showExpiry = (): void => {
    expiry.textContent = `These credentials expire ${expiresAt.toLocaleString(undefined, {
      dateStyle: 'medium',
      timeStyle: 'short',
    })} (${timeLeft(expiresAt.getTime(), Date.now())}).`;
  };
  showExpiry();
  timers.push(setInterval(showExpiry, 30_000));

  const notice = credentials.notice
    ? h('div', { class: 'alert alert-info', role: 'status', 'data-testid': 'cli-notice' }, credentials.notice)
    : null;
  replaceChildren(
    body,
    notice,
    expiry,
    block('bash', 'macOS and Linux (bash, zsh)', 'Paste into your terminal:', bashExports(credentials)),
    block('powershell', 'Windows (PowerShell)', 'Paste into PowerShell:', powerShellLines(credentials)),
    block(
      'file',
      'AWS credentials file',
      `Add to ~/.aws/credentials (%USERPROFILE%\\.aws\\credentials on Windows), then run aws --profile ${profileName(set.accountId, set.permissionSet)} …`,
      credentialsFileBlock(credentials, set.accountId, set.permissionSet),
    ),
  );
}

function block(id: string, title: string, hint: string, text: string): HTMLElement {
  return copyBlock({ testId: `cli-${id}`, title, hint, text, extraRows: 2, breakWords: true });
}
