/**
 * OpenID Connect routes. The two under /auth/oidc are browser navigations (a redirect to the
 * provider, the provider's redirect back), so they answer redirects or an HTML page that says
 * what went wrong and links back to sign-in; never JSON, never a stack trace.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { oidcProviderIdPattern } from '../config.js';
import { StoreError } from '../errors.js';
import { escapeHtml, messagePage } from '../web-pages.js';
import { OidcSignInError } from './oidc-service.js';

const ProviderParams = Type.Object({ provider: Type.String({ pattern: oidcProviderIdPattern }) });
const ProvidersReply = Type.Object({
  providers: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), loginUrl: Type.String() })),
});
const htmlReply = Type.String({ description: 'An HTML page' });
const pageResponses = {
  302: Type.Null(),
  400: htmlReply,
  403: htmlReply,
  404: htmlReply,
  409: htmlReply,
  500: htmlReply,
  502: htmlReply,
};

export default async function oidcRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const https = app.config.publicUrl.startsWith('https:');
  // Binds the sign-in in flight to this browser. SameSite=Lax: the provider's redirect back is a
  // cross-site top-level GET, which Lax lets through and Strict would not.
  const cookieName = https ? '__Host-cove_oidc' : 'cove_oidc';
  const cookieOptions = { path: '/', httpOnly: true, sameSite: 'lax', secure: https } as const;

  const errorPage = (reply: FastifyReply, error: OidcSignInError) =>
    reply
      .status(error.statusCode)
      .header('cache-control', 'no-store')
      .clearCookie(cookieName, cookieOptions)
      .type('text/html; charset=utf-8')
      .send(
        messagePage(error.title, escapeHtml(error.userMessage), {
          href: '/login',
          label: 'Back to sign-in',
        }),
      );

  app.get('/api/auth/oidc/providers', { schema: { response: { 200: ProvidersReply } } }, async () => ({
    providers: app.oidc.providers().map((p) => ({ ...p, loginUrl: `/auth/oidc/${p.id}/login` })),
  }));

  app.get(
    '/auth/oidc/:provider/login',
    {
      schema: {
        params: ProviderParams,
        querystring: Type.Object({ next: Type.Optional(Type.String({ maxLength: 2048 })) }),
        response: pageResponses,
      },
    },
    async (request, reply) => {
      try {
        const { cookie, redirect } = await app.oidc.begin(
          request,
          request.params.provider,
          request.query.next,
        );
        return reply
          .setCookie(cookieName, cookie, { ...cookieOptions, maxAge: app.config.auth.oidcLoginTtlS })
          .header('cache-control', 'no-store')
          .redirect(redirect, 302);
      } catch (error) {
        if (error instanceof OidcSignInError) return errorPage(reply, error);
        throw error;
      }
    },
  );

  app.get(
    '/auth/oidc/:provider/callback',
    { schema: { params: ProviderParams, response: pageResponses } },
    async (request, reply) => {
      const query = new URL(request.url, 'http://cove.invalid').searchParams;
      try {
        const done = await app.oidc.complete(
          request,
          request.params.provider,
          request.cookies[cookieName],
          query,
        );
        app.setSessionCookie(
          reply,
          done.token,
          done.stage === 'mfa' ? app.config.auth.mfaPendingTtlS : app.config.auth.sessionTtlS,
        );
        return reply
          .clearCookie(cookieName, cookieOptions)
          .header('cache-control', 'no-store')
          .redirect(done.next, 302);
      } catch (error) {
        if (error instanceof OidcSignInError) return errorPage(reply, error);
        request.log.error({ err: error }, 'OIDC callback failed');
        // The database's own words (503: down or full), which say to try again.
        if (error instanceof StoreError && error.kind !== 'conflict')
          return errorPage(
            reply,
            new OidcSignInError(`store_${error.kind}`, error.statusCode, 'Signing in failed', error.message),
          );
        return errorPage(
          reply,
          new OidcSignInError(
            'internal',
            500,
            'Signing in failed',
            'Something went wrong in Cove while signing you in. Go back to the sign-in page and try again.',
          ),
        );
      }
    },
  );
}
