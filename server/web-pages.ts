/**
 * Serves the built pages (Vite output, default `dist/web`): hashed assets under `/assets/` with a
 * long cache, and the HTML pages with `no-store`. Pages that need a session redirect to
 * `/login?next=<path>` before any HTML is sent, so a signed-out visitor never sees a half-page;
 * `/admin` answers a plain 403 page to signed-in users who are not administrators.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import fp from 'fastify-plugin';
import fastifyStatic from '@fastify/static';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { accessGate } from './auth/access-gate.js';

export interface WebPagesOptions {
  /** The Vite output directory; default `dist/web` under the working directory. */
  readonly root?: string;
}

type PageFile = 'login.html' | 'index.html' | 'shell.html' | 'admin.html' | 'device.html';

const htmlReply = Type.String({ description: 'An HTML page' });
const pageResponses = { 200: htmlReply, 302: Type.Null(), 403: htmlReply, 404: htmlReply, 503: htmlReply };

export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A small self-contained page for refusals; no scripts, so the strict CSP holds. */
export function messagePage(title: string, message: string, link?: { href: string; label: string }): string {
  const action = link ? `<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.label)}</a></p>` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,"><title>${escapeHtml(title)} · Cove</title><style>body{font-family:system-ui,sans-serif;background:#f2f3f3;color:#16191f;margin:0;padding:3rem 1rem}main{max-width:32rem;margin:0 auto;background:#fff;border-radius:8px;padding:1.5rem;box-shadow:0 1px 3px rgba(0,0,0,.2)}h1{font-size:1.3rem;margin-top:0}a{color:#0972d3}code{background:#f2f3f3;padding:.1rem .3rem;border-radius:4px}</style></head><body><main><h1>${escapeHtml(title)}</h1><p>${message}</p>${action}</main></body></html>`;
}

export default fp(
  async (app, opts: WebPagesOptions) => {
    const root = resolve(opts.root ?? 'dist/web');
    const assets = join(root, 'assets');
    const notBuilt = messagePage(
      'Cove’s pages are not built',
      'The server is running, but the web pages have not been built yet. Run <code>npm run build</code>, then restart Cove.',
    );

    if (existsSync(assets)) {
      await app.register(fastifyStatic, {
        root: assets,
        prefix: '/assets/',
        decorateReply: false,
        index: false,
        // File names carry a content hash, so a cached copy is never stale.
        immutable: true,
        maxAge: '365d',
      });
    } else {
      app.log.warn({ root }, 'web pages not built: run `npm run build`');
      app.get('/assets/*', async (_request, reply) =>
        reply.status(503).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(notBuilt),
      );
    }

    const sendPage = async (reply: FastifyReply, file: PageFile) => {
      reply.header('cache-control', 'no-store');
      let html: string;
      try {
        html = await readFile(join(root, file), 'utf8');
      } catch {
        return reply.status(503).type('text/html; charset=utf-8').send(notBuilt);
      }
      return reply.status(200).type('text/html; charset=utf-8').send(html);
    };

    /** Signed-out, MFA-pending and not-yet-finished sign-ins all go to the login page first. */
    const needsSignIn = (request: FastifyRequest): boolean => {
      const principal = request.principal;
      if (!principal) return true;
      return accessGate(principal.user, app.config.auth.requireMfa, principal.session) !== undefined;
    };
    const toLogin = (request: FastifyRequest, reply: FastifyReply) =>
      reply
        .header('cache-control', 'no-store')
        .redirect(`/login?next=${encodeURIComponent(request.url)}`, 302);

    const routes = app.withTypeProvider<TypeBoxTypeProvider>();

    routes.get(
      '/login',
      {
        schema: {
          querystring: Type.Object({
            // Room for an "Open in Cove" link with its repository and command (README).
            next: Type.Optional(Type.String({ maxLength: 16_384 })),
            invite: Type.Optional(Type.String({ maxLength: 512 })),
          }),
          response: pageResponses,
        },
      },
      async (_request, reply) => sendPage(reply, 'login.html'),
    );

    routes.get('/', { schema: { response: pageResponses } }, async (request, reply) =>
      needsSignIn(request) ? toLogin(request, reply) : sendPage(reply, 'index.html'),
    );

    // The AWS CLI's verification address: "Authorize request" after a full sign-in (MFA too).
    routes.get(
      '/device',
      {
        schema: {
          querystring: Type.Object({ user_code: Type.Optional(Type.String({ maxLength: 32 })) }),
          response: pageResponses,
        },
      },
      async (request, reply) =>
        needsSignIn(request) ? toLogin(request, reply) : sendPage(reply, 'device.html'),
    );

    routes.get(
      '/shell/:region',
      {
        schema: {
          params: Type.Object({ region: Type.String({ maxLength: 64 }) }),
          querystring: Type.Object({
            account: Type.Optional(Type.String({ maxLength: 64 })),
            permissionSet: Type.Optional(Type.String({ maxLength: 512 })),
            // An "Open in Cove" link's repository and command: the page checks them and says why it
            // refuses one, so the limits here only keep absurd sizes out (Node caps the URL at 16 KB).
            git: Type.Optional(Type.String({ maxLength: 16_384 })),
            cmd: Type.Optional(Type.String({ maxLength: 16_384 })),
          }),
          response: pageResponses,
        },
      },
      async (request, reply) => {
        if (needsSignIn(request)) return toLogin(request, reply);
        if (!app.config.regions.some((r) => r.id === request.params.region)) {
          return reply
            .status(404)
            .header('cache-control', 'no-store')
            .type('text/html; charset=utf-8')
            .send(
              messagePage(
                'No such region',
                'Cove does not offer shells in that region. Pick one on the portal.',
                {
                  href: '/',
                  label: 'Back to the portal',
                },
              ),
            );
        }
        // A URL (a link from a README, an old bookmark) never picks an identity the user does not
        // have: the same 403 for an unknown and an unassigned one, before the page loads.
        const { account, permissionSet } = request.query;
        if (account !== undefined || permissionSet !== undefined) {
          const userId = request.principal?.user.id ?? '';
          const allowed =
            account && permissionSet && (await app.directory.accessFor(userId, account, permissionSet));
          if (!allowed) {
            return reply
              .status(403)
              .header('cache-control', 'no-store')
              .type('text/html; charset=utf-8')
              .send(
                messagePage(
                  'No access to that account',
                  'You do not have that account and permission set, so no shell was opened. Pick one you have on the portal.',
                  { href: '/', label: 'Back to the portal' },
                ),
              );
          }
        }
        return sendPage(reply, 'shell.html');
      },
    );

    routes.get('/admin', { schema: { response: pageResponses } }, async (request, reply) => {
      if (needsSignIn(request)) return toLogin(request, reply);
      if (!request.principal?.isAdmin) {
        return reply
          .status(403)
          .header('cache-control', 'no-store')
          .type('text/html; charset=utf-8')
          .send(
            messagePage(
              'Administrators only',
              'Only members of the admins group can open the administration pages.',
              {
                href: '/',
                label: 'Back to the portal',
              },
            ),
          );
      }
      return sendPage(reply, 'admin.html');
    });
  },
  { name: 'web-pages', dependencies: ['auth', 'directory'] },
);
