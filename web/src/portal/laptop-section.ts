/**
 * The portal's "Use from your laptop" panel: the `~/.aws/config` block that makes the AWS CLI
 * and SDKs sign in through Cove (`aws sso login`) and fetch fresh credentials for every
 * assignment themselves, with Copy buttons. The text comes from the server (laptop-config.ts).
 */
import type { LaptopConfigView } from '../../../server/protocol/sso.js';
import { errorMessage, getJson } from '../lib/api.js';
import { copyBlock } from '../lib/copy-block.js';
import { h, replaceChildren, showAlert } from '../lib/dom.js';

export class LaptopSection {
  render(): HTMLElement {
    const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    const section = h(
      'section',
      { class: 'card', 'data-testid': 'laptop', 'aria-labelledby': 'laptop-title' },
      h('h2', { id: 'laptop-title' }, 'Use from your laptop'),
      h(
        'p',
        null,
        'Sign in once with the AWS CLI and let it fetch fresh credentials for any of your accounts: no keys to copy, nothing that expires mid-task.',
      ),
      body,
    );
    void getJson<LaptopConfigView>('/api/sso/laptop-config').then(
      (view) => replaceChildren(body, ...this.blocks(view)),
      (error: unknown) => {
        const alert = h('div', { role: 'alert' });
        showAlert(alert, errorMessage(error));
        replaceChildren(body, alert);
      },
    );
    return section;
  }

  private blocks(view: LaptopConfigView): HTMLElement[] {
    const firstProfile = /\[profile ([^\]]+)\]/.exec(view.config)?.[1];
    return [
      block(
        'config',
        '1. Add to ~/.aws/config',
        '%USERPROFILE%\\.aws\\config on Windows. The services section points the sign-in at Cove instead of AWS.',
        view.config,
      ),
      block(
        'login',
        '2. Sign in',
        'Opens this Cove in your browser to approve the request.',
        'aws sso login --sso-session cove',
      ),
      block(
        'use',
        '3. Use a profile',
        'The CLI and SDKs get credentials for the profile by themselves until the sign-in ends.',
        `aws sts get-caller-identity --profile ${firstProfile ?? '<profile>'}`,
      ),
    ];
  }
}

function block(id: string, title: string, hint: string, text: string): HTMLElement {
  return copyBlock({ testId: `laptop-${id}`, title, hint, text, extraRows: 1, labelButton: true });
}
