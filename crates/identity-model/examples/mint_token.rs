//! Mints a signed access token and prints it with the JWK Set that verifies it.
//!
//! `cargo run -p identity-model --example mint_token -- OUT_DIR` writes `OUT_DIR/jwks.json` and
//! `OUT_DIR/access-token.jwt` (ES256, issuer `https://issuer.example`, audience
//! `https://api.example`, valid until 2100). The files under `examples/` were made this way.

use identity_model::{Algorithm, SigningKey};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let key = SigningKey::generate(Algorithm::ES256)?;
    let claims = json!({
        "iss": "https://issuer.example",
        "sub": "user-1234",
        "aud": "https://api.example",
        "client_id": "example-client",
        "scope": "orders:read",
        "jti": "example-token-1",
        "iat": 1_760_000_000,
        "exp": 4_102_444_800u64,
    });
    let token = key.sign_jwt(Some("at+jwt"), &claims)?;
    let jwks = json!({ "keys": [key.verification_jwk()] });
    std::fs::write(out.join("jwks.json"), serde_json::to_string_pretty(&jwks)? + "\n")?;
    std::fs::write(out.join("access-token.jwt"), token + "\n")?;
    Ok(())
}
