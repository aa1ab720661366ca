//! What the fuzz targets run, shared by `fuzz/` (libFuzzer) and the bounded smoke test in the
//! normal suite. Every input must end in `Ok` or a typed `Err`; a panic is a bug.

#![allow(dead_code)]

use std::sync::OnceLock;

use identity_model_core::{
    AlgorithmSet, Claims, DiscoveryDocument, DiscoveryPolicy, KeySet, UnixTime, Validation, jws,
};
use serde_json::Value;

const RFC_VECTORS: &str = include_str!("../vectors/jose/rfc_vectors.json");

struct Fixture {
    public: KeySet,
    secret: KeySet,
    rules: Validation,
    hmac_rules: Validation,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let vectors: Value = serde_json::from_str(RFC_VECTORS).expect("rfc vectors");
        let jwk = |name: &str| vectors[name]["jwk"].clone();
        Fixture {
            public: KeySet::from_jwks(["rfc7515_A2", "rfc7515_A3", "rfc7515_A4", "rfc8037_A4"].map(jwk)),
            secret: KeySet::from_jwks([jwk("rfc7515_A1")]),
            rules: Validation::new("joe").dangerous_any_audience(),
            hmac_rules: Validation::new("joe").dangerous_any_audience().algorithms(AlgorithmSet::symmetric()),
        }
    })
}

