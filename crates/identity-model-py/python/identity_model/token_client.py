"""py-identity-model's request functions on the Rust token client: client credentials,
authorization code, refresh, device flow, token exchange, PAR, introspection, revocation
and userinfo. Each takes its request object (with the endpoint's ``address``) and returns a
response object that says whether it succeeded; none raises for a provider's or the
network's failure. Only client credentials, PAR, device authorization, introspection,
revocation and userinfo are retried (a code, a rotating refresh token, a device code or a
token exchange is never sent twice).

Client authentication, as py-identity-model chooses it: ``private_key_jwt`` when given,
else the secret with HTTP Basic (``client_secret_basic``), else a public client
(``client_id`` in the body)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from . import _native
from .dpop import DPoPKey
from .exceptions import ConfigurationException, PyIdentityModelException
from .responses import BaseRequest, _GuardedResponse

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
_POLLING_ERRORS = frozenset({"authorization_pending", "slow_down", "expired_token", "access_denied"})


@dataclass
class PrivateKeyJwt:
    """``private_key_jwt`` client authentication (RFC 7523): a PEM private key (PKCS #8, or
    PKCS #1 for RSA, or SEC 1 for EC; not encrypted), its algorithm and ``kid``. The
    assertion's ``aud`` is ``audience``, else the endpoint called. The assertion lives
    60 seconds (``lifetime`` is accepted and not used)."""

    private_key: str | bytes = field(repr=False)
    algorithm: str = "PS256"
    kid: str | None = None
    audience: str | None = None
    lifetime: int = 300


@dataclass
class MtlsClientAuth:
    """RFC 8705 client authentication: the TLS handshake presents ``certificate`` (a PEM file
    of the chain) with ``private_key`` (a PEM file; PKCS #8, PKCS #1 or SEC 1), and the request
    carries ``client_id``. ``auth_method``: ``tls_client_auth`` or
    ``self_signed_tls_client_auth``. An encrypted key (``password``) is refused: decrypt it
    into a file only the service can read."""

    certificate: str
    private_key: str = field(repr=False)
    password: str | None = field(default=None, repr=False)
    auth_method: str = "tls_client_auth"


# ---------------------------------------------------------------- requests


@dataclass
class ClientCredentialsTokenRequest(BaseRequest):
    address: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    scope: str | None = None
    private_key_jwt: PrivateKeyJwt | None = None
    mtls: MtlsClientAuth | None = None


@dataclass
class AuthorizationCodeTokenRequest(BaseRequest):
    address: str
    client_id: str
    code: str = field(repr=False)
    redirect_uri: str
    code_verifier: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    scope: str | None = None
    private_key_jwt: PrivateKeyJwt | None = None
    dpop_key: DPoPKey | None = None
    mtls: MtlsClientAuth | None = None


@dataclass
class RefreshTokenRequest(BaseRequest):
    address: str
    client_id: str
    refresh_token: str = field(repr=False)
    scope: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    private_key_jwt: PrivateKeyJwt | None = None
    mtls: MtlsClientAuth | None = None


@dataclass
class TokenIntrospectionRequest(BaseRequest):
    address: str
    token: str = field(repr=False)
    client_id: str
    token_type_hint: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    private_key_jwt: PrivateKeyJwt | None = None
    mtls: MtlsClientAuth | None = None


@dataclass
class TokenRevocationRequest(BaseRequest):
    address: str
    token: str = field(repr=False)
    client_id: str
    token_type_hint: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    private_key_jwt: PrivateKeyJwt | None = None
    mtls: MtlsClientAuth | None = None


@dataclass
class PushedAuthorizationRequest(BaseRequest):
    address: str
    client_id: str
    redirect_uri: str
    scope: str = "openid"
    response_type: str = "code"
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    private_key_jwt: PrivateKeyJwt | None = None
    dpop_key: DPoPKey | None = None
    mtls: MtlsClientAuth | None = None
    response_mode: str | None = None


@dataclass
class DeviceAuthorizationRequest(BaseRequest):
    address: str
    client_id: str
    scope: str = "openid"
    client_secret: str | None = field(default=None, repr=False)
    private_key_jwt: PrivateKeyJwt | None = None
    mtls: MtlsClientAuth | None = None


@dataclass
class DeviceTokenRequest(BaseRequest):
    address: str
    client_id: str
    device_code: str = field(repr=False)
    client_secret: str | None = field(default=None, repr=False)
    private_key_jwt: PrivateKeyJwt | None = None
    mtls: MtlsClientAuth | None = None


@dataclass
class TokenExchangeRequest(BaseRequest):
    address: str
    client_id: str
    subject_token: str = field(repr=False)
    subject_token_type: str
    actor_token: str | None = field(default=None, repr=False)
    actor_token_type: str | None = None
    resource: str | None = None
    audience: str | None = None
    scope: str | None = None
    requested_token_type: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    private_key_jwt: PrivateKeyJwt | None = None
    mtls: MtlsClientAuth | None = None


@dataclass
class UserInfoRequest(BaseRequest):
    address: str
    token: str = field(repr=False)
    expected_sub: str | None = None
    dpop_key: DPoPKey | None = None
    mtls: MtlsClientAuth | None = None


# ---------------------------------------------------------------- responses


class _Response(_GuardedResponse):
    """A response; a failed one says why in ``error`` (a sentence) and, when the provider
    answered with an OAuth error (RFC 6749 section 5.2), its parts: ``error_code``,
    ``error_description``, ``error_uri`` and the HTTP ``status_code`` (``None`` on a
    successful response; ``error`` and ``error_description`` raise
    ``SuccessfulResponseAccessError`` there, as in py-identity-model)."""

    _fields: tuple = ()
    _error_fields = frozenset({"error", "error_description"})

    def __init__(self, is_successful: bool, error: str | None = None, **fields: Any) -> None:
        details = {name: fields.pop(name, None) for name in ("error_code", "error_description", "error_uri", "status_code")}
        unknown = set(fields) - set(self._fields)
        if unknown:
            raise TypeError(f"unexpected fields {sorted(unknown)}")
        self._set(is_successful=is_successful, error=error, **details)
        self._set(**{name: fields.get(name) for name in self._fields})


class ClientCredentialsTokenResponse(_Response):
    _fields = ("token",)
    _guarded_fields = frozenset(_fields)
    _secret_fields = frozenset({"token"})


class AuthorizationCodeTokenResponse(ClientCredentialsTokenResponse):
    pass


class RefreshTokenResponse(ClientCredentialsTokenResponse):
    pass


class TokenIntrospectionResponse(_Response):
    _fields = ("claims",)
    _guarded_fields = frozenset(_fields)


class TokenRevocationResponse(_Response):
    pass


class PushedAuthorizationResponse(_Response):
    _fields = ("request_uri", "expires_in")
    _guarded_fields = frozenset(_fields)
    _secret_fields = frozenset({"request_uri"})


class DeviceAuthorizationResponse(_Response):
    _fields = ("device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in", "interval")
    _guarded_fields = frozenset(_fields)
    _secret_fields = frozenset({"device_code"})


class DeviceTokenResponse(_Response):
    """A poll's answer: the tokens, or the RFC 8628 ``error_code`` (``authorization_pending``,
    ``slow_down``, ``expired_token``, ``access_denied``) for the caller's loop."""

    _fields = ("token", "interval")
    _guarded_fields = frozenset({"token"})
    _secret_fields = frozenset({"token"})


class TokenExchangeResponse(_Response):
    _fields = ("token", "issued_token_type")
    _guarded_fields = frozenset(_fields)
    _secret_fields = frozenset({"token"})


class UserInfoResponse(_Response):
    _fields = ("claims", "raw")
    _guarded_fields = frozenset(_fields)


# ---------------------------------------------------------------- the calls


def _der(pem: str | bytes) -> bytes:
    text = pem.decode("ascii") if isinstance(pem, bytes) else pem
    if "ENCRYPTED" in text:
        raise ConfigurationException("an encrypted private key cannot be used: decrypt it first")
    body = re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(.+?)-----END [A-Z ]*PRIVATE KEY-----", text, re.S)
    if body is None:
        raise ConfigurationException("the private key is not a PEM private key")
    return base64.b64decode("".join(body.group(1).split()))


# The environment variables the native client reads (py-identity-model's): part of a kept
# client's key, so that a change takes effect on the next call.
_SETTINGS = (
    "HTTP_TIMEOUT",
    "HTTP_RETRY_MAX_ATTEMPTS",
    "HTTP_RETRY_COUNT",
    "HTTP_RETRY_BASE_DELAY",
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
)
_clients: OrderedDict[tuple, Any] = OrderedDict()
_clients_lock = threading.Lock()
MAX_CLIENTS = 64


def _client(request: Any, endpoint: str, dpop_key: DPoPKey | None = None) -> Any:
    """The native client for ``request`` (its authentication, its ``address`` as ``endpoint``).
    Clients are kept (at most ``MAX_CLIENTS``, least recently used out) so that a server's
    DPoP nonce is remembered from one call to the next (RFC 9449 section 8)."""
    kwargs: dict[str, Any] = {"endpoints": {endpoint: request.address}}
    mtls = getattr(request, "mtls", None)
    pkj = getattr(request, "private_key_jwt", None)
    secret = getattr(request, "client_secret", None)
    if mtls is not None:
        if mtls.auth_method not in ("tls_client_auth", "self_signed_tls_client_auth"):
            raise ConfigurationException(
                f"MtlsClientAuth.auth_method must be tls_client_auth or self_signed_tls_client_auth, got {mtls.auth_method!r}"
            )
        if mtls.password is not None:
            raise ConfigurationException(
                "encrypted mTLS private keys are not supported: decrypt the key into a file only the service can read"
            )
        kwargs.update(
            auth_method=mtls.auth_method,
            client_certificate=os.fspath(mtls.certificate),
            client_key=os.fspath(mtls.private_key),
        )
    elif pkj is not None:
        kwargs.update(
            auth_method="private_key_jwt",
            private_key_der=_der(pkj.private_key),
            algorithm=pkj.algorithm,
            kid=pkj.kid,
            assertion_audience=pkj.audience,
        )
    elif secret is not None:
        kwargs.update(auth_method="client_secret_basic", client_secret=secret)
    if dpop_key is not None:
        kwargs["dpop_key"] = dpop_key._native
    client_id = getattr(request, "client_id", "") or ""
    # The key names the credential by digest: no secret is kept as a dictionary key.
    credential = hashlib.sha256(repr(sorted((k, v) for k, v in kwargs.items() if k != "dpop_key")).encode())
    settings = tuple(os.environ.get(name) for name in _SETTINGS)
    if mtls is not None:
        # The files are read when the client is made: a renewed certificate makes a new one.
        stamp = lambda path: (lambda st: (st.st_mtime_ns, st.st_size))(os.stat(path))  # noqa: E731
        try:
            settings += (stamp(mtls.certificate), stamp(mtls.private_key))
        except OSError as e:
            raise ConfigurationException(f"cannot read the mTLS certificate or key: {e}") from e
    key = (client_id, credential.hexdigest(), dpop_key.jwk_thumbprint if dpop_key is not None else None, settings)
    with _clients_lock:
        found = _clients.get(key)
        if found is not None:
            _clients.move_to_end(key)
            return found
    created = _native.OAuthClient(client_id, **kwargs)
    with _clients_lock:
        found = _clients.setdefault(key, created)
        _clients.move_to_end(key)
        while len(_clients) > MAX_CLIENTS:
            _clients.popitem(last=False)
    return found


def _pairs(**values: str | None) -> list[tuple[str, str]]:
    return [(name, value) for name, value in values.items() if value is not None]


def _plan(request: Any) -> tuple[str, str, list[tuple[str, str]], Any, type[_Response]]:
    """(endpoint, operation, form parameters, DPoP key, response class) of ``request``."""
    if isinstance(request, ClientCredentialsTokenRequest):
        form = _pairs(grant_type="client_credentials", scope=request.scope)
        return "token", "token", form, None, ClientCredentialsTokenResponse
    if isinstance(request, AuthorizationCodeTokenRequest):
        form = _pairs(
            grant_type="authorization_code",
            code=request.code,
            redirect_uri=request.redirect_uri,
            code_verifier=request.code_verifier,
            scope=request.scope,
        )
        return "token", "token", form, request.dpop_key, AuthorizationCodeTokenResponse
    if isinstance(request, RefreshTokenRequest):
        form = _pairs(grant_type="refresh_token", refresh_token=request.refresh_token, scope=request.scope)
        return "token", "token", form, None, RefreshTokenResponse
    if isinstance(request, DeviceTokenRequest):
        form = _pairs(grant_type=DEVICE_CODE_GRANT, device_code=request.device_code)
        return "token", "token", form, None, DeviceTokenResponse
    if isinstance(request, TokenExchangeRequest):
        form = _pairs(
            grant_type=TOKEN_EXCHANGE_GRANT,
            subject_token=request.subject_token,
            subject_token_type=request.subject_token_type,
            actor_token=request.actor_token,
            actor_token_type=request.actor_token_type,
            requested_token_type=request.requested_token_type,
            audience=request.audience,
            resource=request.resource,
            scope=request.scope,
        )
        return "token", "token", form, None, TokenExchangeResponse
    if isinstance(request, TokenIntrospectionRequest):
        form = _pairs(token=request.token, token_type_hint=request.token_type_hint)
        return "introspection", "introspect", form, None, TokenIntrospectionResponse
    if isinstance(request, TokenRevocationRequest):
        form = _pairs(token=request.token, token_type_hint=request.token_type_hint)
        return "revocation", "revoke", form, None, TokenRevocationResponse
    if isinstance(request, DeviceAuthorizationRequest):
        return "device_authorization", "device_authorization", _pairs(scope=request.scope), None, DeviceAuthorizationResponse
    if isinstance(request, PushedAuthorizationRequest):
        if (request.code_challenge is None) != (request.code_challenge_method is None):
            raise ConfigurationException("code_challenge and code_challenge_method go together")
        form = _pairs(
            response_type=request.response_type,
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            scope=request.scope,
            state=request.state,
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
            response_mode=request.response_mode,
        )
        if request.dpop_key is not None:
            form.append(("dpop_jkt", request.dpop_key.jwk_thumbprint))
        return "pushed_authorization_request", "push", form, request.dpop_key, PushedAuthorizationResponse
    if isinstance(request, UserInfoRequest):
        form = _pairs(token=request.token, expected_sub=request.expected_sub)
        return "userinfo", "userinfo", form, request.dpop_key, UserInfoResponse
    raise TypeError(f"not a request of this module: {type(request).__name__}")


def _succeeded(cls: type[_Response], answer: Any) -> _Response:
    if cls is TokenRevocationResponse:
        return cls(True)
    if cls is TokenIntrospectionResponse:
        return cls(True, claims=answer)
    if cls is UserInfoResponse:
        import json

        return cls(True, claims=answer, raw=json.dumps(answer))
    if cls is TokenExchangeResponse:
        return cls(True, token=answer, issued_token_type=answer.get("issued_token_type"))
    if cls in (PushedAuthorizationResponse, DeviceAuthorizationResponse):
        return cls(True, **answer)
    return cls(True, token=answer)


def _failed(cls: type[_Response], error: PyIdentityModelException) -> _Response:
    code = getattr(error, "oauth_error", None)
    details = {
        "error_code": code,
        "error_description": getattr(error, "error_description", None),
        "error_uri": getattr(error, "error_uri", None),
        "status_code": getattr(error, "status_code", None),
    }
    if details["status_code"] is None and getattr(error, "kind", None) == "http_status":
        # An error status without an OAuth error: the core's message names the status.
        found = re.search(r"HTTP (\d{3})", error.message)
        details["status_code"] = int(found.group(1)) if found else None
    if cls is DeviceTokenResponse:
        # py-identity-model's shape: error_code only for the polling codes, with the
        # description (or the code) as the error.
        if code in _POLLING_ERRORS:
            return cls(False, details["error_description"] or f"Device flow: {code}", **details)
        details["error_code"] = None
    return cls(False, error.message, **details)


def _send(request: Any) -> _Response:
    cls = ClientCredentialsTokenResponse
    try:
        endpoint, operation, form, dpop_key, cls = _plan(request)
        answer = _client(request, endpoint, dpop_key).call(operation, form)
    except PyIdentityModelException as error:
        return _failed(cls, error)
    return _succeeded(cls, answer)


async def _send_async(request: Any) -> _Response:
    cls = ClientCredentialsTokenResponse
    try:
        endpoint, operation, form, dpop_key, cls = _plan(request)
        answer = await _client(request, endpoint, dpop_key).call_future(operation, form)
    except PyIdentityModelException as error:
        return _failed(cls, error)
    return _succeeded(cls, answer)


def request_client_credentials_token(
    request: ClientCredentialsTokenRequest, http_client: Any = None
) -> ClientCredentialsTokenResponse:
    """Client credentials (RFC 6749 section 4.4). ``http_client`` is accepted and ignored."""
    return _send(request)  # type: ignore[return-value]


def request_authorization_code_token(
    request: AuthorizationCodeTokenRequest, http_client: Any = None
) -> AuthorizationCodeTokenResponse:
    """Redeems a code (with its PKCE verifier; DPoP-bound with ``dpop_key``). Sent once."""
    return _send(request)  # type: ignore[return-value]


def refresh_token(request: RefreshTokenRequest, http_client: Any = None) -> RefreshTokenResponse:
    """Uses a refresh token (sent once: a rotating refresh token is single use)."""
    return _send(request)  # type: ignore[return-value]


def introspect_token(request: TokenIntrospectionRequest, http_client: Any = None) -> TokenIntrospectionResponse:
    """RFC 7662 introspection: ``claims`` holds the answer (``active`` first of all)."""
    return _send(request)  # type: ignore[return-value]


def revoke_token(request: TokenRevocationRequest, http_client: Any = None) -> TokenRevocationResponse:
    """RFC 7009 revocation."""
    return _send(request)  # type: ignore[return-value]


def request_device_authorization(
    request: DeviceAuthorizationRequest, http_client: Any = None
) -> DeviceAuthorizationResponse:
    """Starts the device flow (RFC 8628 section 3.1)."""
    return _send(request)  # type: ignore[return-value]


def poll_device_token(request: DeviceTokenRequest, http_client: Any = None) -> DeviceTokenResponse:
    """One poll of the token endpoint; the caller runs the loop (``error_code``)."""
    return _send(request)  # type: ignore[return-value]


def exchange_token(request: TokenExchangeRequest, http_client: Any = None) -> TokenExchangeResponse:
    """RFC 8693 token exchange (sent once)."""
    return _send(request)  # type: ignore[return-value]


def push_authorization_request(
    request: PushedAuthorizationRequest, http_client: Any = None
) -> PushedAuthorizationResponse:
    """RFC 9126: pushes the authorization request; the answer's ``request_uri`` goes in the
    authorization URL."""
    return _send(request)  # type: ignore[return-value]


def get_userinfo(request: UserInfoRequest, http_client: Any = None) -> UserInfoResponse:
    """OIDC userinfo; with ``expected_sub``, a response about another subject fails."""
    return _send(request)  # type: ignore[return-value]


def _coroutine(function: Any) -> Any:
    """``function`` as a coroutine, driven by the Rust core's async runtime (``aio``)."""

    async def call(request: Any, http_client: Any = None) -> _Response:
        return await _send_async(request)

    call.__name__ = call.__qualname__ = f"{function.__name__}_async"
    call.__doc__ = f"``{function.__name__}`` as a coroutine. {function.__doc__}"
    return call


request_client_credentials_token_async = _coroutine(request_client_credentials_token)
request_authorization_code_token_async = _coroutine(request_authorization_code_token)
refresh_token_async = _coroutine(refresh_token)
introspect_token_async = _coroutine(introspect_token)
revoke_token_async = _coroutine(revoke_token)
request_device_authorization_async = _coroutine(request_device_authorization)
poll_device_token_async = _coroutine(poll_device_token)
exchange_token_async = _coroutine(exchange_token)
push_authorization_request_async = _coroutine(push_authorization_request)
get_userinfo_async = _coroutine(get_userinfo)


__all__ = [
    "AuthorizationCodeTokenRequest",
    "AuthorizationCodeTokenResponse",
    "ClientCredentialsTokenRequest",
    "ClientCredentialsTokenResponse",
    "DeviceAuthorizationRequest",
    "DeviceAuthorizationResponse",
    "DeviceTokenRequest",
    "DeviceTokenResponse",
    "MtlsClientAuth",
    "PrivateKeyJwt",
    "PushedAuthorizationRequest",
    "PushedAuthorizationResponse",
    "RefreshTokenRequest",
    "RefreshTokenResponse",
    "TokenExchangeRequest",
    "TokenExchangeResponse",
    "TokenIntrospectionRequest",
    "TokenIntrospectionResponse",
    "TokenRevocationRequest",
    "TokenRevocationResponse",
    "UserInfoRequest",
    "UserInfoResponse",
    "exchange_token",
    "get_userinfo",
    "introspect_token",
    "poll_device_token",
    "push_authorization_request",
    "refresh_token",
    "request_authorization_code_token",
    "request_client_credentials_token",
    "request_device_authorization",
    "revoke_token",
]
