/**
 * A loopback HTTP server that serves only an OpenID provider's discovery document at
 * `<issuer>/.well-known/openid-configuration`: enough for the admin console's Test button, and
 * nothing a sign-in could use. Close it with `server.close()`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function discoveryOnly(path: string): Promise<{ server: Server; issuer: string }> {
  const server = createServer((request, response) => {
    const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${path}`;
    if (request.url !== `/${path}/.well-known/openid-configuration`) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/keys`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, issuer: `http://127.0.0.1:${(server.address() as AddressInfo).port}/${path}` };
}
