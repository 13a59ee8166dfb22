/**
 * Sign-in (password, then TOTP when enrolled), sign-out, the current user, password change, MFA
 * enrollment and invite acceptance. Every auth step hands out a new cookie value, so a planted or
 * stolen pre-login cookie never becomes a signed-in one.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { audit } from '../audit.js';
import { errors } from '../errors.js';
import { PeriodicJob } from '../periodic-job.js';
import { normalizeName, type LoginResponse } from '../protocol/api.js';
import type { SessionStage, UserRecord } from '../store/store.js';
import type { Principal } from './auth-plugin.js';
import { mfaRequiredFor } from './access-gate.js';
import { findLiveInvite } from './invites.js';
import { LoginThrottle } from './login-throttle.js';
import { Argon2PasswordHasher, passwordPolicyProblem } from './password-hasher.js';
import { matchTotp, newTotpSecret, totpEnrollment } from './totp.js';

/** Wrong codes a pending sign-in may send before it has to start over with the password. */
export const maxMfaFailures = 5;
/** How often expired sessions and forgotten sign-in failures are deleted. */
const sweepIntervalMs = 10 * 60 * 1000;

const Empty = Type.Object({});
const Code = Type.String({
  minLength: 1,
  maxLength: 16,
  description: 'The 6-digit code from the authenticator app',
});
const LoginBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 256 }),
  // Generous here (policy limits apply when a password is set), but bounded: argon2 reads it all.
  password: Type.String({ minLength: 1, maxLength: 1024 }),
});
const LoginReply = Type.Object({
  mfaRequired: Type.Boolean(),
  passwordChangeRequired: Type.Optional(Type.Boolean()),
  mfaEnrollmentRequired: Type.Optional(Type.Boolean()),
});
const CodeBody = Type.Object({ code: Code });
const PasswordBody = Type.Object({
  currentPassword: Type.String({ minLength: 1, maxLength: 1024 }),
  newPassword: Type.String({ minLength: 1, maxLength: 1024 }),
});
const MeReply = Type.Object({
  id: Type.String(),
  username: Type.String(),
  isAdmin: Type.Boolean(),
  mfaEnrolled: Type.Boolean(),
  mfaRequired: Type.Boolean(),
  passwordChangeRequired: Type.Boolean(),
});
const EnrollmentReply = Type.Object({
  otpauthUrl: Type.String(),
  qrSvgDataUrl: Type.String(),
  secret: Type.String(),
});
const LogoutReply = Type.Object({
  logoutUrl: Type.String({ description: "The identity provider's logout page to go to next" }),
});
const InviteParams = Type.Object({ token: Type.String({ minLength: 1, maxLength: 512 }) });
const InviteReply = Type.Object({
  username: Type.String(),
  valid: Type.Boolean(),
  mfaRequired: Type.Boolean(),
});
const InviteInvalidReply = Type.Object({
  valid: Type.Boolean(),
  code: Type.String(),
  message: Type.String(),
});
const InviteAcceptBody = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 512 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
});

