"""py-identity-model's ``validate_token`` on the Rust core.

Same names, arguments and exceptions. One :class:`identity_model.Authority` per discovery
address and rule set holds the keys (fetched once, refreshed before they expire, refetched
once for an unknown ``kid`` with a cooldown), shared by the sync and ``aio`` functions and by
every thread and event loop. Where the core is stricter, the stricter behaviour is kept:
see the difference table in the package README.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from ._native import KeyValidator
from .authority import Authority
from .exceptions import (
    ConfigurationException,
    InvalidIssuerException,
    TokenValidationException,
)

_WELL_KNOWN = {
    "/.well-known/openid-configuration": "openid",
    "/.well-known/oauth-authorization-server": "oauth",
}

# Options PyJWT would let a caller switch off: refused, as py-identity-model does.
_CRITICAL_OPTIONS = ("verify_signature", "verify_exp", "verify_nbf", "verify_iat")
# Switching these off is refused too (py-identity-model allows it): the core always checks them.
_ALWAYS_CHECKED = ("verify_aud", "verify_iss")

MAX_AUTHORITIES = 64


@dataclass
class DiscoveryPolicy:
    """Which discovery documents and URLs are trusted (strict by default)."""

    require_https: bool = True
    allow_http_on_loopback: bool = True
    validate_issuer: bool = True
    validate_endpoints: bool = True
    require_key_set: bool = True
    additional_endpoint_base_addresses: list[str] = field(default_factory=list)
    authority: str | None = None
    allow_loopback_endpoints: bool = False

    def cache_key(self) -> tuple:
        return (
            self.require_https,
            self.allow_http_on_loopback,
            self.validate_issuer,
            self.validate_endpoints,
            self.require_key_set,
            tuple(self.additional_endpoint_base_addresses),
            self.authority,
            self.allow_loopback_endpoints,
        )


@dataclass
class TokenValidationConfig:
    """How a token is validated (py-identity-model's fields)."""

    perform_disco: bool
    key: Any = None
    audience: str | None = None
    algorithms: list[str] | None = None
    issuer: str | list[str] | None = None
    subject: str | None = None
    options: dict | None = None
    claims_validator: Callable[[dict], Any] | None = None
    require_https: bool = True
    leeway: float | None = None
    allowed_issuers: list[str] | None = None
    discovery_policy: DiscoveryPolicy | None = None


@dataclass
class CacheCounters:
    """Cache counters across every cached authority."""

    disco_hits: int = 0
    disco_misses: int = 0
    jwks_hits: int = 0
    jwks_misses: int = 0
    jwks_refreshes: int = 0

    def snapshot(self) -> dict:
        return dict(self.__dict__)

    def reset(self) -> None:
        clear_discovery_cache()


_authorities: OrderedDict[tuple, Authority] = OrderedDict()
_lock = threading.Lock()
_retired = CacheCounters()


def _issuer_of(address: str) -> tuple[str, str]:
    """The issuer and metadata kind a discovery address names."""
    for suffix, kind in _WELL_KNOWN.items():
        if address.endswith(suffix):
            return address[: -len(suffix)], kind
        # RFC 8414 section 3.1: the well-known segment goes before the issuer's path.
        scheme_host, sep, rest = address.partition("://")
        host, slash, path = rest.partition("/")
        if sep and slash and ("/" + path).startswith(suffix + "/"):
            return f"{scheme_host}://{host}{('/' + path)[len(suffix):]}", kind
    raise ConfigurationException(
        f"disco_doc_address {address!r} is not a well-known metadata address "
        "(.../.well-known/openid-configuration or .../.well-known/oauth-authorization-server)"
    )


def _checked_options(options: dict | None) -> list[str]:
    """The claims ``options["require"]`` names; refuses switching checks off."""
    options = options or {}
    for name in _CRITICAL_OPTIONS + _ALWAYS_CHECKED:
        if options.get(name) is False:
            raise ConfigurationException(f"options[{name!r}] = False is refused: the check cannot be disabled")
    return list(options.get("require") or [])


def _policy(config: TokenValidationConfig) -> DiscoveryPolicy:
    return config.discovery_policy or DiscoveryPolicy(require_https=config.require_https)


def _authority(config: TokenValidationConfig, address: str | None) -> Authority:
    if not address:
        raise ConfigurationException("disco_doc_address is required when perform_disco is True")
    issuer, metadata = _issuer_of(address)
    if config.allowed_issuers is not None and issuer not in set(config.allowed_issuers):
        raise InvalidIssuerException(f"Issuer '{issuer}' is not in the configured allowed_issuers")
    policy = _policy(config)
    if not policy.require_https and not policy.allow_http_on_loopback:
        # HTTP anywhere is not offered by the core: only on loopback.
        raise ConfigurationException("HTTP is allowed only on loopback (allow_http_on_loopback)")
    key = (
        address,
        config.audience,
        tuple(config.algorithms or ()),
        config.leeway,
        policy.cache_key(),
    )
    with _lock:
        found = _authorities.get(key)
        if found is not None:
            _authorities.move_to_end(key)
            return found
    created = Authority(
        issuer,
        config.audience,
        algorithms=config.algorithms,
        leeway=config.leeway if config.leeway is not None else 0.0,
        allow_http_on_loopback=policy.allow_http_on_loopback,
        metadata=metadata,
    )
    with _lock:
        found = _authorities.setdefault(key, created)
        _authorities.move_to_end(key)
        while len(_authorities) > MAX_AUTHORITIES:
            _, evicted = _authorities.popitem(last=False)
            _retire(evicted)
    return found


def _key_validator(config: TokenValidationConfig) -> KeyValidator:
    import json

    if not config.key:
        raise ConfigurationException("TokenValidationConfig.key is required")
    if not config.algorithms:
        raise ConfigurationException("TokenValidationConfig.algorithms is required")
    key = config.key
    if hasattr(key, "as_dict"):
        key = key.as_dict()
    if hasattr(key, "to_json"):
        key = json.loads(key.to_json())
    key = {k: v for k, v in dict(key).items() if v is not None}
    return KeyValidator(
        json.dumps(key),
        config.issuer,
        config.audience,
        algorithms=config.algorithms,
        leeway=config.leeway if config.leeway is not None else 0.0,
    )


def _after(claims: dict, config: TokenValidationConfig, required: list[str]) -> dict:
    """The checks done in Python: required claims, ``subject``, the claims validator."""
    for name in required:
        if name not in claims:
            error = TokenValidationException(f'Token is missing the "{name}" claim', token_part="payload")
            error.kind, error.fault, error.claim = "missing_claim", "token", name
            raise error
    if config.subject is not None and claims.get("sub") != config.subject:
        raise TokenValidationException("Invalid subject", token_part="payload")
    return claims


def _refused_by_validator(error: Exception) -> TokenValidationException:
    """A claims validator's (non-token) exception as py-identity-model reports it."""
    return TokenValidationException(
        f"Claims validation failed: {error!s}", token_part="payload", details={"error": str(error)}
    )


def _run_validator(claims: dict, config: TokenValidationConfig) -> Any:
    if config.claims_validator is None:
        return None
    try:
        return config.claims_validator(claims)
    except TokenValidationException:
        raise
    except Exception as e:
        raise _refused_by_validator(e) from e


def validate_token(
    jwt: str,
    token_validation_config: TokenValidationConfig,
    disco_doc_address: str | None = None,
    http_client: Any = None,
) -> dict:
    """Validates ``jwt`` and returns its claims; raises a ``TokenValidationException``
    subclass, ``ConfigurationException`` or ``NetworkException``. ``http_client`` is accepted
    for compatibility and ignored: the core's own client, cache and cooldowns always apply."""
    config = token_validation_config
    required = _checked_options(config.options)
    if config.perform_disco:
        claims = _authority(config, disco_doc_address).validate(jwt)
    else:
        claims = _key_validator(config).validate(jwt)
    _after(claims, config, required)
    _run_validator(claims, config)
    return claims


async def validate_token_async(
    jwt: str,
    token_validation_config: TokenValidationConfig,
    disco_doc_address: str | None = None,
    http_client: Any = None,
) -> dict:
    """``validate_token`` as a coroutine (``identity_model.aio.validate_token``)."""
    import inspect

    config = token_validation_config
    required = _checked_options(config.options)
    if config.perform_disco:
        claims = await _authority(config, disco_doc_address).validate_async(jwt)
    else:
        claims = _key_validator(config).validate(jwt)
    _after(claims, config, required)
    outcome = _run_validator(claims, config)
    if inspect.isawaitable(outcome):
        try:
            await outcome
        except TokenValidationException:
            raise
        except Exception as e:
            raise _refused_by_validator(e) from e
    return claims


def _retire(authority: Authority) -> None:
    stats = authority.stats()
    _retired.disco_misses += stats["discovery_fetches"]
    _retired.jwks_hits += stats["hits"]
    _retired.jwks_misses += stats["misses"]
    _retired.jwks_refreshes += stats["refreshes"]


def clear_discovery_cache() -> None:
    """Forgets every cached document and key set (the authorities that hold them)."""
    with _lock:
        for authority in _authorities.values():
            _retire(authority)
        _authorities.clear()


def clear_jwks_cache() -> None:
    """The same as :func:`clear_discovery_cache`: documents and keys are cached together."""
    clear_discovery_cache()


def get_cache_counters() -> CacheCounters:
    """Counters summed over the cached authorities (and those cleared since the start)."""
    counters = CacheCounters(**_retired.snapshot())
    with _lock:
        live = list(_authorities.values())
    for authority in live:
        stats = authority.stats()
        counters.disco_misses += stats["discovery_fetches"]
        counters.jwks_hits += stats["hits"]
        counters.jwks_misses += stats["misses"]
        counters.jwks_refreshes += stats["refreshes"]
    counters.disco_hits = counters.jwks_hits
    return counters
