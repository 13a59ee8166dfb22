/**
 * Resolves the session cookie on every request into `request.principal` (full sessions) or
 * `request.pendingSession` (password ok, MFA pending), and provides the guards routes use:
 * `app.requireUser`, `app.requireAdmin`.
 */
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors } from '../errors.js';
import type { SessionRecord, Store, UserRecord } from '../store/store.js';
import { SessionService } from './session-service.js';
import { accessGate, isOpenWhileGated } from './access-gate.js';

export const adminGroupName = 'admins';

export interface Principal {
  readonly user: UserRecord;
  readonly session: SessionRecord;
  readonly isAdmin: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionService;
    /** Cookie name: `__Host-cove_session` over HTTPS, `cove_session` otherwise. */
    sessionCookieName: string;
    setSessionCookie(reply: FastifyReply, token: string, maxAgeS: number): void;
    clearSessionCookie(reply: FastifyReply): void;
    requireUser(request: FastifyRequest): Promise<void>;
    requireAdmin(request: FastifyRequest): Promise<void>;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
    /** The session when it is only at the MFA step. */
    pendingSession: SessionRecord | undefined;
    /** The session behind the cookie, whatever its stage. */
    session: SessionRecord | undefined;
  }
}

export interface AuthPluginOptions {
  readonly store: Store;
  readonly https: boolean;
  readonly sessionTtlS: number;
  readonly mfaPendingTtlS: number;
  readonly now?: () => number;
  /** MFA for every user; default `config.auth.requireMfa` when the app has a config. */
  readonly requireMfa?: boolean;
}

export default fp(
  async (app, opts: AuthPluginOptions) => {
    const sessions = new SessionService(opts.store, opts, opts.now);
    const cookieName = opts.https ? '__Host-cove_session' : 'cove_session';
    const requireMfa = opts.requireMfa ?? (app.hasDecorator('config') ? app.config.auth.requireMfa : false);
    app.decorate('sessions', sessions);
    app.decorate('sessionCookieName', cookieName);
    app.decorate('setSessionCookie', (reply: FastifyReply, token: string, maxAgeS: number) => {
      reply.setCookie(cookieName, token, {
        path: '/',
        httpOnly: true,
        sameSite: 'lax',
        secure: opts.https,
        maxAge: maxAgeS,
      });
    });
    app.decorate('clearSessionCookie', (reply: FastifyReply) => {
      reply.clearCookie(cookieName, { path: '/', httpOnly: true, sameSite: 'lax', secure: opts.https });
    });
    app.decorateRequest('principal', undefined);
    app.decorateRequest('pendingSession', undefined);
    app.decorateRequest('session', undefined);

    app.addHook('onRequest', async (request) => {
      // SCIM authenticates by its bearer token only: a session cookie must never count there.
      if (request.url.startsWith('/scim/v2/')) return;
      const session = await sessions.resolve(request.cookies[cookieName]);
      if (!session) return;
      const user = await opts.store.users.get(session.userId);
      if (!user || user.disabled) {
        await sessions.destroy(session);
        return;
      }
      request.session = session;
      if (session.stage === 'mfa') {
        request.pendingSession = session;
        return;
      }
      const groups = await opts.store.groups.groupsOf(user.id);
      request.principal = { user, session, isAdmin: groups.some((g) => g.name === adminGroupName) };
      // Also here, not only in the guards, so an /api route that forgets its guard is still gated.
      const route = request.routeOptions.url;
      if (route?.startsWith('/api/') && !isOpenWhileGated(route)) {
        const gate = accessGate(user, requireMfa, session);
        if (gate) throw gate;
      }
    });

    app.decorate('requireUser', async (request: FastifyRequest) => {
      if (!request.principal) throw request.pendingSession ? errors.mfaPending() : errors.notAuthenticated();
      const gate = accessGate(request.principal.user, requireMfa, request.principal.session);
      if (gate) throw gate;
    });
    app.decorate('requireAdmin', async (request: FastifyRequest) => {
      if (!request.principal) throw request.pendingSession ? errors.mfaPending() : errors.notAuthenticated();
      const gate = accessGate(request.principal.user, requireMfa, request.principal.session);
      if (gate) throw gate;
      if (!request.principal.isAdmin) throw errors.adminOnly();
    });
  },
  { name: 'auth', dependencies: ['@fastify/cookie'] },
);
