"""The ``asyncio`` API: the same functions as coroutines, driven by the Rust core's async
runtime (not a thread pool); usable from several event loops and from uvloop."""

from __future__ import annotations

# Everything that is not a coroutine, as in py-identity-model's ``aio``: the request and
# response classes, the configuration, the exceptions and the pure helpers.
from . import _shared
from ._shared import *  # noqa: F403 - listed in _shared.__all__
from .http_client import AsyncHTTPClient
from .discovery import get_discovery_document_async as get_discovery_document
from .id_token import validate_id_token_async as validate_id_token
from .id_token import validate_logout_token_async as validate_logout_token
from .jwks import get_jwks_async as get_jwks
from .validation import clear_discovery_cache as _clear_discovery_cache
from .validation import clear_jwks_cache as _clear_jwks_cache
from .jarm import process_jarm_response_async as process_jarm_response
from .token_client import exchange_token_async as exchange_token
from .token_client import get_userinfo_async as get_userinfo
from .token_client import introspect_token_async as introspect_token
from .token_client import poll_device_token_async as poll_device_token
from .token_client import push_authorization_request_async as push_authorization_request
from .token_client import refresh_token_async as refresh_token
from .token_client import request_authorization_code_token_async as request_authorization_code_token
from .token_client import request_client_credentials_token_async as request_client_credentials_token
from .token_client import request_device_authorization_async as request_device_authorization
from .token_client import revoke_token_async as revoke_token
from .validation import validate_token_async as validate_token


async def clear_discovery_cache() -> None:
    """Forgets cached documents and keys (awaited, as in py-identity-model's ``aio``)."""
    _clear_discovery_cache()


async def clear_jwks_cache() -> None:
    """Forgets cached documents and keys."""
    _clear_jwks_cache()


__all__ = [
    "AsyncHTTPClient",
    *_shared.__all__,
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
]
