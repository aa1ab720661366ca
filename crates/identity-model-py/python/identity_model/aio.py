"""The ``asyncio`` API: the same functions as coroutines, driven by the Rust core's async
runtime (not a thread pool); usable from several event loops and from uvloop."""

from __future__ import annotations

# Everything that is not a coroutine, as in py-identity-model's ``aio``: the request and
# response classes, the configuration, the exceptions and the pure helpers. The coroutines
# below replace the blocking functions of the same names.
from . import authorize as _authorize
from . import claims_validation as _claims_validation
from . import config as _config
from . import dpop as _dpop
from . import fapi as _fapi
from . import identity as _identity
from . import jar as _jar
from . import jarm as _jarm
from . import exceptions as _exceptions
from . import logout as _logout
from . import mtls as _mtls
from . import token_client as _token_client
from .authorize import *  # noqa: F403 - listed in authorize.__all__
from .discovery import (
    DiscoveryDocumentRequest,
    DiscoveryDocumentResponse,
    DiscoveryEndpoint,
    DiscoveryErrorKind,
    parse_discovery_url,
)
from .claims_validation import *  # noqa: F403 - listed in claims_validation.__all__
from .config import *  # noqa: F403 - listed in config.__all__
from .dpop import *  # noqa: F403 - listed in dpop.__all__
from .fapi import *  # noqa: F403 - listed in fapi.__all__
from .identity import *  # noqa: F403 - listed in identity.__all__
from .jar import *  # noqa: F403 - listed in jar.__all__
from .jarm import *  # noqa: F403 - listed in jarm.__all__
from .exceptions import *  # noqa: F403 - listed in exceptions.__all__
from .jwks import (
    JsonWebAlgorithmsKeyTypes,
    JsonWebKey,
    JsonWebKeyParameterNames,
    JwksRequest,
    JwksResponse,
    jwks_from_dict,
)
from .logout import *  # noqa: F403 - listed in logout.__all__
from .mtls import *  # noqa: F403 - listed in mtls.__all__
from .token_client import *  # noqa: F403 - the classes; the functions are replaced below
from .http_client import AsyncHTTPClient
from .responses import BaseRequest, BaseResponse
from .validation import CacheCounters, DiscoveryPolicy, TokenValidationConfig, get_cache_counters

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
    "BaseRequest",
    "BaseResponse",
    "CacheCounters",
    "DiscoveryDocumentRequest",
    "DiscoveryDocumentResponse",
    "DiscoveryEndpoint",
    "DiscoveryErrorKind",
    "DiscoveryPolicy",
    "JsonWebAlgorithmsKeyTypes",
    "JsonWebKey",
    "JsonWebKeyParameterNames",
    "JwksRequest",
    "JwksResponse",
    "TokenValidationConfig",
    "get_cache_counters",
    "jwks_from_dict",
    "parse_discovery_url",
    *(name for name in _exceptions.__all__ if name != "from_native"),
    *_authorize.__all__,
    *_claims_validation.__all__,
    *_config.__all__,
    *_dpop.__all__,
    *_fapi.__all__,
    *_identity.__all__,
    *_jar.__all__,
    *_jarm.__all__,
    *_logout.__all__,
    *_mtls.__all__,
    *(name for name in _token_client.__all__ if name[0].isupper()),
    "clear_discovery_cache",
    "clear_jwks_cache",
    "exchange_token",
    "get_discovery_document",
    "get_jwks",
    "get_userinfo",
    "introspect_token",
    "poll_device_token",
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
