"""py-identity-model's ``get_discovery_document``: the request, the response with guarded
field access (a data field of a failed response raises ``FailedResponseAccessError``, the
``error`` of a successful one ``SuccessfulResponseAccessError``), and the failure kinds."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlparse
from enum import Enum
from typing import Any

from . import _native
from .exceptions import ConfigurationException, PyIdentityModelException
from .responses import BaseRequest, _GuardedResponse
from .validation import DiscoveryPolicy, _issuer_of


_WELL_KNOWN_PATH = "/.well-known/openid-configuration"


@dataclass
class DiscoveryEndpoint:
    """A discovery URL (the well-known path appended when missing) and its authority
    (``scheme://host[:port]``)."""

    url: str
    authority: str


def parse_discovery_url(url: str) -> DiscoveryEndpoint:
    """py-identity-model's parse of a discovery URL or issuer: an http(s) URL with a host and
    without query or fragment (else ``ConfigurationException``); the well-known path is
    appended unless the path ends with it, and a trailing ``/`` is dropped."""
    if not url:
        raise ConfigurationException("Discovery URL cannot be empty")
    parsed = urlparse(url)
    if not parsed.scheme:
        raise ConfigurationException(f"Discovery URL must include a scheme: {url}")
    if parsed.scheme not in ("http", "https"):
        raise ConfigurationException(f"Discovery URL must use HTTP or HTTPS scheme, got: {parsed.scheme}")
    if not parsed.netloc:
        raise ConfigurationException(f"Discovery URL must include a host: {url}")
    if parsed.query or parsed.fragment:
        raise ConfigurationException("Discovery URL must not contain query or fragment components")
    full = url
    if not parsed.path.rstrip("/").endswith(_WELL_KNOWN_PATH):
        full = url.rstrip("/") + _WELL_KNOWN_PATH
    return DiscoveryEndpoint(url=full.rstrip("/"), authority=f"{parsed.scheme}://{parsed.netloc}")


class DiscoveryErrorKind(Enum):
    """Why discovery failed (``DiscoveryDocumentResponse.error_kind``)."""

    UNEXPECTED_STATUS = "unexpected_status"
    INVALID_JSON = "invalid_json"
    MISSING_FIELDS = "missing_fields"
    HTTPS_REQUIRED = "https_required"
    INVALID_CONFIGURATION = "invalid_configuration"
    INVALID_DOCUMENT = "invalid_document"
    NETWORK_ERROR = "network_error"
    UNEXPECTED_ERROR = "unexpected_error"


# The core's error kinds as discovery failure kinds.
_ERROR_KINDS = {
    "http_status": DiscoveryErrorKind.UNEXPECTED_STATUS,
    "invalid_document": DiscoveryErrorKind.INVALID_DOCUMENT,
    "unexpected_content_type": DiscoveryErrorKind.INVALID_DOCUMENT,
    "issuer_mismatch": DiscoveryErrorKind.INVALID_DOCUMENT,
    "missing_fields": DiscoveryErrorKind.MISSING_FIELDS,
    "policy_violation": DiscoveryErrorKind.HTTPS_REQUIRED,
    "invalid_config": DiscoveryErrorKind.INVALID_CONFIGURATION,
    "transport_error": DiscoveryErrorKind.NETWORK_ERROR,
    "keys_unavailable": DiscoveryErrorKind.NETWORK_ERROR,
}

# Registered members a response exposes (read on a failed response: FailedResponseAccessError).
_MEMBERS = (
    "issuer jwks_uri authorization_endpoint token_endpoint response_types_supported "
    "subject_types_supported id_token_signing_alg_values_supported userinfo_endpoint "
    "registration_endpoint scopes_supported response_modes_supported grant_types_supported "
    "acr_values_supported id_token_encryption_alg_values_supported "
    "id_token_encryption_enc_values_supported userinfo_signing_alg_values_supported "
    "userinfo_encryption_alg_values_supported userinfo_encryption_enc_values_supported "
    "request_object_signing_alg_values_supported request_object_encryption_alg_values_supported "
    "request_object_encryption_enc_values_supported token_endpoint_auth_methods_supported "
    "token_endpoint_auth_signing_alg_values_supported display_values_supported "
    "claim_types_supported claims_supported claims_locales_supported ui_locales_supported "
    "claims_parameter_supported request_parameter_supported request_uri_parameter_supported "
    "require_request_uri_registration service_documentation op_policy_uri op_tos_uri "
    "introspection_endpoint code_challenge_methods_supported "
    "pushed_authorization_request_endpoint require_pushed_authorization_requests "
    "end_session_endpoint backchannel_logout_supported backchannel_logout_session_supported "
    "authorization_response_iss_parameter_supported authorization_signing_alg_values_supported "
    "authorization_encryption_alg_values_supported authorization_encryption_enc_values_supported "
    "mtls_endpoint_aliases tls_client_certificate_bound_access_tokens revocation_endpoint "
    "device_authorization_endpoint"
).split()


@dataclass
class DiscoveryDocumentRequest(BaseRequest):
    """Where the document is (its well-known address) and the policy to judge it by."""

    address: str
    policy: DiscoveryPolicy | None = None


class DiscoveryDocumentResponse(_GuardedResponse):
    """The document's registered members, or why it could not be had."""

    _guarded_fields = frozenset(_MEMBERS)
    _repr_fields = ("issuer",)

    def __init__(
        self,
        is_successful: bool,
        error: str | None = None,
        *,
        error_kind: DiscoveryErrorKind | None = None,
        status_code: int | None = None,
        missing_fields: tuple[str, ...] = (),
        members: dict | None = None,
    ):
        object.__setattr__(self, "is_successful", is_successful)
        object.__setattr__(self, "error", error)
        object.__setattr__(self, "error_kind", error_kind)
        object.__setattr__(self, "status_code", status_code)
        object.__setattr__(self, "missing_fields", tuple(missing_fields))
        for name in _MEMBERS:
            object.__setattr__(self, name, (members or {}).get(name))


def _request_parts(request: DiscoveryDocumentRequest) -> tuple[str, str, bool]:
    issuer, metadata = _issuer_of(request.address)
    policy = request.policy or DiscoveryPolicy()
    return issuer, metadata, policy.allow_http_on_loopback


def _failed(error: PyIdentityModelException) -> DiscoveryDocumentResponse:
    kind = getattr(error, "kind", None) or "invalid_config"
    status = re.search(r"answered HTTP (\d{3})", error.message)
    missing = ()
    if kind == "missing_fields" and ":" in error.message:
        missing = tuple(name.strip() for name in error.message.rsplit(":", 1)[1].split(","))
    return DiscoveryDocumentResponse(
        False,
        error.message,
        error_kind=_ERROR_KINDS.get(kind, DiscoveryErrorKind.UNEXPECTED_ERROR),
        status_code=int(status.group(1)) if status else None,
        missing_fields=missing,
    )


def get_discovery_document(request: DiscoveryDocumentRequest, http_client: Any = None) -> DiscoveryDocumentResponse:
    """Fetches and checks the document (issuer, required members, URL policy); never raises
    for a provider's failure: the response says what went wrong. ``http_client`` is accepted
    and ignored."""
    try:
        issuer, metadata, allow_http = _request_parts(request)
        text = _native.discover(issuer, metadata, allow_http)
    except PyIdentityModelException as e:
        return _failed(e)
    return DiscoveryDocumentResponse(True, members=json.loads(text))


async def get_discovery_document_async(
    request: DiscoveryDocumentRequest, http_client: Any = None
) -> DiscoveryDocumentResponse:
    """``get_discovery_document`` as a coroutine (``identity_model.aio``)."""
    try:
        issuer, metadata, allow_http = _request_parts(request)
        text = await _native.discover_future(issuer, metadata, allow_http)
    except PyIdentityModelException as e:
        return _failed(e)
    return DiscoveryDocumentResponse(True, members=json.loads(text))


__all__ = [
    "DiscoveryDocumentRequest",
    "DiscoveryDocumentResponse",
    "DiscoveryErrorKind",
    "get_discovery_document",
]
