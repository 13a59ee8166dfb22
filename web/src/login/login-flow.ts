/**
 * The sign-in steps as one small state machine: password (or invite) → TOTP → new password →
 * MFA enrollment → the page the user came for. After every step the server's `/api/me` decides
 * what is still missing, so a reload or an old tab always resumes at the right step.
 */
import {
  passwordRules,
  type InviteInfo,
  type LoginResponse,
  type Me,
  type MfaEnrollment,
  type OidcProviderInfo,
  type OidcProvidersResponse,
} from '../../../server/protocol/api.js';
import { ApiError, errorMessage, getJson, postJson } from '../lib/api.js';
import { h, replaceChildren, showAlert, whileBusy } from '../lib/dom.js';
import { safeNext } from '../lib/safe-next.js';

export interface LoginFlowOptions {
  readonly next: string | null;
  readonly invite: string | null;
  /** Arrived here from Sign out: say so above the form. */
  readonly signedOut?: boolean;
}

const noRedirect = { redirectOnAuth: false } as const;

export class LoginFlow {
  private readonly next: string;
  /** Kept only in memory so the "set a new password" step need not ask for it again. */
  private currentPassword: string | undefined;
  private countdown: ReturnType<typeof setInterval> | undefined;
  /** Identity providers to offer beside the password form. */
  private providers: readonly OidcProviderInfo[] = [];

  constructor(
    private readonly root: HTMLElement,
    private readonly options: LoginFlowOptions,
  ) {
    this.next = safeNext(options.next);
  }

  async start(): Promise<void> {
    if (this.options.invite) return this.showInvite(this.options.invite);
    const providers = getJson<OidcProvidersResponse>('/api/auth/oidc/providers', noRedirect).then(
      (answer) => answer.providers,
      () => [],
    );
    try {
      const me = await getJson<Me>('/api/me', noRedirect);
      this.resume(me);
    } catch (error) {
      this.providers = await providers;
      // Back from an identity provider with Cove's own code still to enter.
      if (error instanceof ApiError && error.code === 'COVE_ERR_AUTH_MFA_PENDING') return this.showMfa();
      if (this.options.signedOut) this.showPassword('You signed out. Sign in again to continue.', 'info');
      else this.showPassword();
    }
  }

  /** Decides the next step from what the server says is still missing. */
  private async proceed(): Promise<void> {
    let me: Me;
    try {
      me = await getJson<Me>('/api/me', noRedirect);
    } catch (error) {
      this.showPassword(errorMessage(error));
      return;
    }
    this.resume(me);
  }

  private resume(me: Me): void {
    if (me.passwordChangeRequired) return this.showChangePassword(me);
    if (me.mfaRequired && !me.mfaEnrolled) return void this.showEnroll();
    this.stopCountdown();
    location.assign(this.next);
  }

  // ---------- Steps ----------

