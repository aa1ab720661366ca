"""py-identity-model's FAPI 2.0 Security Profile checks: an authorization request, a
client's configuration and a provider's discovery document, each answered with the list of
what is not compliant. Same checks and messages as py-identity-model 4.1.1."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

FAPI2_ALLOWED_SIGNING_ALGORITHMS = frozenset({"PS256", "ES256"})
FAPI2_ALLOWED_AUTH_METHODS = frozenset({"private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"})
FAPI2_REQUIRED_PKCE_METHOD = "S256"
FAPI2_REQUIRED_RESPONSE_TYPE = "code"


@dataclass
class FAPIValidationResult:
    """What is not compliant; ``is_compliant`` when nothing."""

    violations: list[str] = field(default_factory=list)
    is_compliant: bool = field(init=False)

    def __post_init__(self) -> None:
        self.is_compliant = not self.violations


def validate_fapi_authorization_request(
    *,
    response_type: str,
    code_challenge: str | None,
    code_challenge_method: str | None,
    redirect_uri: str,
    use_par: bool,
    algorithm: str | None = None,
) -> FAPIValidationResult:
    """``code`` response type, PKCE S256, PAR, an https redirect URI with a host, and (when
    given) a PS256 or ES256 signing algorithm."""
    violations: list[str] = []
    if response_type != FAPI2_REQUIRED_RESPONSE_TYPE:
        violations.append(f"response_type must be 'code', got '{response_type}'")
    if not code_challenge or not code_challenge.strip():
        violations.append("PKCE code_challenge is required")
    if code_challenge_method is None:
        violations.append("PKCE code_challenge_method is required")
    elif code_challenge_method != FAPI2_REQUIRED_PKCE_METHOD:
        violations.append(f"PKCE method must be 'S256', got '{code_challenge_method}'")
    if not use_par:
        violations.append("PAR (Pushed Authorization Requests) is required")
    if not isinstance(redirect_uri, str):
        violations.append("redirect_uri must be a string")
    else:
        parsed = urlparse(redirect_uri.strip())
        if parsed.scheme.lower() != "https":
            violations.append(f"redirect_uri must use HTTPS, got '{redirect_uri}'")
        elif not parsed.hostname:
            violations.append(f"redirect_uri must have a host, got '{redirect_uri}'")
    if algorithm is not None and algorithm not in FAPI2_ALLOWED_SIGNING_ALGORITHMS:
        violations.append(f"Algorithm '{algorithm}' not allowed; use {', '.join(sorted(FAPI2_ALLOWED_SIGNING_ALGORITHMS))}")
    return FAPIValidationResult(violations=violations)


def validate_fapi_client_config(
    *, auth_method: str | None, use_dpop: bool = False, use_mtls: bool = False
) -> FAPIValidationResult:
    """A confidential client (``private_key_jwt`` or mTLS) with sender-constrained tokens
    (DPoP or mTLS)."""
    violations: list[str] = []
    if auth_method is None:
        violations.append("Client authentication is required (confidential client)")
    elif auth_method not in FAPI2_ALLOWED_AUTH_METHODS:
        violations.append(
            f"Auth method '{auth_method}' is not FAPI 2.0 compliant; use {', '.join(sorted(FAPI2_ALLOWED_AUTH_METHODS))}"
        )
    if not use_dpop and not use_mtls:
        violations.append("Sender-constrained tokens required (enable DPoP or mTLS)")
    return FAPIValidationResult(violations=violations)


def validate_fapi_discovery(discovery: Any) -> FAPIValidationResult:
    """What the provider advertises: the code grant and response type, a FAPI client
    authentication, a PS256/ES256 ID token algorithm, PKCE S256 (absent members read as their
    RFC 8414 / OpenID Discovery defaults)."""
    if not discovery.is_successful:
        return FAPIValidationResult(violations=["Discovery document fetch failed"])
    violations: list[str] = []
    grants = discovery.grant_types_supported
    if grants is not None and "authorization_code" not in grants:
        violations.append("Server does not support authorization_code grant type")
    response_types = discovery.response_types_supported
    if response_types is not None and "code" not in response_types:
        violations.append("Server does not support 'code' response type (authorization code flow required)")
    auth_methods = discovery.token_endpoint_auth_methods_supported
    if auth_methods is None:
        violations.append(
            "token_endpoint_auth_methods_supported not advertised; "
            "RFC 8414 default is client_secret_basic, which FAPI 2.0 prohibits"
        )
    elif not set(auth_methods) & FAPI2_ALLOWED_AUTH_METHODS:
        violations.append("Server does not support FAPI-compliant client auth (private_key_jwt or tls_client_auth)")
    algs = discovery.id_token_signing_alg_values_supported
    if algs is None:
        violations.append(
            "id_token_signing_alg_values_supported not advertised; "
            "OIDC Discovery default is RS256, which FAPI 2.0 prohibits"
        )
    elif not set(algs) & FAPI2_ALLOWED_SIGNING_ALGORITHMS:
        violations.append(
            f"Server does not support FAPI-compliant signing algorithms ({', '.join(sorted(FAPI2_ALLOWED_SIGNING_ALGORITHMS))})"
        )
    pkce = discovery.code_challenge_methods_supported
    if pkce is not None and "S256" not in pkce:
        violations.append(
            "Server does not support S256 PKCE (FAPI 2.0 requires code_challenge_methods_supported to include S256)"
        )
    return FAPIValidationResult(violations=violations)


__all__ = [
    "FAPI2_ALLOWED_AUTH_METHODS",
    "FAPI2_ALLOWED_SIGNING_ALGORITHMS",
    "FAPI2_REQUIRED_PKCE_METHOD",
    "FAPI2_REQUIRED_RESPONSE_TYPE",
    "FAPIValidationResult",
    "validate_fapi_authorization_request",
    "validate_fapi_client_config",
    "validate_fapi_discovery",
]
