// panva's oidc-provider on 127.0.0.1:PORT with the private JWK Set in KEYS_FILE (first key signs).
// Usage: node provider.mjs PORT KEYS_FILE [CLIENT_JWKS_FILE]
// Prints "ISSUER http://127.0.0.1:PORT" once listening. Clients:
// - "interop" / "interop-secret" (client_secret_basic): client_credentials;
// - "interop-jwt" (private_key_jwt, public keys in CLIENT_JWKS_FILE): client_credentials;
// - "interop-device" (public, native): the device flow with refresh tokens;
// - "interop-app" (public, native, redirect http://127.0.0.1:8400/callback): code + PKCE, PAR.
// Resources: urn:interop:api gets RFC 9068 JWTs; urn:interop:opaque gets opaque tokens (which
// oidc-provider can introspect). Device-flow tokens without a resource are for userinfo.
// devInteractions are on: any login and password sign in.
// DPoP (RFC 9449) is on with a nonce secret and nonces required: a token request with a DPoP
// proof first gets 400 use_dpop_nonce and a DPoP-Nonce header, then DPoP-bound tokens.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const [port, keysFile, clientJwksFile] = process.argv.slice(2);
const jwks = JSON.parse(fs.readFileSync(keysFile, 'utf8'));
const issuer = `http://127.0.0.1:${port}`;

const clients = [
  {
    client_id: 'interop',
    client_secret: 'interop-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'interop-device',
    application_type: 'native',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'none',
  },
  {
    client_id: 'interop-app',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: ['http://127.0.0.1:8400/callback'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
];
if (clientJwksFile) {
  clients.push({
    client_id: 'interop-jwt',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: JSON.parse(fs.readFileSync(clientJwksFile, 'utf8')),
  });
}

const provider = new Provider(issuer, {
  clients,
  jwks,
  findAccount: (ctx, sub) => ({
    accountId: sub,
    claims: () => ({ sub, name: `User ${sub}`, email: `${sub}@example.com` }),
  }),
  claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'read'],
  enabledJWA: { dPoPSigningAlgValues: ['ES256', 'ES384', 'EdDSA', 'PS256', 'RS256'] },
  features: {
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    devInteractions: { enabled: true },
    dPoP: { enabled: true, nonceSecret: Buffer.alloc(32, 7), requireNonce: () => true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => (client.clientId.startsWith('interop-') && client.clientId !== 'interop-jwt'
        ? undefined : 'urn:interop:api'),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => (resource === 'urn:interop:opaque'
        ? { scope: 'read', audience: 'urn:interop:opaque', accessTokenFormat: 'opaque' }
        : {
          scope: 'read',
          audience: 'urn:interop:api',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
    },
  },
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ISSUER ${issuer}`);
});
