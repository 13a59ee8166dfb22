/**
 * `active: false` from an identity provider on the real engine: a provisioned user's shell in a
 * real container (cove/sandbox:latest) closes with 4401 as soon as Entra's deactivation PATCH is
 * answered, and the user's session is gone. The container is removed in afterAll.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../../../server/auth/session-service.js';
import { CloseCode } from '../../../../server/protocol/terminal-wire.js';
import { DockerTerminalRig, rigOrigin } from '../terminals/docker-terminal-rig.js';
import { entra } from './idp-requests.js';

describe('SCIM deactivation on Docker', () => {
  let rig: DockerTerminalRig;
  const secret = `cove_scim_${randomBytes(32).toString('base64url')}`;

  beforeAll(async () => {
    rig = await DockerTerminalRig.start('cove-scim-docker', {
      graceS: 2,
      hello: { cols: 80, rows: 24 },
      config: {
        auth: {
          oidc: [
            {
              id: 'entra',
              name: 'Entra ID',
              issuer: 'http://127.0.0.1:9/entra',
              clientId: 'cove',
              clientSecret: 'not-a-real-secret-0123456789',
            },
          ],
        },
      },
    });
    await rig.store.scimTokens.create({ name: 'Entra', tokenHash: hashToken(secret), providerId: 'entra' });
  });

  afterAll(async () => {
    await rig?.close();
  });

  it('closes the provisioned user’s real shell with 4401 when Entra sets active to false', async () => {
    const scim = (method: 'POST' | 'PATCH', url: string, body: unknown) =>
      rig.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/scim+json' },
        payload: JSON.stringify(body),
      });
    const userName = `leaver-${process.pid}-${Date.now() % 100000}`;
    const created = await scim('POST', '/scim/v2/Users', { ...entra.createUser, userName });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json<{ id: string }>().id;
    rig.userIds.push(id);
    const { token } = await rig.app.sessions.create(id, 'full');
    rig.cookies.leaver = `cove_session=${token}`;

    const { client } = await rig.shell('leaver');
    client.send('echo still-$((40+2))\r');
    await client.waitForScreen(/still-42/);

    const patch = await scim('PATCH', `/scim/v2/Users/${id}`, entra.disableUser);
    expect(patch.statusCode, patch.body).toBe(200);
    expect((await client.closed).code).toBe(CloseCode.notAuthenticated);
    expect(rig.app.terminals.list(id)).toEqual([]);
    const me = await rig.app.inject({
      method: 'GET',
      url: '/api/me',
      headers: { origin: rigOrigin, cookie: rig.cookies.leaver },
    });
    expect(me.statusCode).toBe(401);
  });
});