/// Seed tokens: the RFC examples (valid signatures over the fixture keys).
pub(crate) fn seed_tokens() -> Vec<String> {
    let vectors: Value = serde_json::from_str(RFC_VECTORS).expect("rfc vectors");
    vectors
        .as_object()
        .expect("object")
        .values()
        .filter_map(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Seed key sets: the RFC example public keys as one JWK Set, and single-key sets.
pub(crate) fn seed_key_sets() -> Vec<String> {
    let vectors: Value = serde_json::from_str(RFC_VECTORS).expect("rfc vectors");
    let keys: Vec<Value> =
        vectors.as_object().expect("object").values().filter_map(|v| v.get("jwk").cloned()).collect();
    let public: Vec<&Value> = keys.iter().filter(|k| k["kty"] != "oct").collect();
    let mut seeds = vec![serde_json::json!({ "keys": public }).to_string()];
    seeds.extend(keys.iter().map(|k| serde_json::json!({ "keys": [k] }).to_string()));
    seeds
}

/// Token parsing and validation on arbitrary bytes.
pub(crate) fn token(data: &[u8]) {
    let fixture = fixture();
    let now = UnixTime::from_secs(1_300_819_000);
    if let Ok(text) = std::str::from_utf8(data) {
        for (rules, keys) in [(&fixture.rules, &fixture.public), (&fixture.hmac_rules, &fixture.secret)] {
            if let Ok(valid) = rules.validate(text, keys, now) {
                // A valid token's accessors must work too.
                let _ = (valid.claims.other(), valid.header.members(), valid.claims.raw_json());
            }
            let _ = jws::verify(text, keys, rules.allowed_algorithms());
        }
    }
    if let Ok(claims) = Claims::from_json(data.to_vec()) {
        let _ = (claims.iss(), claims.aud(), claims.exp(), claims.other().len());
    }
}

/// JWK Set parsing on arbitrary bytes.
pub(crate) fn key_set(data: &[u8]) {
    if let Ok(set) = KeySet::from_json(data) {
        for key in set.keys() {
            let _ = (key.thumbprint(), key.algorithms().count(), key.members().len());
        }
        let _ = set.rejected().len();
    }
    if let Ok(Value::Object(jwk)) = serde_json::from_slice::<Value>(data) {
        let _ = KeySet::from_jwks([Value::Object(jwk)]).len();
    }
}

/// Discovery document parsing and policy checks on arbitrary bytes.
pub(crate) fn discovery(data: &[u8]) {
    for policy in [
        DiscoveryPolicy::default(),
        DiscoveryPolicy::default().allow_http_on_loopback().resource_server_fields(),
    ] {
        if let Ok(doc) = DiscoveryDocument::from_json(data, "https://provider.example.com", &policy) {
            let _ = (doc.jwks_uri(), doc.list("scopes_supported"), doc.mtls_alias("token_endpoint"));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = DiscoveryPolicy::default().check_url(text, "url");
        let _ = identity_model_core::discovery_url(text, identity_model_core::MetadataKind::OAuth);
        let _ = identity_model_core::media_type::check(Some(text), identity_model_core::media_type::JWK_SET);
    }
}

/// Seed discovery documents: the conformance fixtures.
pub(crate) fn seed_discovery() -> Vec<String> {
    [
        include_str!("../vectors/identity-model-spec/test-fixtures/discovery/valid.json"),
        include_str!("../vectors/identity-model-spec/test-fixtures/discovery/issuer-mismatch.json"),
        include_str!("../vectors/identity-model-spec/test-fixtures/discovery/missing-jwks-uri.json"),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Seed provider responses (token, introspection, device, PAR, userinfo, errors).
pub(crate) fn seed_responses() -> Vec<String> {
    [
        r#"{"access_token":"AT","token_type":"Bearer","expires_in":3600,"refresh_token":"RT","scope":"a b","id_token":"x.y.z"}"#,
        r#"{"access_token":"AT","issued_token_type":"urn:ietf:params:oauth:token-type:saml2","token_type":"N_A","expires_in":"60"}"#,
        r#"{"active":true,"scope":"read write","aud":["a","b"],"exp":1419356238,"client_id":"c"}"#,
        r#"{"device_code":"d","user_code":"U-1","verification_uri":"https://op/device","expires_in":600,"interval":5}"#,
        r#"{"request_uri":"urn:ietf:params:oauth:request_uri:x","expires_in":60}"#,
        r#"{"sub":"alice","name":"Alice","address":{"locality":"x"}}"#,
        r#"{"error":"invalid_grant","error_description":"used","error_uri":"https://op/e"}"#,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Provider responses and authorization callbacks: every reader, every status shape.
pub(crate) fn responses(data: &[u8]) {
    use identity_model_core::{
        AuthorizationRequest, DeviceAuthorization, EndpointResponse, Introspection, OAuthError,
        PushedAuthorization, TokenResponse, UserInfo, revocation_result,
    };
    let text = String::from_utf8_lossy(data);
    for status in [200u16, 201, 400, 401, 503] {
        let response = EndpointResponse {
            status,
            content_type: Some("application/json"),
            www_authenticate: Some(&text),
            body: data,
        };
        let _ = TokenResponse::from_response(response);
        let _ = Introspection::from_response(response);
        let _ = DeviceAuthorization::from_response(response);
        let _ = PushedAuthorization::from_response(response);
        let _ = UserInfo::from_response(response, Some("alice"));
        let _ = revocation_result(response);
        let _ = OAuthError::from_response(status, data, Some(&text));
    }
    static REQUEST: OnceLock<AuthorizationRequest> = OnceLock::new();
    let request =
        REQUEST.get_or_init(|| AuthorizationRequest::new("app", "https://app/cb").expect("random source"));
    for required in [false, true] {
        let _ = request.callback(&text, "https://op.example", required);
    }
}

/// Seeds for request targets: paths the sidecar reads the three ways.
pub(crate) fn seed_targets() -> Vec<String> {
    [
        "/admin/users?x=1",
        "/public/..;/admin",
        "/admin/..%2fpublic",
        "/admin/x://y/public",
        "https://api.example/orders/%2e%2e/admin",
        "//a//b/./c/../d;p=1/",
        "/%41%42%43/%c3%a9",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A request target and every reading of its path: never a panic, and every reading that
/// succeeds is an absolute path without dot segments.
pub(crate) fn target(data: &[u8]) {
    use identity_model_core::http::target::{
        PATH_READINGS, RequestTarget, canonical_path, normalize_percent_encoding,
    };
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = identity_model_core::normalize_htu(text);
    let _ = normalize_percent_encoding(text);
    let Ok(target) = RequestTarget::parse(text) else { return };
    for reading in PATH_READINGS {
        if let Ok(path) = canonical_path(target.path, reading) {
            assert!(path.starts_with('/'), "{reading:?} of {text:?}: {path:?}");
            assert!(
                !path.split('/').any(|segment| segment == "." || segment == ".."),
                "{reading:?} of {text:?} kept a dot segment: {path:?}"
            );
        }
    }
}
