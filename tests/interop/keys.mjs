// Writes a private JWK Set with one new RS256 key to FILE, before the keys already in it.
// Usage: node keys.mjs FILE
import crypto from 'node:crypto';
import fs from 'node:fs';

const file = process.argv[2];
const old = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).keys : [];
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = privateKey.export({ format: 'jwk' });
jwk.kid = crypto.randomUUID();
jwk.alg = 'RS256';
jwk.use = 'sig';
fs.writeFileSync(file, JSON.stringify({ keys: [jwk, ...old] }));
console.log(jwk.kid);
