/**
 * SCIM on the security rig (real app listening on loopback, real SQLite, fake sandbox driver):
 * two identity providers configured (`okta`, `entra`; never contacted, SCIM does not need them),
 * tokens made through the admin API as an administrator would, and a SCIM request helper.
 */
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { discoveryOnly } from '../../../helpers/oidc-discovery-stub.js';
import { startSecurityRig, type RigUser, type SecurityRig } from '../../../security/security-rig.js';

export const scimContentType = 'application/scim+json';

export interface ScimRig {
  readonly rig: SecurityRig;
  readonly admin: RigUser;
  /** Creates a token through the admin API; returns its value and id. */
  token(providerId: 'okta' | 'entra', name?: string): Promise<{ id: string; secret: string }>;
  scim(
    token: string | undefined,
    method: InjectOptions['method'],
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

const provider = (id: string, name: string, issuer: string) => ({
  id,
  name,
  issuer,
  clientId: 'cove',
  clientSecret: 'not-a-real-secret-0123456789',
});

export async function startScimRig(): Promise<ScimRig> {
  const discovery = await discoveryOnly('okta');
  const rig = await startSecurityRig({
    auth: {
      // The slowest backstop: a terminal SCIM ends must close from the change itself, not a re-check.
      sessionRecheckS: 60,
      oidc: [
        provider('okta', 'Okta', discovery.issuer),
        // Loopback and closed: a provider that is down (SCIM itself never talks to providers).
        provider('entra', 'Entra ID', 'http://127.0.0.1:9/entra'),
      ],
    },
  });
  const admin = await rig.user('root', { admin: true });
  let n = 0;
  return {
    rig,
    admin,
    async token(providerId, name = `${providerId} ${++n}`) {
      const response = await rig.request(admin, 'POST', '/api/admin/scim-tokens', { name, providerId });
      expect(response.statusCode, response.body).toBe(201);
      const body = response.json<{ token: { id: string }; secret: string }>();
      return { id: body.token.id, secret: body.secret };
    },
    scim(token, method, url, body, headers = {}) {
      return rig.t.app.inject({
        method,
        url,
        headers: {
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': scimContentType }),
          ...headers,
        },
        ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
    },
    async close() {
      await rig.close();
      await new Promise((resolve) => discovery.server.close(resolve));
    },
  };
}

/** Asserts an RFC 7644 §3.12 error body with this status (and scimType, when given). */
export function expectScimError(response: LightMyRequestResponse, status: number, scimType?: string): void {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/scim\+json/);
  const body = response.json<Record<string, unknown>>();
  expect(body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
  expect(body.status).toBe(String(status));
  if (scimType !== undefined) expect(body.scimType).toBe(scimType);
  expect(typeof body.detail).toBe('string');
  expect((body.detail as string).length).toBeGreaterThan(10);
}
