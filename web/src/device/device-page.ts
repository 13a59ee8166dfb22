/**
 * "Authorize request": a command line (`aws sso login`, an SDK) asks to sign in as the signed-in
 * person. The page shows which application asks and, for a device sign-in, the code to compare
 * with the terminal's; Allow or Deny answers it. Without a code in the URL (the person opened the
 * bare verification address), it asks for the code first.
 */
import type { Me } from '../../../server/protocol/api.js';
import type { SsoDecision, SsoRequestView } from '../../../server/protocol/sso.js';
import { errorMessage, getJson, postJson } from '../lib/api.js';
import { h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';

export class DevicePage {
  constructor(
    private readonly root: HTMLElement,
    private readonly me: Me,
  ) {}

  async load(): Promise<void> {
    const code = new URLSearchParams(location.search).get('user_code');
    if (!code) {
      this.askForCode('');
      return;
    }
    await this.show(code);
  }

  private async show(code: string): Promise<void> {
    let view: SsoRequestView;
    try {
      view = await getJson<SsoRequestView>(`/api/sso/requests/${encodeURIComponent(code)}`);
    } catch (error) {
      this.askForCode(errorMessage(error));
      return;
    }
    const title = h('h1', { tabindex: -1, 'data-testid': 'device-title' }, 'Authorize request');
    const alert = h('div', { role: 'alert', hidden: true, 'data-testid': 'device-alert' });
    const allow = h(
      'button',
      { type: 'button', class: 'btn btn-primary', 'data-testid': 'device-allow' },
      'Allow',
    );
    const deny = h('button', { type: 'button', class: 'btn', 'data-testid': 'device-deny' }, 'Deny');
    const answer = (yes: boolean) =>
      whileBusy(yes ? allow : deny, async () => {
        let decision: SsoDecision;
        try {
          decision = await postJson<SsoDecision>(
            `/api/sso/requests/${encodeURIComponent(view.userCode)}/decision`,
            { allow: yes },
          );
        } catch (error) {
          showAlert(alert, errorMessage(error));
          alert.focus();
          return;
        }
        if (decision.redirectTo) {
          // Back to the command line's own loopback address, which finishes the sign-in.
          location.assign(decision.redirectTo);
          return;
        }
        this.done(decision.status);
      });
    allow.addEventListener('click', () => void answer(true));
    deny.addEventListener('click', () => void answer(false));
    replaceChildren(
      this.root,
      h(
        'section',
        { class: 'card', 'data-testid': 'device-request', style: 'max-width:36rem;margin:0 auto' },
        title,
        h(
          'p',
          null,
          h('strong', { 'data-testid': 'device-client' }, view.clientName),
          ` asks to sign in to Cove as ${this.me.username} and get AWS credentials for your accounts from the command line.`,
        ),
        view.kind === 'device'
          ? h(
              'p',
              null,
              'Allow it only if your command line shows this code: ',
              h(
                'code',
                { 'data-testid': 'device-code', style: 'font-size:1.2rem;letter-spacing:0.1em' },
                view.userCode,
              ),
            )
          : h(
              'p',
              null,
              'Allow it only if you just ran aws sso login (or a tool that signs in the same way) on this computer.',
            ),
        h('p', { class: 'muted' }, 'If you did not start this, choose Deny.'),
        alert,
        h('div', { class: 'row', style: 'gap:0.5rem' }, allow, deny),
      ),
    );
    title.focus();
  }

  private askForCode(problem: string): void {
    const input = h('input', {
      id: 'user-code',
      name: 'user-code',
      autocomplete: 'off',
      autocapitalize: 'characters',
      spellcheck: 'false',
      maxlength: 16,
      'data-testid': 'device-code-input',
    });
    const alert = h('div', { role: 'alert', hidden: true, 'data-testid': 'device-alert' });
    if (problem) showAlert(alert, problem);
    const form = h(
      'form',
      { class: 'card', style: 'max-width:36rem;margin:0 auto' },
      h('h1', null, 'Authorize request'),
      h('p', null, 'Enter the code your command line shows.'),
      alert,
      h('div', { class: 'field' }, h('label', { for: 'user-code' }, 'Code'), input),
      h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'device-next' }, 'Next'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const code = input.value.trim();
      if (!code) {
        showAlert(alert, 'Enter the code first.');
        input.focus();
        return;
      }
      history.replaceState(null, '', `/device?user_code=${encodeURIComponent(code)}`);
      void this.show(code);
    });
    replaceChildren(this.root, form);
    input.focus();
  }

  private done(status: SsoDecision['status']): void {
    const title = h(
      'h1',
      { tabindex: -1, 'data-testid': 'device-title' },
      status === 'approved' ? 'Request approved' : 'Request denied',
    );
    replaceChildren(
      this.root,
      h(
        'section',
        { class: 'card', 'data-testid': 'device-done', style: 'max-width:36rem;margin:0 auto' },
        title,
        h(
          'p',
          null,
          status === 'approved'
            ? 'Your command line is signed in. You can close this tab and go back to it.'
            : 'Your command line was told the request was denied. Nothing was signed in.',
        ),
        h('p', null, h('a', { href: '/' }, 'Go to the portal')),
      ),
    );
    title.focus();
  }
}
