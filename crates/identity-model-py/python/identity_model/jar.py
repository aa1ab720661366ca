"""py-identity-model's JWT-Secured Authorization Requests (RFC 9101): a signed request
object (``typ: oauth-authz-req+jwt``) and the authorization URL that carries it. Signed by
the Rust core with the caller's PEM private key (PKCS #8, PKCS #1 or SEC 1; not encrypted);
asymmetric algorithms only."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode, urlparse

from . import _native
from .exceptions import ConfigurationException

SUPPORTED_SIGNING_ALGORITHMS = frozenset({"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_RESERVED = frozenset(
    {"iss", "aud", "iat", "nbf", "exp", "jti", "client_id", "response_type", "redirect_uri", "scope", "state", "nonce",
     "code_challenge", "code_challenge_method"}
)


def create_request_object(
    private_key: str | bytes,
    algorithm: str,
    client_id: str,
    audience: str,
    redirect_uri: str,
    scope: str = "openid",
    response_type: str = "code",
    state: str | None = None,
    nonce: str | None = None,
    code_challenge: str | None = None,
    code_challenge_method: str | None = None,
    lifetime: int = 300,
    kid: str | None = None,
    **extra_claims: Any,
) -> str:
    """A request object: ``iss`` and ``client_id`` the client, ``aud`` the authorization
    server, ``iat``/``nbf`` now, ``exp`` after ``lifetime`` seconds, a random ``jti``, the
    authorization parameters and ``extra_claims`` (which may not replace any of those).
    ``ValueError`` for an empty required value, an unsupported algorithm, a lifetime that is
    not positive, or a PKCE challenge without its method (or the reverse)."""
    for name, value in (
        ("private_key", private_key),
        ("client_id", client_id),
        ("audience", audience),
        ("redirect_uri", redirect_uri),
        ("response_type", response_type),
    ):
        if not value:
            raise ValueError(f"{name} must not be empty")
    if algorithm not in SUPPORTED_SIGNING_ALGORITHMS:
        raise ValueError(f"Unsupported JAR algorithm: {algorithm}. Supported: {sorted(SUPPORTED_SIGNING_ALGORITHMS)}")
    if lifetime <= 0:
        raise ValueError(f"lifetime must be positive, got {lifetime}")
    if (code_challenge is None) != (code_challenge_method is None):
        raise ValueError("code_challenge and code_challenge_method must both be provided or both omitted")
    for name, value in (("code_challenge", code_challenge), ("code_challenge_method", code_challenge_method), ("kid", kid)):
        if value is not None and not value:
            raise ValueError(f"{name} must be non-empty when provided")
    collisions = set(extra_claims) & _RESERVED
    if collisions:
        raise ValueError(f"extra_claims cannot override reserved claims: {sorted(collisions)}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
        "client_id": client_id,
        "response_type": response_type,
        "redirect_uri": redirect_uri,
        "scope": scope,
    }
    optional = (("state", state), ("nonce", nonce), ("code_challenge", code_challenge), ("code_challenge_method", code_challenge_method))
    claims.update({name: value for name, value in optional if value is not None})
    claims.update(extra_claims)
    from .token_client import _der  # the PEM reader of PrivateKeyJwt

    try:
        der = _der(private_key)
    except ConfigurationException as e:
        raise ValueError(str(e)) from e
    return _native.sign_jwt(der, algorithm, json.dumps(claims), typ="oauth-authz-req+jwt", kid=kid)


def build_jar_authorization_url(
    authorization_endpoint: str,
    client_id: str,
    request_object: str,
    scope: str | None = None,
    response_type: str | None = None,
) -> str:
    """The authorization URL with ``client_id`` and ``request`` (RFC 9101 section 5.2), and
    ``scope`` / ``response_type`` repeated outside the object when given."""
    params = {"client_id": client_id, "request": request_object}
    if scope is not None:
        params["scope"] = scope
    if response_type is not None:
        params["response_type"] = response_type
    separator = "&" if urlparse(authorization_endpoint).query else "?"
    return f"{authorization_endpoint}{separator}{urlencode(params)}"


__all__ = ["build_jar_authorization_url", "create_request_object"]
