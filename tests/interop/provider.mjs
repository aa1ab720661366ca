// panva's oidc-provider on 127.0.0.1:PORT with the private JWK Set in KEYS_FILE (first key signs).
// Usage: node provider.mjs PORT KEYS_FILE
// Prints "ISSUER http://127.0.0.1:PORT" once listening. Client "interop" / "interop-secret"
// may use client_credentials; tokens for resource urn:interop:api are RFC 9068 JWTs.
import fs from 'node:fs';
import Provider from 'oidc-provider';

const [port, keysFile] = process.argv.slice(2);
const jwks = JSON.parse(fs.readFileSync(keysFile, 'utf8'));
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'interop',
    client_secret: 'interop-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks,
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:interop:api',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
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
