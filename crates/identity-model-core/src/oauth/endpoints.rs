//! The endpoints an OAuth client talks to, from a discovery document or configured.

use crate::discovery::DiscoveryDocument;

/// The endpoints a client talks to. Any left `None` is looked up in discovery (when the
/// client has an authority).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The issuer (the `aud` of client assertions, the RFC 9207 `iss` check).
    pub issuer: Option<String>,
    /// `token_endpoint`.
    pub token: Option<String>,
    /// `authorization_endpoint`.
    pub authorization: Option<String>,
    /// `device_authorization_endpoint`.
    pub device_authorization: Option<String>,
    /// `pushed_authorization_request_endpoint`.
    pub pushed_authorization_request: Option<String>,
    /// `introspection_endpoint`.
    pub introspection: Option<String>,
    /// `revocation_endpoint`.
    pub revocation: Option<String>,
    /// `userinfo_endpoint`.
    pub userinfo: Option<String>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207): the callback must carry `iss`.
    pub iss_parameter_supported: bool,
}

impl Endpoints {
    /// The endpoints of a discovery document; with `mtls`, the `mtls_endpoint_aliases`
    /// (RFC 8705 section 5) replace the plain ones they alias.
    pub fn from_discovery(document: &DiscoveryDocument, mtls: bool) -> Endpoints {
        let pick = |name: &str| {
            let alias = if mtls { document.mtls_alias(name) } else { None };
            alias.or_else(|| document.text(name)).map(str::to_owned)
        };
        Endpoints {
            issuer: document.issuer().map(str::to_owned),
            token: pick("token_endpoint"),
            authorization: document.authorization_endpoint().map(str::to_owned),
            device_authorization: pick("device_authorization_endpoint"),
            pushed_authorization_request: pick("pushed_authorization_request_endpoint"),
            introspection: pick("introspection_endpoint"),
            revocation: pick("revocation_endpoint"),
            userinfo: pick("userinfo_endpoint"),
            iss_parameter_supported: document
                .members()
                .get("authorization_response_iss_parameter_supported")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// These endpoints, with `fallback`'s where these have none.
    pub fn or(&self, fallback: Endpoints) -> Endpoints {
        let pick = |mine: &Option<String>, theirs: Option<String>| mine.clone().or(theirs);
        Endpoints {
            issuer: pick(&self.issuer, fallback.issuer),
            token: pick(&self.token, fallback.token),
            authorization: pick(&self.authorization, fallback.authorization),
            device_authorization: pick(&self.device_authorization, fallback.device_authorization),
            pushed_authorization_request: pick(
                &self.pushed_authorization_request,
                fallback.pushed_authorization_request,
            ),
            introspection: pick(&self.introspection, fallback.introspection),
            revocation: pick(&self.revocation, fallback.revocation),
            userinfo: pick(&self.userinfo, fallback.userinfo),
            iss_parameter_supported: self.iss_parameter_supported || fallback.iss_parameter_supported,
        }
    }
}
