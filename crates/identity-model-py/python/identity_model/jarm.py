"""py-identity-model's JWT-Secured Authorization Response Mode (JARM, signed responses): the
authorization response as a JWT in one ``response`` parameter (``query.jwt``,
``fragment.jwt``, or a ``form_post.jwt`` body with ``is_jwt=True``). The signature, ``iss``
(the mix-up defence), ``aud`` (the client) and ``exp`` are checked by the Rust core with the
provider's keys, an algorithm the provider advertises (never ``none`` or ``HS*``); the claims
become the ``AuthorizeCallbackResponse`` a plain callback gives. Encrypted responses (JWE) are
refused."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

from . import _native
from .authorize import _CALLBACK_FIELDS, AuthorizeCallbackResponse
from .discovery import DiscoveryDocumentRequest, get_discovery_document, get_discovery_document_async
from .exceptions import ConfigurationException, JarmValidationException, PyIdentityModelException, TokenValidationException
from .jwks import JwksRequest, JwksResponse, get_jwks, get_jwks_async
from .validation import DiscoveryPolicy

JARM_RESPONSE_PARAM = "response"
_REQUIRED = ("iss", "aud", "exp")


def _response_param(params: str) -> str | None:
    values = parse_qs(params, keep_blank_values=True).get(JARM_RESPONSE_PARAM)
    if not values:
        return None
    if len(values) > 1:
        raise JarmValidationException(
            "callback carries multiple 'response' parameters; refusing to resolve JARM parameter pollution by position"
        )
    return values[0]


def is_jarm_response(redirect_uri: str) -> bool:
    """Whether the callback URL carries a ``response`` parameter (fragment, then query)."""
    if not isinstance(redirect_uri, str) or not redirect_uri.strip():
        return False
    parsed = urlparse(redirect_uri)
    for params in (parsed.fragment, parsed.query):
        if params:
            try:
                if _response_param(params):
                    return True
            except JarmValidationException:
                return True
    return False


def extract_jarm_response_jwt(redirect_uri: str) -> str:
    """The ``response`` JWT of the callback URL (fragment first, then query); a second
    ``response`` parameter is refused."""
    if not isinstance(redirect_uri, str) or not redirect_uri.strip():
        raise JarmValidationException("redirect_uri must be a non-empty string")
    parsed = urlparse(redirect_uri)
    for params in (parsed.fragment, parsed.query):
        if params:
            found = _response_param(params)
            if found:
                return found
    raise JarmValidationException("redirect_uri contains no JARM 'response' parameter")


def _header(response_jwt: str) -> tuple[str | None, str | None]:
    parts = response_jwt.split(".") if isinstance(response_jwt, str) else []
    try:
        if len(parts) != 3:
            raise ValueError("not a JWS")
        encoded = parts[0] + "=" * (-len(parts[0]) % 4)
        header = json.loads(base64.urlsafe_b64decode(encoded.encode("ascii")))
        if not isinstance(header, dict):
            raise ValueError("not an object")
    except (ValueError, binascii.Error, UnicodeError):
        raise JarmValidationException("JARM 'response' value is not a well-formed JWT") from None
    kid, alg = header.get("kid"), header.get("alg")
    return (kid if isinstance(kid, str) else None, alg if isinstance(alg, str) else None)


def _algorithm(header_alg: str | None, allowed: list[str] | None) -> str:
    if not header_alg:
        raise JarmValidationException("JARM response JWT header has no 'alg' value")
    alg = header_alg.strip()
    if alg.lower() == "none":
        raise JarmValidationException("JARM response JWT uses 'alg=none'; an unsigned response is not permitted")
    if alg.upper().startswith("HS"):
        raise JarmValidationException(
            f"JARM response JWT uses symmetric algorithm '{alg}'; only asymmetric signatures are permitted"
        )
    if not allowed:
        raise JarmValidationException(
            "No allowed JARM signing algorithms configured (authorization_signing_alg_values_supported is required)"
        )
    if alg not in allowed:
        raise JarmValidationException(f"JARM response JWT algorithm '{alg}' is not in the allowed set {sorted(allowed)}")
    return alg


def _checked_jwks(jwks: JwksResponse) -> JwksResponse:
    if not jwks.is_successful:
        raise TokenValidationException(jwks.error or "JWKS request failed")
    return jwks


def _from_discovery(disco: Any, issuer: str | None, algorithms: list[str] | None) -> tuple[str, list[str] | None, str]:
    if not disco.is_successful:
        raise TokenValidationException(disco.error or "Discovery document request failed")
    resolved = issuer or disco.issuer
    if not resolved:
        raise ConfigurationException("Discovery document does not advertise an issuer; cannot validate JARM")
    if not disco.jwks_uri:
        raise ConfigurationException("Discovery document does not advertise a jwks_uri")
    return resolved, algorithms or disco.authorization_signing_alg_values_supported, disco.jwks_uri


def _start(
    response: str, is_jwt: bool, disco_doc_address: str | None, issuer: Any, jwks: Any, algorithms: Any, require_https: bool
) -> tuple[str, DiscoveryPolicy | None]:
    """The response JWT, and the policy of the discovery to make (``None``: offline, with
    ``issuer``, ``jwks`` and ``algorithms`` all given)."""
    response_jwt = response if is_jwt else extract_jarm_response_jwt(response)
    if issuer is not None and jwks is not None and algorithms is not None:
        return response_jwt, None
    if disco_doc_address is None:
        raise ConfigurationException(
            "disco_doc_address is required for JARM processing unless issuer, jwks, and algorithms are all supplied (offline mode)"
        )
    return response_jwt, DiscoveryPolicy(require_https=require_https)


def _judge(response_jwt: str, issuer: str, allowed: list[str] | None, jwks: JwksResponse, client_id: str, leeway: float) -> AuthorizeCallbackResponse:
    kid, header_alg = _header(response_jwt)
    alg = _algorithm(header_alg, allowed)
    keys = jwks.keys or []
    if not keys:
        raise TokenValidationException("No keys available in JWKS response")
    keys_json = json.dumps({"keys": [key.as_dict() for key in keys]})
    try:
        validator = _native.KeyValidator(keys_json, issuer, client_id, algorithms=[alg], leeway=leeway)
        claims = validator.validate(response_jwt)
    except PyIdentityModelException as e:
        if e.kind == "missing_claim" and e.claim in _REQUIRED:
            raise JarmValidationException(f"JARM response JWT is missing mandatory claim(s): {e.claim}") from None
        raise
    values = {name: str(claims[name]) for name in _CALLBACK_FIELDS if claims.get(name) is not None}
    found: dict[str, object] = {_CALLBACK_FIELDS[name]: claims[name] for name in _CALLBACK_FIELDS if name in claims}
    if not found:
        raise JarmValidationException("JARM response JWT contains no recognized authorization-response claims")
    if "expires_in" in found:
        try:
            found["expires_in"] = int(found["expires_in"])  # type: ignore[arg-type]
        except (TypeError, ValueError):
            del found["expires_in"]
    return AuthorizeCallbackResponse("error" not in values, response_jwt, values, **found)


def process_jarm_response(
    response: str,
    *,
    client_id: str,
    disco_doc_address: str | None = None,
    issuer: str | None = None,
    jwks: JwksResponse | None = None,
    algorithms: list[str] | None = None,
    require_https: bool = True,
    leeway: float = 0,
    http_client: Any = None,
    is_jwt: bool = False,
) -> AuthorizeCallbackResponse:
    """The verified callback of a JARM response: offline with ``issuer``, ``jwks`` and
    ``algorithms`` all given, else from ``disco_doc_address`` (its issuer, its
    ``authorization_signing_alg_values_supported`` unless ``algorithms``, its keys).
    ``JarmValidationException`` for JARM's own rules, the token exceptions for signature,
    issuer, audience and expiry."""
    response_jwt, policy = _start(response, is_jwt, disco_doc_address, issuer, jwks, algorithms, require_https)
    if policy is None:
        return _judge(response_jwt, issuer, algorithms, _checked_jwks(jwks), client_id, leeway)  # type: ignore[arg-type]
    disco = get_discovery_document(DiscoveryDocumentRequest(address=disco_doc_address, policy=policy))  # type: ignore[arg-type]
    resolved, allowed, jwks_uri = _from_discovery(disco, issuer, algorithms)
    keys = _checked_jwks(get_jwks(JwksRequest(address=jwks_uri, policy=policy)))
    return _judge(response_jwt, resolved, allowed, keys, client_id, leeway)


async def process_jarm_response_async(
    response: str,
    *,
    client_id: str,
    disco_doc_address: str | None = None,
    issuer: str | None = None,
    jwks: JwksResponse | None = None,
    algorithms: list[str] | None = None,
    require_https: bool = True,
    leeway: float = 0,
    http_client: Any = None,
    is_jwt: bool = False,
) -> AuthorizeCallbackResponse:
    """``process_jarm_response`` as a coroutine (``identity_model.aio``)."""
    response_jwt, policy = _start(response, is_jwt, disco_doc_address, issuer, jwks, algorithms, require_https)
    if policy is None:
        return _judge(response_jwt, issuer, algorithms, _checked_jwks(jwks), client_id, leeway)  # type: ignore[arg-type]
    disco = await get_discovery_document_async(DiscoveryDocumentRequest(address=disco_doc_address, policy=policy))  # type: ignore[arg-type]
    resolved, allowed, jwks_uri = _from_discovery(disco, issuer, algorithms)
    keys = _checked_jwks(await get_jwks_async(JwksRequest(address=jwks_uri, policy=policy)))
    return _judge(response_jwt, resolved, allowed, keys, client_id, leeway)


__all__ = ["extract_jarm_response_jwt", "is_jarm_response", "process_jarm_response"]