  private showPassword(message = '', kind: 'error' | 'info' = 'error'): void {
    this.currentPassword = undefined;
    const alert = this.alert();
    const username = h('input', {
      id: 'username',
      name: 'username',
      type: 'text',
      autocomplete: 'username',
      autocapitalize: 'none',
      spellcheck: 'false',
      required: true,
      maxlength: 200,
    });
    const password = h('input', {
      id: 'password',
      name: 'password',
      type: 'password',
      autocomplete: 'current-password',
      required: true,
      maxlength: passwordRules.maxLength,
    });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
    const form = h(
      'form',
      { id: 'login-form', novalidate: true },
      alert,
      field('username', 'User name', username),
      field('password', 'Password', password),
      submit,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!username.value.trim() || !password.value) {
        showAlert(alert, 'Enter your user name and password.');
        return;
      }
      void whileBusy(submit, async () => {
        try {
          const result = await postJson<LoginResponse>(
            '/api/auth/login',
            { username: username.value.trim(), password: password.value },
            noRedirect,
          );
          this.currentPassword = password.value;
          if (result.mfaRequired) this.showMfa();
          else await this.proceed();
        } catch (error) {
          password.value = '';
          password.focus();
          if (error instanceof ApiError && error.status === 429)
            this.startCountdown(alert, submit, retryAfter(error));
          else showAlert(alert, errorMessage(error));
        }
      }).then(() => this.holdIfThrottled(submit));
    });
    this.render('Sign in', 'Sign in to your Cove portal.', form);
    if (this.providers.length > 0) this.root.append(this.providerButtons());
    if (message) showAlert(alert, message, kind);
    username.focus();
  }

  /** One "Sign in with <name>" link per identity provider; the server takes it from there. */
  private providerButtons(): HTMLElement {
    const next = this.next === '/' ? '' : `?next=${encodeURIComponent(this.next)}`;
    return h(
      'div',
      { class: 'auth-providers', 'data-testid': 'oidc-providers' },
      h('p', { class: 'auth-divider' }, 'or'),
      ...this.providers.map((provider) =>
        h(
          'a',
          { class: 'btn btn-block', href: `${provider.loginUrl}${next}`, 'data-provider': provider.id },
          `Sign in with ${provider.name}`,
        ),
      ),
    );
  }

  private showMfa(): void {
    const alert = this.alert();
    const code = codeInput('mfa-code');
    const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Verify');
    const back = h('button', { type: 'button', class: 'btn btn-link' }, 'Use a different account');
    back.addEventListener('click', () => {
      void postJson('/api/auth/logout', {}, noRedirect).catch(() => undefined);
      this.showPassword();
    });
    const form = h(
      'form',
      { id: 'mfa-form', novalidate: true },
      alert,
      field(
        'mfa-code',
        'Code from your authenticator app',
        code,
        'Enter the 6-digit code your app shows now.',
      ),
      submit,
      h('p', { class: 'row', style: 'justify-content:center;margin:0.75rem 0 0' }, back),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!isSixDigits(code.value, alert)) return;
      void whileBusy(submit, async () => {
        try {
          await postJson('/api/auth/mfa', { code: code.value }, noRedirect);
          await this.proceed();
        } catch (error) {
          code.value = '';
          const apiCode = error instanceof ApiError ? error.code : '';
          // Locked out, or the pending sign-in expired: only the password step can start again.
          if (apiCode === 'COVE_ERR_AUTH_MFA_LOCKED' || apiCode === 'COVE_ERR_AUTH_REQUIRED') {
            this.showPassword(errorMessage(error));
            return;
          }
          if (error instanceof ApiError && error.status === 429)
            this.startCountdown(alert, submit, retryAfter(error));
          else showAlert(alert, errorMessage(error));
          code.focus();
        }
      }).then(() => this.holdIfThrottled(submit));
    });
    this.render('Multi-factor authentication', 'Your account is protected with an authenticator app.', form);
    code.focus();
  }

  private showChangePassword(me: Me): void {
    const alert = this.alert();
    const knowsCurrent = this.currentPassword !== undefined;
    const current = h('input', {
      id: 'current-password',
      type: 'password',
      autocomplete: 'current-password',
      required: true,
    });
    const fresh = newPasswordInput('new-password');
    const confirm = newPasswordInput('confirm-password');
    const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Set password');
    const form = h(
      'form',
      { id: 'change-password-form', novalidate: true },
      alert,
      h('input', {
        type: 'text',
        autocomplete: 'username',
        value: me.username,
        hidden: true,
        readonly: true,
      }),
      knowsCurrent ? null : field('current-password', 'Current password', current),
      field(
        'new-password',
        'New password',
        fresh,
        `At least ${passwordRules.minLength} characters, and not your user name.`,
      ),
      field('confirm-password', 'Confirm new password', confirm),
      submit,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const problem = checkNewPassword(fresh.value, confirm.value);
      if (problem) {
        showAlert(alert, problem);
        return;
      }
      void whileBusy(submit, async () => {
        try {
          await postJson(
            '/api/auth/password',
            { currentPassword: this.currentPassword ?? current.value, newPassword: fresh.value },
            noRedirect,
          );
          this.currentPassword = fresh.value;
          await this.proceed();
        } catch (error) {
          if (error instanceof ApiError && error.status === 401 && error.code === 'COVE_ERR_AUTH_REQUIRED') {
            this.showPassword(errorMessage(error));
            return;
          }
          showAlert(alert, errorMessage(error));
        }
      });
    });
    this.render('Set a new password', `Choose a new password for ${me.username} before you continue.`, form);
    (knowsCurrent ? fresh : current).focus();
  }

  private async showEnroll(): Promise<void> {
    this.render('Set up MFA', 'Preparing your authenticator setup…', h('div'));
    let enrollment: MfaEnrollment;
    try {
      enrollment = await postJson<MfaEnrollment>('/api/auth/mfa/enroll', {}, noRedirect);
    } catch (error) {
      this.showPassword(errorMessage(error));
      return;
    }
    const alert = this.alert();
    const code = codeInput('enroll-code');
    const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Verify and finish');
    // Only a data: image from our own server is shown; anything else is not rendered.
    const qr = enrollment.qrSvgDataUrl.startsWith('data:image/')
      ? h('img', { class: 'qr', src: enrollment.qrSvgDataUrl, alt: 'QR code for your authenticator app' })
      : null;
    const form = h(
      'form',
      { id: 'enroll-form', novalidate: true },
      alert,
      h(
        'p',
        null,
        '1. Scan this QR code with an authenticator app (for example Google Authenticator, Authy or 1Password).',
      ),
      qr,
      h(
        'details',
        { class: 'field' },
        h('summary', null, 'Can’t scan it? Enter this key instead'),
        h('code', { class: 'secret', id: 'mfa-secret', 'data-testid': 'mfa-secret' }, enrollment.secret),
      ),
      field('enroll-code', '2. Enter the 6-digit code the app shows', code),
      submit,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!isSixDigits(code.value, alert)) return;
      void whileBusy(submit, async () => {
        try {
          await postJson('/api/auth/mfa/enroll/verify', { code: code.value }, noRedirect);
          await this.proceed();
        } catch (error) {
          code.value = '';
          code.focus();
          showAlert(alert, errorMessage(error));
        }
      });
    });
    this.render(
      'Set up MFA',
      'Your administrator requires multi-factor authentication for your account.',
      form,
    );
  }

  private async showInvite(token: string): Promise<void> {
    // Keep the token out of the address bar and history once it has been read.
    history.replaceState(
      null,
      '',
      this.options.next ? `/login?next=${encodeURIComponent(this.next)}` : '/login',
    );
    let info: InviteInfo;
    try {
      info = await getJson<InviteInfo>(`/api/auth/invite/${encodeURIComponent(token)}`, noRedirect);
    } catch (error) {
      info = { valid: false };
      if (
        !(error instanceof ApiError) ||
        (error.status !== 404 && error.status !== 400 && error.status !== 410)
      ) {
        this.showPassword(errorMessage(error));
        return;
      }
    }
    if (!info.valid || !info.username) {
      this.showPassword(
        'This invite link is not valid any more: it was already used or has expired. Ask your administrator for a new one.',
      );
      return;
    }
    const username = info.username;
    const alert = this.alert();
    const fresh = newPasswordInput('new-password');
    const confirm = newPasswordInput('confirm-password');
    const submit = h(
      'button',
      { type: 'submit', class: 'btn btn-primary btn-block' },
      'Set password and sign in',
    );
    const form = h(
      'form',
      { id: 'invite-form', novalidate: true },
      alert,
      h(
        'div',
        { class: 'field' },
        h('span', { class: 'label' }, 'User name'),
        h('strong', { id: 'invite-username', 'data-testid': 'invite-username' }, username),
      ),
      h('input', { type: 'text', autocomplete: 'username', value: username, hidden: true, readonly: true }),
      field(
        'new-password',
        'Choose a password',
        fresh,
        `At least ${passwordRules.minLength} characters, and not your user name.`,
      ),
      field('confirm-password', 'Confirm password', confirm),
      info.mfaRequired
        ? h(
            'p',
            { class: 'hint' },
            'Next you will set up an authenticator app: your administrator requires MFA.',
          )
        : null,
      submit,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const problem = checkNewPassword(fresh.value, confirm.value);
      if (problem) {
        showAlert(alert, problem);
        return;
      }
      void whileBusy(submit, async () => {
        try {
          const result = await postJson<LoginResponse>(
            '/api/auth/invite/accept',
            { token, password: fresh.value },
            noRedirect,
          );
          this.currentPassword = fresh.value;
          // A password reset keeps an enrolled authenticator: its code is still needed.
          if (result.mfaRequired) this.showMfa();
          else await this.proceed();
        } catch (error) {
          showAlert(alert, errorMessage(error));
        }
      });
    });
    this.render('Welcome to Cove', 'Set a password to activate your account.', form);
    fresh.focus();
  }

  // ---------- Helpers ----------

  private alert(): HTMLElement {
    return h('div', { class: 'alert alert-error', role: 'alert', id: 'login-alert', hidden: true });
  }

  private render(title: string, intro: string, body: HTMLElement): void {
    this.stopCountdown();
    document.title = `${title} · Cove`;
    replaceChildren(this.root, h('h1', null, title), h('p', { class: 'muted' }, intro), body);
  }

  /** Throttled: keep the button disabled and count down to when trying again makes sense. */
  private startCountdown(alert: HTMLElement, button: HTMLButtonElement, seconds: number): void {
    this.stopCountdown();
    let left = Math.max(1, Math.ceil(seconds));
    const tick = () => {
      if (left <= 0) {
        this.stopCountdown();
        button.disabled = false;
        showAlert(alert, 'You can try again now.', 'info');
        return;
      }
      showAlert(alert, `Too many failed attempts. Try again in ${left} s.`);
      button.disabled = true;
      left -= 1;
    };
    tick();
    this.countdown = setInterval(tick, 1000);
  }

  /** whileBusy re-enables the button when the request settles; a running countdown wins. */
  private holdIfThrottled(button: HTMLButtonElement): void {
    if (this.countdown !== undefined) button.disabled = true;
  }

  private stopCountdown(): void {
    if (this.countdown !== undefined) clearInterval(this.countdown);
    this.countdown = undefined;
  }
}

