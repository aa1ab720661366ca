//! Client authentication at the token, introspection, revocation and device endpoints:
//! client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt and public clients.

use aws_lc_rs::hmac;
use base64::Engine as _;
use identity_model_core::{KeySet, UnixTime, Validation, base64url};
use serde_json::Value;

use crate::config::{AuthMethod, ClientConfig};
use crate::endpoints::OAuthError;
use crate::faults::lock;
use crate::state::Shared;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Authenticates the client of a request; `params` is the form body.
pub(crate) fn authenticate(
    shared: &Shared,
    authorization: Option<&str>,
    params: &[(String, String)],
) -> Result<ClientConfig, OAuthError> {
    let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let basic = authorization.and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")));
    let assertion = param("client_assertion");
    let secret = param("client_secret");
    let presented = [basic.is_some(), assertion.is_some(), secret.is_some()].iter().filter(|&&p| p).count();
    if presented > 1 {
        return Err(OAuthError::invalid_request("more than one client authentication method"));
    }
    if let Some(credentials) = basic {
        let (id, secret) = parse_basic(credentials).ok_or_else(|| {
            OAuthError::invalid_client("malformed Basic credentials").with_basic_challenge()
        })?;
        return check_secret(shared, &id, &secret, AuthMethod::ClientSecretBasic)
            .map_err(OAuthError::with_basic_challenge);
    }
    if let Some(assertion) = assertion {
        if param("client_assertion_type") != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_request("client_assertion_type must be jwt-bearer"));
        }
        return check_assertion(shared, assertion, param("client_id"));
    }
    let Some(id) = param("client_id") else {
        return Err(OAuthError::invalid_client("no client authentication"));
    };
    if let Some(secret) = secret {
        return check_secret(shared, id, secret, AuthMethod::ClientSecretPost);
    }
    let client = known_client(shared, id)?;
    if client.auth_methods.contains(&AuthMethod::None) {
        Ok(client)
    } else {
        Err(OAuthError::invalid_client("this client must authenticate"))
    }
}

fn known_client(shared: &Shared, id: &str) -> Result<ClientConfig, OAuthError> {
    shared.config.find_client(id).cloned().ok_or_else(|| OAuthError::invalid_client("unknown client"))
}

/// RFC 6749 section 2.3.1: id and secret are form-urlencoded before Basic encoding.
fn parse_basic(credentials: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD.decode(credentials.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

fn check_secret(
    shared: &Shared,
    id: &str,
    secret: &str,
    method: AuthMethod,
) -> Result<ClientConfig, OAuthError> {
    let client = known_client(shared, id)?;
    if !client.auth_methods.contains(&method) {
        return Err(OAuthError::invalid_client(format!(
            "{} is not allowed for this client",
            method.as_str()
        )));
    }
    match &client.secret {
        Some(expected) if same_secret(expected, secret) => Ok(client),
        _ => Err(OAuthError::invalid_client("wrong client secret")),
    }
}

fn same_secret(expected: &str, given: &str) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"identity-model-testkit secret comparison");
    let tag = hmac::sign(&key, expected.as_bytes());
    hmac::verify(&key, given.as_bytes(), tag.as_ref()).is_ok()
}

fn check_assertion(
    shared: &Shared,
    assertion: &str,
    client_id: Option<&str>,
) -> Result<ClientConfig, OAuthError> {
    let bad = |why: &str| OAuthError::invalid_client(format!("client assertion rejected: {why}"));
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a compact JWS"));
    };
    let decode_json = |part: &str| -> Option<Value> {
        serde_json::from_slice(&base64url::decode(part.as_bytes()).ok()?).ok()
    };
    let header_json = decode_json(header).ok_or_else(|| bad("malformed header"))?;
    let claims = decode_json(payload).ok_or_else(|| bad("malformed payload"))?;
    let iss = claims.get("iss").and_then(Value::as_str).ok_or_else(|| bad("no iss"))?;
    if claims.get("sub").and_then(Value::as_str) != Some(iss) {
        return Err(bad("sub must equal iss (the client_id)"));
    }
    if client_id.is_some_and(|id| id != iss) {
        return Err(bad("client_id does not match the assertion"));
    }
    let client = known_client(shared, iss)?;
    let now = shared.now();
    let alg = header_json.get("alg").and_then(Value::as_str).unwrap_or_default();
    let audiences = accepted_audiences(shared);
    if alg.starts_with("HS") {
        if !client.auth_methods.contains(&AuthMethod::ClientSecretJwt) {
            return Err(bad("client_secret_jwt is not allowed for this client"));
        }
        let secret = client.secret.as_deref().ok_or_else(|| bad("the client has no secret"))?;
        let algorithm = match alg {
            "HS256" => hmac::HMAC_SHA256,
            "HS384" => hmac::HMAC_SHA384,
            "HS512" => hmac::HMAC_SHA512,
            _ => return Err(bad("unsupported algorithm")),
        };
        let signature = base64url::decode(signature.as_bytes()).map_err(|_| bad("malformed signature"))?;
        let key = hmac::Key::new(algorithm, secret.as_bytes());
        let input = &assertion[..header.len() + 1 + payload.len()];
        hmac::verify(&key, input.as_bytes(), &signature).map_err(|_| bad("invalid signature"))?;
        check_claims(&claims, &audiences, now).map_err(|why| bad(&why))?;
    } else {
        if !client.auth_methods.contains(&AuthMethod::PrivateKeyJwt) {
            return Err(bad("private_key_jwt is not allowed for this client"));
        }
        let jwks = client.jwks.as_ref().ok_or_else(|| bad("the client has no registered keys"))?;
        let keys = KeySet::from_json(jwks.to_string().as_bytes()).map_err(|e| bad(&e.to_string()))?;
        let mut rules = Validation::new(iss).require("jti").leeway(std::time::Duration::from_secs(5));
        for audience in &audiences {
            rules = rules.audience(audience.clone());
        }
        rules.validate(assertion, &keys, UnixTime::from_secs(now)).map_err(|e| bad(e.message()))?;
        check_claims(&claims, &audiences, now).map_err(|why| bad(&why))?;
    }
    let jti = claims.get("jti").and_then(Value::as_str).unwrap_or_default();
    if !lock(&shared.grants).assertion_ids.insert(format!("{iss}\u{0}{jti}")) {
        return Err(bad("jti already used"));
    }
    Ok(client)
}

/// The audiences an assertion may name: the issuer or one of the endpoints it is sent to.
fn accepted_audiences(shared: &Shared) -> Vec<String> {
    let mut audiences = vec![shared.issuer.clone()];
    for path in ["/token", "/introspect", "/revoke", "/device_authorization"] {
        audiences.push(shared.url(path));
    }
    audiences
}

fn check_claims(claims: &Value, audiences: &[String], now: i64) -> Result<(), String> {
    let exp = claims.get("exp").and_then(Value::as_f64).ok_or("no exp")?;
    if exp + 5.0 <= now as f64 {
        return Err("expired".into());
    }
    if claims.get("jti").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err("no jti".into());
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => audiences.contains(aud),
        Some(Value::Array(list)) => {
            list.iter().filter_map(Value::as_str).any(|a| audiences.iter().any(|x| x == a))
        }
        _ => false,
    };
    if aud_ok { Ok(()) } else { Err("aud is neither the issuer nor the endpoint".into()) }
}
