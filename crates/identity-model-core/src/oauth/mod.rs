//! OAuth 2.0 requests and responses: token requests for every grant, client authentication,
//! authorization requests and callbacks with PKCE, PAR, the device flow, OAuth errors, the
//! endpoints a client talks to.

pub(crate) mod authorize;
pub(crate) mod client_auth;
pub(crate) mod device_flow;
pub(crate) mod endpoints;
pub(crate) mod form_request;
pub(crate) mod oauth_error;
pub(crate) mod pkce;
pub(crate) mod secret;
pub(crate) mod token_request;
pub(crate) mod token_response;
