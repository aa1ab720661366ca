// Checks identity-model-testkit's provider with independent clients: panva's openid-client
// (discovery, grants, client authentication, userinfo, introspection, revocation) and jose
// (JWT verification against the published JWK Set).
//
// usage: node check-testkit.mjs ISSUER PRIVATE_JWK_FILE TOKEN_FILE
//   PRIVATE_JWK_FILE: the private key of client "pkjwt-client" (private_key_jwt)
//   TOKEN_FILE: JSON {"ES256": token, "EdDSA": token, ...} minted by the provider
// Prints one JSON object {"checks": {name: "ok" | error}} and exits 1 when any check failed.

import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import * as jose from 'jose';

const [issuerArg, keyFile, tokenFile] = process.argv.slice(2);
const issuer = new URL(issuerArg);
const insecure = { execute: [client.allowInsecureRequests] };
const checks = {};

async function check(name, fn) {
  try {
    await fn();
    checks[name] = 'ok';
  } catch (e) {
    checks[name] = `${e?.name ?? 'Error'}: ${e?.message ?? e}${e?.cause ? ` (${JSON.stringify(e.cause)})` : ''}`;
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const service = await client.discovery(issuer, 'demo-service', 'demo-secret', client.ClientSecretBasic('demo-secret'), insecure);
const metadata = service.serverMetadata();
const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
const verify = (token, audience, typ = 'at+jwt') =>
  jose.jwtVerify(token, jwks, { issuer: issuerArg, audience, typ, algorithms: ['RS256', 'ES256', 'EdDSA'] });

await check('discovery', async () => {
  assert(metadata.issuer === issuerArg, `issuer ${metadata.issuer}`);
  assert(metadata.code_challenge_methods_supported.includes('S256'), 'no S256');
});

let serviceToken;
await check('client_credentials_basic', async () => {
  const tokens = await client.clientCredentialsGrant(service, { scope: 'api:read', resource: 'https://api.example' });
  serviceToken = tokens.access_token;
  assert(tokens.token_type.toLowerCase() === 'bearer', tokens.token_type);
  const { payload, protectedHeader } = await verify(tokens.access_token, 'https://api.example');
  assert(protectedHeader.typ === 'at+jwt', protectedHeader.typ);
  assert(payload.client_id === 'demo-service' && payload.scope === 'api:read', JSON.stringify(payload));
});

await check('client_credentials_post', async () => {
  const post = await client.discovery(issuer, 'demo-service', 'demo-secret', client.ClientSecretPost('demo-secret'), insecure);
  const tokens = await client.clientCredentialsGrant(post, {});
  await verify(tokens.access_token, 'https://api.example');
});

await check('client_credentials_private_key_jwt', async () => {
  const jwk = JSON.parse(readFileSync(keyFile, 'utf8'));
  const key = await jose.importJWK(jwk, jwk.alg);
  const pk = await client.discovery(issuer, 'pkjwt-client', undefined, client.PrivateKeyJwt({ key, kid: jwk.kid }), insecure);
  const tokens = await client.clientCredentialsGrant(pk, { scope: 'api:read' });
  const { payload } = await verify(tokens.access_token, 'https://api.example');
  assert(payload.client_id === 'pkjwt-client', payload.client_id);
});

await check('minted_tokens_every_algorithm', async () => {
  const minted = JSON.parse(readFileSync(tokenFile, 'utf8'));
  for (const [alg, token] of Object.entries(minted)) {
    const { protectedHeader } = await verify(token, 'https://api.example');
    assert(protectedHeader.alg === alg, `${alg} vs ${protectedHeader.alg}`);
  }
});

await check('introspection_and_revocation', async () => {
  const tokens = await client.clientCredentialsGrant(service, { resource: 'https://opaque.example' });
  assert(tokens.access_token.split('.').length === 1, 'expected an opaque token');
  const active = await client.tokenIntrospection(service, tokens.access_token);
  assert(active.active === true && active.aud === 'https://opaque.example', JSON.stringify(active));
  await client.tokenRevocation(service, tokens.access_token);
  const inactive = await client.tokenIntrospection(service, tokens.access_token);
  assert(inactive.active === false, JSON.stringify(inactive));
});

await check('token_exchange', async () => {
  const exchanged = await client.genericGrantRequest(service, 'urn:ietf:params:oauth:grant-type:token-exchange', {
    subject_token: serviceToken,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    audience: 'https://api.example',
  });
  assert(exchanged.issued_token_type === 'urn:ietf:params:oauth:token-type:access_token', exchanged.issued_token_type);
  await verify(exchanged.access_token, 'https://api.example');
});

const app = await client.discovery(issuer, 'demo-app', undefined, client.None(), insecure);
await check('authorization_code_pkce_userinfo_refresh', async () => {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const redirect_uri = 'http://127.0.0.1:8400/callback';
  const url = client.buildAuthorizationUrl(app, {
    redirect_uri,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const response = await fetch(url, { redirect: 'manual' });
  assert(response.status === 302, `authorize answered ${response.status}`);
  const callback = new URL(response.headers.get('location'));
  const tokens = await client.authorizationCodeGrant(app, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  assert(claims.sub === 'alice', claims.sub);
  const { payload } = await jose.jwtVerify(tokens.id_token, jwks, { issuer: issuerArg, audience: 'demo-app' });
  assert(payload.nonce === nonce, 'nonce');
  const info = await client.fetchUserInfo(app, tokens.access_token, claims.sub);
  assert(info.email === 'alice@example.com', JSON.stringify(info));
  const renewed = await client.refreshTokenGrant(app, tokens.refresh_token);
  assert(renewed.refresh_token && renewed.refresh_token !== tokens.refresh_token, 'refresh token not rotated');
  await verify(renewed.access_token, 'https://api.example');
});

await check('device_flow', async () => {
  const device = await client.initiateDeviceAuthorization(app, { scope: 'openid api:read' });
  const confirm = await fetch(new URL('/device', issuer), {
    method: 'POST',
    body: new URLSearchParams({ user_code: device.user_code, confirm: 'yes' }),
  });
  assert(confirm.status === 200, `device page answered ${confirm.status}`);
  const tokens = await client.pollDeviceAuthorizationGrant(app, device);
  assert(tokens.claims().sub === 'alice', 'device flow subject');
});

const failed = Object.entries(checks).filter(([, v]) => v !== 'ok');
console.log(JSON.stringify({ checks }));
process.exit(failed.length ? 1 : 0);
