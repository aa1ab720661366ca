"""What ``identity_model`` and ``identity_model.aio`` both export, as py-identity-model's two
namespaces do: the classes, the configuration, the exceptions and the pure helpers (no
function that waits on the network: each namespace adds its own, blocking or coroutine)."""

from . import authorize, claims_validation, config, dpop, exceptions, fapi, identity, jar, logout, mtls, token_client
from .authorize import *  # noqa: F403 - listed in authorize.__all__
from .claims_validation import *  # noqa: F403 - listed in claims_validation.__all__
from .config import *  # noqa: F403 - listed in config.__all__
from .discovery import DiscoveryDocumentRequest, DiscoveryDocumentResponse, DiscoveryEndpoint, DiscoveryErrorKind, parse_discovery_url
from .dpop import *  # noqa: F403 - listed in dpop.__all__
from .exceptions import *  # noqa: F403 - listed in exceptions.__all__
from .fapi import *  # noqa: F403 - listed in fapi.__all__
from .identity import *  # noqa: F403 - listed in identity.__all__
from .jar import *  # noqa: F403 - listed in jar.__all__
from .jarm import extract_jarm_response_jwt, is_jarm_response
from .jwks import JsonWebAlgorithmsKeyTypes, JsonWebKey, JsonWebKeyParameterNames, JwksRequest, JwksResponse, jwks_from_dict
from .logout import *  # noqa: F403 - listed in logout.__all__
from .mtls import *  # noqa: F403 - listed in mtls.__all__
from .responses import BaseRequest, BaseResponse
from .token_client import *  # noqa: F403 - its classes are listed below, its functions are not
from .validation import CacheCounters, DiscoveryPolicy, TokenValidationConfig, get_cache_counters

__all__ = [
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
    "extract_jarm_response_jwt",
    "get_cache_counters",
    "is_jarm_response",
    "jwks_from_dict",
    "parse_discovery_url",
    *(name for name in exceptions.__all__ if name != "from_native"),
    *authorize.__all__,
    *claims_validation.__all__,
    *config.__all__,
    *dpop.__all__,
    *fapi.__all__,
    *identity.__all__,
    *jar.__all__,
    *logout.__all__,
    *mtls.__all__,
    *(name for name in token_client.__all__ if name[0].isupper()),
]