function field(id: string, label: string, input: HTMLElement, hint?: string): HTMLElement {
  if (hint) input.setAttribute('aria-describedby', `${id}-hint`);
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    input,
    hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null,
  );
}

function codeInput(id: string): HTMLInputElement {
  const input = h('input', {
    id,
    name: 'code',
    type: 'text',
    class: 'code-input',
    inputmode: 'numeric',
    autocomplete: 'one-time-code',
    pattern: '[0-9]{6}',
    maxlength: 6,
    required: true,
  });
  input.addEventListener('input', () => {
    const digits = input.value.replace(/\D/g, '').slice(0, 6);
    if (digits !== input.value) input.value = digits;
  });
  return input;
}

function newPasswordInput(id: string): HTMLInputElement {
  return h('input', {
    id,
    type: 'password',
    autocomplete: 'new-password',
    required: true,
    minlength: passwordRules.minLength,
    maxlength: passwordRules.maxLength,
  });
}

function checkNewPassword(password: string, confirm: string): string | undefined {
  if (password.length < passwordRules.minLength)
    return `Choose a password of at least ${passwordRules.minLength} characters.`;
  if (password !== confirm) return 'The two passwords are not the same. Type them again.';
  return undefined;
}

function retryAfter(error: ApiError): number {
  const fromBody = error.details.retryAfterS;
  return error.retryAfterS ?? (typeof fromBody === 'number' ? fromBody : 30);
}

/** A TOTP code is exactly six digits; anything else is answered here, without a round trip. */
function isSixDigits(value: string, alert: HTMLElement): boolean {
  if (/^\d{6}$/.test(value)) return true;
  showAlert(alert, 'Enter the 6 digits your authenticator app shows.');
  return false;
}
