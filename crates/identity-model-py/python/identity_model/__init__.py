"""identity-model for Python: py-identity-model's API (``validate_token``,
``TokenValidationConfig``, its exceptions; ``identity_model.aio`` for asyncio) and a native
one (``Authority``, ``KeyValidator``) on the identity-model Rust core."""

from . import _shared, aio
from ._native import KeyValidator, __version__
from ._shared import *  # noqa: F403 - listed in _shared.__all__
from .authority import Authority, TokenManager
from .discovery import get_discovery_document
from .http_client import HTTPClient
from .id_token import validate_id_token, validate_logout_token
from .jarm import process_jarm_response
from .jwks import get_jwks
from .token_client import (
    exchange_token,
    get_userinfo,
    introspect_token,
    poll_device_token,
    push_authorization_request,
    refresh_token,
    request_authorization_code_token,
    request_client_credentials_token,
    request_device_authorization,
    revoke_token,
)
from .validation import clear_discovery_cache, clear_jwks_cache, validate_token

__all__ = [
    "Authority",
    "HTTPClient",
    "KeyValidator",
    "TokenManager",
    "__version__",
    "aio",
    "clear_discovery_cache",
    "clear_jwks_cache",
    "exchange_token",
    "get_discovery_document",
    "get_jwks",
    "get_userinfo",
    "introspect_token",
    "poll_device_token",
    "process_jarm_response",
    "push_authorization_request",
    "refresh_token",
    "request_authorization_code_token",
    "request_client_credentials_token",
    "request_device_authorization",
    "revoke_token",
    "validate_id_token",
    "validate_logout_token",
    "validate_token",
    *_shared.__all__,
]
