/** The user's own security settings on the portal: MFA on/off and a new password. */
import { passwordRules, type Me, type MfaEnrollment } from '../../../server/protocol/api.js';
import { errorMessage, postJson, request } from '../lib/api.js';
import { openDialog } from '../lib/dialog.js';
import { h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';

// A wrong code or password answers 401 here; that is a message to show, not a lost session.
const noRedirect = { redirectOnAuth: false } as const;

export class SecuritySection {
  private readonly card = h('section', {
    class: 'card',
    'aria-labelledby': 'security-title',
    'data-testid': 'security',
  });

  constructor(private me: Me) {}

  render(): HTMLElement {
    const mfaButton = this.me.mfaEnrolled
      ? h(
          'button',
          { type: 'button', class: 'btn btn-small', disabled: this.me.mfaRequired === true },
          'Turn off MFA',
        )
      : h('button', { type: 'button', class: 'btn btn-small btn-primary' }, 'Set up MFA');
    mfaButton.addEventListener('click', () =>
      this.me.mfaEnrolled ? this.disableMfa() : void this.enrollMfa(),
    );
    const passwordButton = h('button', { type: 'button', class: 'btn btn-small' }, 'Change password');
    passwordButton.addEventListener('click', () => this.changePassword());
    const mfaStatus = this.me.mfaEnrolled
      ? h('span', { class: 'badge badge-ok' }, 'On')
      : h('span', { class: 'badge badge-warn' }, 'Off');
    replaceChildren(
      this.card,
      h('h2', { id: 'security-title' }, 'Security'),
      h(
        'div',
        { class: 'row', style: 'justify-content:space-between;padding:0.4rem 0' },
        h(
          'div',
          null,
          h('strong', null, 'Multi-factor authentication '),
          mfaStatus,
          h('div', { class: 'hint' }, mfaHint(this.me)),
        ),
        mfaButton,
      ),
      h(
        'div',
        {
          class: 'row',
          style: 'justify-content:space-between;padding:0.4rem 0;border-top:1px solid #e9ebed',
        },
        h(
          'div',
          null,
          h('strong', null, 'Password'),
          h('div', { class: 'hint' }, 'Used with your user name to sign in.'),
        ),
        passwordButton,
      ),
    );
    return this.card;
  }

  private async enrollMfa(): Promise<void> {
    const alert = h('div', { role: 'alert', hidden: true });
    const body = h('div', null, h('p', { class: 'muted' }, 'Preparing…'));
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const verify = h('button', { type: 'submit', class: 'btn btn-primary', form: 'enroll-form' }, 'Verify');
    const dialog = openDialog(
      'Set up MFA',
      alert,
      body,
      h('div', { class: 'dialog-actions' }, cancel, verify),
    );
    cancel.addEventListener('click', () => dialog.close());
    let enrollment: MfaEnrollment;
    try {
      enrollment = await postJson<MfaEnrollment>('/api/auth/mfa/enroll', {});
    } catch (error) {
      showAlert(alert, errorMessage(error));
      replaceChildren(body);
      verify.disabled = true;
      return;
    }
    const code = codeInput();
    const form = h(
      'form',
      { id: 'enroll-form', novalidate: true },
      h('p', null, 'Scan this QR code with your authenticator app, then enter the code it shows.'),
      enrollment.qrSvgDataUrl.startsWith('data:image/')
        ? h('img', { class: 'qr', src: enrollment.qrSvgDataUrl, alt: 'QR code for your authenticator app' })
        : null,
      h(
        'details',
        { class: 'field' },
        h('summary', null, 'Can’t scan it? Enter this key'),
        h('code', { class: 'secret' }, enrollment.secret),
      ),
      h('div', { class: 'field' }, h('label', { for: 'portal-enroll-code' }, '6-digit code'), code),
    );
    replaceChildren(body, form);
    code.focus();
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void whileBusy(verify, async () => {
        try {
          await postJson('/api/auth/mfa/enroll/verify', { code: code.value }, noRedirect);
          this.me = { ...this.me, mfaEnrolled: true };
          dialog.close();
          this.render();
        } catch (error) {
          code.value = '';
          showAlert(alert, errorMessage(error));
        }
      });
    });
  }

  private disableMfa(): void {
    const alert = h('div', { role: 'alert', hidden: true });
    const code = codeInput();
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const confirm = h(
      'button',
      { type: 'submit', class: 'btn btn-danger', form: 'disable-mfa-form' },
      'Turn off MFA',
    );
    const form = h(
      'form',
      { id: 'disable-mfa-form', novalidate: true },
      h('p', null, 'Enter a current code from your authenticator app to turn MFA off.'),
      h('div', { class: 'field' }, h('label', { for: 'portal-enroll-code' }, '6-digit code'), code),
    );
    const dialog = openDialog(
      'Turn off MFA',
      alert,
      form,
      h('div', { class: 'dialog-actions' }, cancel, confirm),
    );
    cancel.addEventListener('click', () => dialog.close());
    code.focus();
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void whileBusy(confirm, async () => {
        try {
          await request('/api/auth/mfa', { method: 'DELETE', body: { code: code.value }, ...noRedirect });
          this.me = { ...this.me, mfaEnrolled: false };
          dialog.close();
          this.render();
        } catch (error) {
          code.value = '';
          showAlert(alert, errorMessage(error));
        }
      });
    });
  }

  private changePassword(): void {
    const alert = h('div', { role: 'alert', hidden: true });
    const input = (id: string, autocomplete: string) =>
      h('input', { id, type: 'password', autocomplete, required: true, maxlength: passwordRules.maxLength });
    const current = input('pw-current', 'current-password');
    const fresh = input('pw-new', 'new-password');
    const again = input('pw-again', 'new-password');
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const save = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', form: 'password-form' },
      'Change password',
    );
    const form = h(
      'form',
      { id: 'password-form', novalidate: true },
      h('input', {
        type: 'text',
        autocomplete: 'username',
        value: this.me.username,
        hidden: true,
        readonly: true,
      }),
      h('div', { class: 'field' }, h('label', { for: 'pw-current' }, 'Current password'), current),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'pw-new' }, 'New password'),
        fresh,
        h(
          'span',
          { class: 'hint' },
          `At least ${passwordRules.minLength} characters, and not your user name.`,
        ),
      ),
      h('div', { class: 'field' }, h('label', { for: 'pw-again' }, 'Confirm new password'), again),
    );
    const dialog = openDialog(
      'Change password',
      alert,
      form,
      h('div', { class: 'dialog-actions' }, cancel, save),
    );
    cancel.addEventListener('click', () => dialog.close());
    current.focus();
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (fresh.value !== again.value) {
        showAlert(alert, 'The two new passwords are not the same. Type them again.');
        return;
      }
      void whileBusy(save, async () => {
        try {
          await postJson(
            '/api/auth/password',
            { currentPassword: current.value, newPassword: fresh.value },
            noRedirect,
          );
          dialog.close();
          const done = h('div', { role: 'status' });
          showAlert(done, 'Your password was changed.', 'success');
          this.card.append(done);
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
  }
}

function mfaHint(me: Me): string {
  if (me.mfaEnrolled && me.mfaRequired) return 'Your administrator requires MFA, so it stays on.';
  if (me.mfaEnrolled) return 'You sign in with a code from your authenticator app.';
  return 'Add a code from an authenticator app to your sign-in.';
}

function codeInput(): HTMLInputElement {
  return h('input', {
    id: 'portal-enroll-code',
    type: 'text',
    class: 'code-input',
    inputmode: 'numeric',
    autocomplete: 'one-time-code',
    pattern: '[0-9]{6}',
    maxlength: 6,
    required: true,
  });
}
