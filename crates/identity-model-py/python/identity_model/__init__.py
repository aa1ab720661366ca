"""identity-model for Python: py-identity-model's API (``validate_token``,
``TokenValidationConfig``, its exceptions; ``identity_model.aio`` for asyncio) and a native
one (``Authority``, ``KeyValidator``) on the identity-model Rust core."""

from . import aio
from ._native import KeyValidator, __version__
from .authority import Authority, TokenManager
from . import exceptions as _exceptions
from .exceptions import *  # noqa: F403 - the exception classes, listed in exceptions.__all__
from .discovery import (
    DiscoveryDocumentRequest,
    DiscoveryDocumentResponse,
    DiscoveryEndpoint,
    DiscoveryErrorKind,
    get_discovery_document,
    parse_discovery_url,
)
from .id_token import validate_id_token, validate_logout_token
from .jwks import (
    JsonWebAlgorithmsKeyTypes,
    JsonWebKey,
    JsonWebKeyParameterNames,
    JwksRequest,
    JwksResponse,
    get_jwks,
    jwks_from_dict,
)
from . import authorize as _authorize
from . import claims_validation as _claims_validation
from . import config as _config
from . import dpop as _dpop
from . import fapi as _fapi
from . import identity as _identity
from . import jar as _jar
from . import jarm as _jarm
from . import logout as _logout
from . import mtls as _mtls
from . import token_client as _token_client
from .authorize import *  # noqa: F403 - listed in authorize.__all__
from .claims_validation import *  # noqa: F403 - listed in claims_validation.__all__
from .config import *  # noqa: F403 - listed in config.__all__
from .dpop import *  # noqa: F403 - listed in dpop.__all__
from .fapi import *  # noqa: F403 - listed in fapi.__all__
from .identity import *  # noqa: F403 - listed in identity.__all__
from .jar import *  # noqa: F403 - listed in jar.__all__
from .jarm import *  # noqa: F403 - listed in jarm.__all__
from .logout import *  # noqa: F403 - listed in logout.__all__
from .mtls import *  # noqa: F403 - listed in mtls.__all__
from .token_client import *  # noqa: F403 - listed in token_client.__all__
from .http_client import HTTPClient
from .responses import BaseRequest, BaseResponse
from .validation import (
    CacheCounters,
    DiscoveryPolicy,
    TokenValidationConfig,
    clear_discovery_cache,
    clear_jwks_cache,
    get_cache_counters,
    validate_token,
)

__all__ = [
    "Authority",
    "BaseRequest",
    "BaseResponse",
    "HTTPClient",
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
    "KeyValidator",
    "TokenManager",
    "TokenValidationConfig",
    "__version__",
    "aio",
    "clear_discovery_cache",
    "clear_jwks_cache",
    "get_cache_counters",
    "get_discovery_document",
    "get_jwks",
    "jwks_from_dict",
    "parse_discovery_url",
    "validate_id_token",
    "validate_logout_token",
    "validate_token",
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
    *_token_client.__all__,
]
