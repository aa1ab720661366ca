// A DPoP proof (RFC 9449) made by panva's `jose`, independently of identity-model.
// Usage: node dpop-proof.mjs PRIVATE_JWK_FILE METHOD URL ACCESS_TOKEN
// Prints the proof: typ dpop+jwt, the public jwk, jti, htm, htu, iat, ath.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { SignJWT, importJWK } from 'jose';

const [keyFile, htm, htu, accessToken] = process.argv.slice(2);
const privateJwk = JSON.parse(fs.readFileSync(keyFile, 'utf8'));
const alg = privateJwk.alg || 'ES256';
const { d, p, q, dp, dq, qi, ...publicJwk } = privateJwk;
delete publicJwk.alg;
delete publicJwk.use;
delete publicJwk.kid;
const key = await importJWK(privateJwk, alg);
const ath = crypto.createHash('sha256').update(accessToken).digest('base64url');
const proof = await new SignJWT({ htm, htu, ath, jti: crypto.randomUUID() })
  .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: publicJwk })
  .setIssuedAt()
  .sign(key);
console.log(proof);
