"""py-identity-model's front-channel helpers: PKCE (RFC 7636), the authorization URL, the
callback's parameters and its ``state`` (constant-time) and ``iss`` (RFC 9207) checks.
Stricter than py-identity-model: PKCE ``plain`` is refused (RFC 9700 section 2.1.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import parse_qsl, urlencode, urlparse

from .exceptions import AuthorizeCallbackException
from .responses import _GuardedResponse

_RESERVED = frozenset(
    {"client_id", "redirect_uri", "scope", "response_type", "state", "nonce", "code_challenge", "code_challenge_method"}
)


def generate_code_verifier(length: int = 128) -> str:
    """A random verifier of ``length`` (43 to 128) URL-safe characters."""
    if not 43 <= length <= 128:
        raise ValueError(f"Code verifier length must be between 43 and 128, got {length}")
    return secrets.token_urlsafe(length)[:length]


def generate_code_challenge(verifier: str, method: str = "S256") -> str:
    """The S256 challenge of ``verifier`` (``plain`` is refused)."""
    if not 43 <= len(verifier) <= 128:
        raise ValueError(f"Code verifier length must be between 43 and 128, got {len(verifier)}")
    if method != "S256":
        raise ValueError(f"Unsupported code challenge method: {method} (only S256 is accepted)")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def generate_pkce_pair(method: str = "S256", verifier_length: int = 128) -> tuple[str, str]:
    """``(code_verifier, code_challenge)``."""
    verifier = generate_code_verifier(verifier_length)
    return verifier, generate_code_challenge(verifier, method)


def build_authorization_url(
    authorization_endpoint: str,
    client_id: str,
    redirect_uri: str,
    scope: str = "openid",
    response_type: str = "code",
    state: str | None = None,
    nonce: str | None = None,
    code_challenge: str | None = None,
    code_challenge_method: str | None = None,
    **extra_params: str,
) -> str:
    """The URL to send the browser to (the endpoint's own query kept)."""
    if not authorization_endpoint or not authorization_endpoint.strip():
        raise ValueError("authorization_endpoint must not be empty")
    reserved = _RESERVED.intersection(extra_params)
    if reserved:
        raise ValueError(f"extra_params may not set {sorted(reserved)}")
    if (code_challenge is None) != (code_challenge_method is None):
        raise ValueError("code_challenge and code_challenge_method go together (RFC 7636 section 4.3)")
    if code_challenge_method not in (None, "S256"):
        raise ValueError(f"Unsupported code challenge method: {code_challenge_method} (only S256 is accepted)")
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "scope": scope, "response_type": response_type}
    optional = {
        "state": state,
        "nonce": nonce,
        "code_challenge": code_challenge,
        "code_challenge_method": code_challenge_method,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    params.update(extra_params)
    separator = "&" if "?" in authorization_endpoint else "?"
    return f"{authorization_endpoint}{separator}{urlencode(params)}"


_CALLBACK_FIELDS = {
    "code": "code",
    "access_token": "access_token",
    "id_token": "identity_token",
    "token_type": "token_type",
    "expires_in": "expires_in",
    "scope": "scope",
    "refresh_token": "refresh_token",
    "state": "state",
    "session_state": "session_state",
    "iss": "issuer",
    "error": "error",
    "error_description": "error_description",
}


class AuthorizeCallbackResponse(_GuardedResponse):
    """The callback's parameters; ``state`` is readable on an error too (RFC 6749 section
    4.1.2.1). ``raw`` and ``values`` hold the whole URL: do not log them."""

    _guarded_fields = frozenset(
        {"code", "access_token", "identity_token", "token_type", "expires_in", "scope", "refresh_token", "session_state", "issuer"}
    )
    _secret_fields = frozenset({"code", "access_token", "identity_token", "refresh_token"})
    _error_fields = frozenset({"error", "error_description"})
    _repr_fields = ("state", "issuer")

    def __init__(self, is_successful: bool, raw: str, values: dict[str, str], **fields: object) -> None:
        self._set(is_successful=is_successful, raw=raw, values=values)
        self._set(**{name: fields.get(name) for name in set(_CALLBACK_FIELDS.values())})


def parse_authorize_callback_response(redirect_uri: str) -> AuthorizeCallbackResponse:
    """Reads the callback URL (fragment first, else query); an ``error`` makes it a failed
    response. A parameter given twice is refused (it cannot be told which one counts)."""
    if not isinstance(redirect_uri, str) or not redirect_uri.strip():
        raise AuthorizeCallbackException("redirect_uri must be a non-empty string")
    parsed = urlparse(redirect_uri)
    if parsed.scheme and parsed.scheme not in ("https", "http"):
        raise AuthorizeCallbackException(f"unsupported scheme {parsed.scheme!r}")
    pairs = parse_qsl(parsed.fragment or parsed.query, keep_blank_values=True)
    if not pairs:
        raise AuthorizeCallbackException("the callback carries no parameters")
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in values:
            raise AuthorizeCallbackException(f"the callback carries {name!r} twice")
        values[name] = value
    found: dict[str, object] = {}
    for name, attribute in _CALLBACK_FIELDS.items():
        if name in values:
            found[attribute] = values[name]
    if "expires_in" in found:
        try:
            found["expires_in"] = int(found["expires_in"])  # type: ignore[arg-type]
        except ValueError:
            del found["expires_in"]
    return AuthorizeCallbackResponse("error" not in values, redirect_uri, values, **found)


class AuthorizeCallbackValidationResult(Enum):
    SUCCESS = "success"
    STATE_MISMATCH = "state_mismatch"
    MISSING_STATE = "missing_state"
    ERROR_RESPONSE = "error_response"
    ISSUER_MISMATCH = "issuer_mismatch"
    MISSING_ISSUER = "missing_issuer"


@dataclass
class StateValidationResult:
    is_valid: bool
    result: AuthorizeCallbackValidationResult
    error: str | None = None
    error_description: str | None = field(default=None)


def _error_result(response: AuthorizeCallbackResponse) -> StateValidationResult:
    return StateValidationResult(
        False, AuthorizeCallbackValidationResult.ERROR_RESPONSE, response.error, response.error_description
    )


def validate_authorize_callback_state(
    response: AuthorizeCallbackResponse, expected_state: str | None
) -> StateValidationResult:
    """The callback's ``state`` against the one sent (constant-time)."""
    result = AuthorizeCallbackValidationResult
    if not response.is_successful:
        return _error_result(response)
    if not isinstance(expected_state, str) or not expected_state:
        return StateValidationResult(False, result.MISSING_STATE, "missing_state", "Expected state is missing or empty")
    if not response.state:
        return StateValidationResult(False, result.MISSING_STATE, "missing_state", "State parameter not present in callback")
    if not hmac.compare_digest(response.state.encode(), expected_state.encode()):
        return StateValidationResult(False, result.STATE_MISMATCH, "state_mismatch", "State parameter does not match")
    return StateValidationResult(True, result.SUCCESS)


def validate_authorize_callback_issuer(
    response: AuthorizeCallbackResponse,
    expected_issuer: str | None,
    *,
    iss_parameter_supported: bool = False,
    require: bool = False,
) -> StateValidationResult:
    """RFC 9207: a present ``iss`` must be the expected issuer; an absent one fails when the
    server advertises the parameter or ``require`` is set."""
    result = AuthorizeCallbackValidationResult
    if not response.is_successful:
        return _error_result(response)
    if "iss" in response.values:
        if not expected_issuer or response.values["iss"] != expected_issuer:
            return StateValidationResult(False, result.ISSUER_MISMATCH, "issuer_mismatch", "iss is not the expected issuer")
        return StateValidationResult(True, result.SUCCESS)
    if iss_parameter_supported or require:
        return StateValidationResult(False, result.MISSING_ISSUER, "missing_issuer", "iss parameter not present in callback")
    return StateValidationResult(True, result.SUCCESS)


__all__ = [
    "AuthorizeCallbackResponse",
    "AuthorizeCallbackValidationResult",
    "StateValidationResult",
    "build_authorization_url",
    "generate_code_challenge",
    "generate_code_verifier",
    "generate_pkce_pair",
    "parse_authorize_callback_response",
    "validate_authorize_callback_issuer",
    "validate_authorize_callback_state",
]