export default async function authRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { store, config } = app;
  const requireMfa = config.auth.requireMfa;
  const hasher = new Argon2PasswordHasher(config.auth);
  const throttle = new LoginThrottle(store, config.auth, app.now);

  // Once per interval across every instance sharing the store.
  const sweeps = [
    new PeriodicJob({
      name: 'auth.session-sweep',
      intervalMs: sweepIntervalMs,
      store,
      holder: config.instanceId,
      now: app.now,
      log: app.log,
      // Sessions that ended, and sign-ins abandoned at an identity provider.
      run: async () => {
        await store.sessions.deleteExpired(app.now());
        await store.oidcLogins.deleteExpired(app.now());
      },
    }),
    new PeriodicJob({
      name: 'auth.throttle-prune',
      intervalMs: sweepIntervalMs,
      store,
      holder: config.instanceId,
      now: app.now,
      log: app.log,
      run: () => throttle.prune(),
    }),
  ];
  app.addHook('onReady', async () => {
    for (const sweep of sweeps) sweep.start();
  });
  app.addHook('onClose', async () => {
    await Promise.all(sweeps.map((sweep) => sweep.close()));
  });

  /** The full-stage principal, gated or not: these routes are how a gated user gets ungated. */
  function signedIn(request: FastifyRequest): Principal {
    if (!request.principal) throw request.pendingSession ? errors.mfaPending() : errors.notAuthenticated();
    return request.principal;
  }

  async function startSession(reply: FastifyReply, userId: string, stage: SessionStage): Promise<void> {
    const { token } = await app.sessions.create(userId, stage);
    app.setSessionCookie(
      reply,
      token,
      stage === 'mfa' ? config.auth.mfaPendingTtlS : config.auth.sessionTtlS,
    );
  }

  /** What the page must do next once the session is full. */
  function nextSteps(user: UserRecord): LoginResponse {
    return {
      mfaRequired: false,
      passwordChangeRequired: user.mustChangePassword,
      mfaEnrollmentRequired: mfaRequiredFor(user, requireMfa) && !user.totpSecret,
    };
  }

  async function refuseIfThrottled(request: FastifyRequest, account: string, signIn = false): Promise<void> {
    const retryAfterS = await throttle.retryAfterS(account, request.ip);
    if (retryAfterS !== undefined) {
      request.log.warn({ retryAfterS }, 'sign-in throttled');
      if (signIn) app.metrics.signInFailed('throttled');
      throw errors.throttled(retryAfterS);
    }
  }

  app.post(
    '/api/auth/login',
    { schema: { body: LoginBody, response: { 200: LoginReply } } },
    async (request, reply): Promise<LoginResponse> => {
      const username = normalizeName(request.body.username);
      await refuseIfThrottled(request, username, true);
      const user = await store.users.getByUsername(username);
      // Verify before looking at `disabled`, so every refusal costs the same time.
      const passwordOk = await hasher.verify(user?.passwordHash ?? null, request.body.password);
      if (!user || !passwordOk || user.disabled) {
        await throttle.recordFailure(username, request.ip);
        app.metrics.signInFailed('password');
        const reason = !user ? 'unknown_user' : !passwordOk ? 'wrong_password' : 'disabled';
        await audit(store, request, {
          action: 'auth.login.failed',
          target: user?.id ?? null,
          actor: { id: user?.id ?? null, name: username.slice(0, 64) },
          details: { reason },
        });
        throw errors.badCredentials();
      }

      // Fixation defence: whatever session the browser brought ends here.
      if (request.session) await app.sessions.destroy(request.session);
      const actor = { id: user.id, name: user.username };
      if (user.totpSecret) {
        await startSession(reply, user.id, 'mfa');
        await audit(store, request, {
          action: 'auth.login.password_ok',
          target: user.id,
          actor,
          details: { mfaPending: true },
        });
        return { mfaRequired: true };
      }

      await throttle.recordSuccess(username);
      const passwordHash =
        user.passwordHash && hasher.needsRehash(user.passwordHash)
          ? await hasher.hash(request.body.password)
          : undefined;
      await store.users.update(user.id, {
        lastLoginAt: app.now(),
        ...(passwordHash ? { passwordHash } : {}),
      });
      await startSession(reply, user.id, 'full');
      await audit(store, request, { action: 'auth.login.succeeded', target: user.id, actor });
      return nextSteps(user);
    },
  );

  app.post(
    '/api/auth/mfa',
    { schema: { body: CodeBody, response: { 200: Empty } } },
    async (request, reply) => {
      const pending = request.pendingSession;
      if (!pending)
        throw request.principal ? errors.conflict('You are already signed in.') : errors.notAuthenticated();
      const user = await store.users.get(pending.userId);
      if (!user?.totpSecret) {
        // MFA was reset while the code was being typed: the password step decides again.
        await app.sessions.destroy(pending);
        app.clearSessionCookie(reply);
        throw errors.notAuthenticated();
      }
      const actor = { id: user.id, name: user.username };
      const step = matchTotp(user.totpSecret, request.body.code, app.now());
      const claimed = step !== undefined && (await store.users.claimTotpStep(user.id, step));
      if (!claimed) {
        app.metrics.signInFailed('mfa');
        const replayed = step !== undefined;
        const failures = await store.sessions.incrementMfaFailures(pending.idHash);
        if (failures === 0 || failures >= maxMfaFailures) {
          await app.sessions.destroy(pending);
          app.clearSessionCookie(reply);
          // Each lockout counts against the account, so password + 5 guesses cannot loop freely.
          await throttle.recordFailure(user.username, request.ip);
          await audit(store, request, {
            action: 'auth.mfa.locked',
            target: user.id,
            actor,
            details: { failures },
          });
          throw errors.mfaLockedOut();
        }
        await audit(store, request, {
          action: replayed ? 'auth.mfa.replayed' : 'auth.mfa.failed',
          target: user.id,
          actor,
          details: { failures },
        });
        throw replayed ? errors.mfaReplayed() : errors.mfaInvalid();
      }
      const rotated = await app.sessions.rotate(pending, 'full');
      if (!rotated) throw errors.notAuthenticated();
      app.setSessionCookie(reply, rotated.token, config.auth.sessionTtlS);
      await throttle.recordSuccess(user.username);
      await store.users.update(user.id, { lastLoginAt: app.now() });
      await audit(store, request, { action: 'auth.mfa.succeeded', target: user.id, actor });
      return {};
    },
  );

  app.post(
    '/api/auth/logout',
    { schema: { response: { 200: LogoutReply, 204: Type.Null() } } },
    async (request, reply) => {
      const session = request.session;
      if (session) {
        await app.sessions.destroy(session);
        // Signing out of Cove signs the user's command lines out too (issue 20).
        await app.ssoSignIn.revokeForUser(session.userId);
        await audit(store, request, {
          action: 'auth.logout',
          target: session.userId,
          actor: { id: session.userId, name: request.principal?.user.username ?? null },
          ...(session.providerId ? { details: { provider: session.providerId } } : {}),
        });
      }
      app.clearSessionCookie(reply);
      // Signed in at an identity provider: the page goes on to sign out there too (RP-initiated).
      const logoutUrl = session ? await app.oidc.logoutUrl(session.providerId, session.idToken) : undefined;
      if (logoutUrl) return reply.status(200).send({ logoutUrl });
      return reply.status(204).send(null);
    },
  );

  app.get('/api/me', { schema: { response: { 200: MeReply } } }, async (request) => {
    const { user, isAdmin, session } = signedIn(request);
    return {
      id: user.id,
      username: user.username,
      isAdmin,
      mfaEnrolled: user.totpSecret !== null,
      mfaRequired: mfaRequiredFor(user, requireMfa, session),
      passwordChangeRequired: user.mustChangePassword,
    };
  });

  app.post(
    '/api/auth/password',
    { schema: { body: PasswordBody, response: { 200: Empty } } },
    async (request, reply) => {
      const { user, session } = signedIn(request);
      const { currentPassword, newPassword } = request.body;
      await refuseIfThrottled(request, user.username);
      if (!(await hasher.verify(user.passwordHash, currentPassword))) {
        await throttle.recordFailure(user.username, request.ip);
        await audit(store, request, { action: 'auth.password.change_failed', target: user.id });
        throw errors.currentPasswordInvalid();
      }
      const problem =
        passwordPolicyProblem(newPassword, user.username) ??
        (newPassword === currentPassword ? 'Choose a password different from your current one.' : undefined);
      if (problem) throw errors.passwordPolicy(problem);
      const passwordHash = await hasher.hash(newPassword);
      await store.users.update(user.id, { passwordHash, mustChangePassword: false });
      // Every session of the user ends (stolen ones included); this browser gets a fresh one.
      const ended = await app.sessions.destroyAllFor(user.id);
      if (!ended.includes(session.idHash)) throw errors.notAuthenticated();
      await startSession(reply, user.id, 'full');
      await audit(store, request, { action: 'auth.password.changed', target: user.id });
      return {};
    },
  );

  app.post('/api/auth/mfa/enroll', { schema: { response: { 200: EnrollmentReply } } }, async (request) => {
    const { user } = signedIn(request);
    if (user.totpSecret) throw errors.mfaAlreadyEnrolled();
    const secret = newTotpSecret();
    await store.users.update(user.id, { totpPendingSecret: secret });
    return totpEnrollment(secret, user.username);
  });

  app.post(
    '/api/auth/mfa/enroll/verify',
    { schema: { body: CodeBody, response: { 200: Empty } } },
    async (request, reply) => {
      const { user, session } = signedIn(request);
      if (user.totpSecret) throw errors.mfaAlreadyEnrolled();
      if (!user.totpPendingSecret) throw errors.mfaEnrollmentNotStarted();
      const step = matchTotp(user.totpPendingSecret, request.body.code, app.now());
      if (step === undefined) throw errors.mfaInvalid();
      // Claimed now, so the code that proved the enrollment cannot also finish the next sign-in.
      if (!(await store.users.claimTotpStep(user.id, step))) throw errors.mfaReplayed();
      await store.users.update(user.id, { totpSecret: user.totpPendingSecret, totpPendingSecret: null });
      const rotated = await app.sessions.rotate(session, 'full');
      if (!rotated) throw errors.notAuthenticated();
      app.setSessionCookie(reply, rotated.token, config.auth.sessionTtlS);
      await audit(store, request, { action: 'auth.mfa.enrolled', target: user.id });
      return {};
    },
  );

  app.delete('/api/auth/mfa', { schema: { body: CodeBody, response: { 200: Empty } } }, async (request) => {
    const { user } = signedIn(request);
    if (mfaRequiredFor(user, requireMfa)) throw errors.mfaCannotDisable();
    if (!user.totpSecret) throw errors.mfaNotEnrolled();
    await refuseIfThrottled(request, user.username);
    const step = matchTotp(user.totpSecret, request.body.code, app.now());
    if (step === undefined) {
      await throttle.recordFailure(user.username, request.ip);
      throw errors.mfaInvalid();
    }
    if (!(await store.users.claimTotpStep(user.id, step))) throw errors.mfaReplayed();
    await store.users.resetMfa(user.id);
    await audit(store, request, { action: 'auth.mfa.disabled', target: user.id });
    return {};
  });

  app.get(
    '/api/auth/invite/:token',
    { schema: { params: InviteParams, response: { 200: InviteReply, 404: InviteInvalidReply } } },
    async (request, reply) => {
      const live = await findLiveInvite(store, request.params.token, app.now());
      if (!live) return reply.status(404).send({ valid: false, ...errors.inviteInvalid().toJSON() });
      return {
        username: live.user.username,
        valid: true,
        mfaRequired: mfaRequiredFor(live.user, requireMfa),
      };
    },
  );

  app.post(
    '/api/auth/invite/accept',
    { schema: { body: InviteAcceptBody, response: { 200: LoginReply } } },
    async (request, reply): Promise<LoginResponse> => {
      const live = await findLiveInvite(store, request.body.token, app.now());
      if (!live) throw errors.inviteInvalid();
      const { user, invite } = live;
      // Checked before the invite is consumed, so a weak password does not burn the link.
      const problem = passwordPolicyProblem(request.body.password, user.username);
      if (problem) throw errors.passwordPolicy(problem);
      const passwordHash = await hasher.hash(request.body.password);
      if (!(await store.invites.consume(invite.tokenHash, app.now()))) throw errors.inviteInvalid();
      const updated = await store.users.update(user.id, { passwordHash, mustChangePassword: false });
      if (!updated) throw errors.inviteInvalid();
      // An invite after a reset ends whatever sessions were left, and any the browser brought.
      await app.sessions.destroyAllFor(user.id);
      if (request.session && request.session.userId !== user.id) await app.sessions.destroy(request.session);
      const actor = { id: user.id, name: user.username };
      await audit(store, request, { action: 'auth.invite.accepted', target: user.id, actor });
      // A reset password does not skip an enrolled second factor.
      if (updated.totpSecret) {
        await startSession(reply, user.id, 'mfa');
        return { mfaRequired: true };
      }
      await store.users.update(user.id, { lastLoginAt: app.now() });
      await startSession(reply, user.id, 'full');
      return nextSteps(updated);
    },
  );
}
