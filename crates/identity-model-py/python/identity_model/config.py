"""py-identity-model 4.x's typed, fail-closed ``Config``: a value resolved from sources
(precedence per key: ``overrides`` > the given sources in order > ``EnvSource`` > the
default), validated once, and refused as a whole with every problem listed
(``ConfigError(issues)``, codes ``CFG-001`` missing, ``CFG-002`` group rule, ``CFG-003``
invalid value, ``CFG-004`` failing source). Secrets are ``Secret`` values that never print.
Same keys, codes and messages as py-identity-model 4.1.1 (differential-tested).

The functions of this package read the process environment as py-identity-model's do; a
``Config`` is for the application's own settings (a client's discovery URL, id and secret)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import ClassVar, Protocol, runtime_checkable
from urllib.parse import urlparse

REDACTED = "<redacted>"


class Secret:
    """A secret string: ``expose()`` reads it; ``repr`` and ``str`` never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def expose(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: its code, the keys it is about (never their values) and what is wrong."""

    code: str
    keys: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message} ({', '.join(self.keys)})"


class ConfigError(Exception):
    """Every problem of a configuration that was refused."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        super().__init__("configuration is invalid:\n" + "\n".join(f"  - {issue}" for issue in self.issues))


class ClientAuthMethod(Enum):
    """How the client authenticates: whether ``client.secret`` is required."""

    NONE = "none"
    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"

    @property
    def requires_secret(self) -> bool:
        return self is not ClientAuthMethod.NONE


_UNSET = object()


@dataclass(frozen=True)
class _Key:
    logical: str
    attr: str
    env: tuple[str, ...]
    kind: str  # str, int, float, url, list
    default: object = _UNSET
    secret: bool = False
    client: bool = False  # the client group: environment names take the prefix
    lo: float | None = None
    hi: float | None = None
    lo_exclusive: bool = False


_KEYS: tuple[_Key, ...] = (
    _Key("http.timeout", "http_timeout", ("HTTP_TIMEOUT",), "float", 30.0, lo=0.0, lo_exclusive=True),
    _Key("http.retry.max_attempts", "http_retry_max_attempts", ("HTTP_RETRY_MAX_ATTEMPTS", "HTTP_RETRY_COUNT"), "int", 3, lo=0),
    _Key("http.retry.base_delay", "http_retry_base_delay", ("HTTP_RETRY_BASE_DELAY",), "float", 1.0, lo=0.0),
    _Key("jwks.max_size", "jwks_max_size", ("MAX_JWKS_SIZE",), "int", 524288, lo=1),
    _Key("jwks.max_keys", "jwks_max_keys", ("MAX_JWKS_KEYS",), "int", 100, lo=1),
    _Key("jwks.cache.ttl", "jwks_cache_ttl", ("JWKS_CACHE_TTL",), "float", 86400.0, lo=60.0, hi=86400.0),
    _Key("discovery.cache.ttl", "discovery_cache_ttl", ("DISCO_CACHE_TTL",), "float", 3600.0, lo=60.0, hi=86400.0),
    _Key("jwks.kid_miss_cooldown", "jwks_kid_miss_cooldown", ("KID_MISS_REFRESH_COOLDOWN",), "float", 5.0, lo=0.0, hi=3600.0),
    _Key("jwks.cache.max_entries", "jwks_cache_max_entries", ("JWKS_CACHE_MAX_ENTRIES",), "int", 64, lo=0),
    _Key("discovery.cache.max_entries", "discovery_cache_max_entries", ("DISCO_CACHE_MAX_ENTRIES",), "int", 64, lo=0),
    _Key("client.discovery_url", "client_discovery_url", ("DISCOVERY_URL",), "url", client=True),
    _Key("client.id", "client_id", ("CLIENT_ID",), "str", client=True),
    _Key("client.secret", "client_secret", ("CLIENT_SECRET",), "str", None, secret=True, client=True),
    _Key("client.scope", "client_scope", ("SCOPE",), "str", "openid profile email", client=True),
    _Key("client.audience", "client_audience", ("AUDIENCE",), "str", None, client=True),
    _Key("client.redirect_uri", "client_redirect_uri", ("REDIRECT_URI",), "url", "", client=True),
    _Key("client.post_login_redirect", "client_post_login_redirect", ("POST_LOGIN_REDIRECT",), "str", "/", client=True),
    _Key("client.post_logout_redirect", "client_post_logout_redirect", ("POST_LOGOUT_REDIRECT",), "str", "/", client=True),
    _Key("client.excluded_paths", "client_excluded_paths", ("EXCLUDED_PATHS",), "list", ("/docs", "/openapi.json", "/health"), client=True),
)
_BY_LOGICAL = {key.logical: key for key in _KEYS}
_CLIENT_REQUIRED = ("client.discovery_url", "client.id")


@runtime_checkable
class ConfigSource(Protocol):
    """Supplies raw strings for the logical keys it knows (never typed, defaulted or
    checked: ``Config`` does that). A source that raises refuses the configuration."""

    def resolve(self, keys: Sequence[str]) -> Mapping[str, str]: ...


class MappingSource:
    """A source of a mapping from logical key (``client.id``) to raw string."""

    def __init__(self, values: Mapping[str, str], *, name: str = "mapping") -> None:
        self._values = dict(values)
        self.name = name

    def resolve(self, keys: Sequence[str]) -> Mapping[str, str]:
        wanted = set(keys)
        return {key: value for key, value in self._values.items() if key in wanted}


class EnvSource:
    """The environment: each key's variable (then its aliases); client keys take ``prefix``.
    Read when resolved, never at import."""

    def __init__(self, *, prefix: str = "OIDC_", name: str = "env") -> None:
        self.prefix = prefix
        self.name = name

    def resolve(self, keys: Sequence[str]) -> Mapping[str, str]:
        found: dict[str, str] = {}
        for logical in keys:
            key = _BY_LOGICAL.get(logical)
            if key is None:
                continue
            for name in (f"{self.prefix}{n}" if key.client else n for n in key.env):
                if name in os.environ:
                    found[logical] = os.environ[name]
                    break
        return found


def _raw(chain: Sequence[ConfigSource], overrides: Mapping[str, str], issues: list[ConfigIssue]) -> dict[str, str]:
    raw = {key.logical: overrides[key.logical] for key in _KEYS if key.logical in overrides}
    remaining = [key.logical for key in _KEYS if key.logical not in raw]
    for source in chain:
        if not remaining:
            break
        name = getattr(source, "name", type(source).__name__)
        try:
            supplied = source.resolve(remaining)
        except Exception:  # noqa: BLE001 - a failing source refuses the configuration
            issues.append(ConfigIssue("CFG-004", (f"source:{name}",), f"source {name!r} failed to resolve"))
            continue
        for logical in list(remaining):
            if logical not in supplied:
                continue
            value = supplied[logical]
            remaining.remove(logical)
            if not isinstance(value, str):
                issues.append(
                    ConfigIssue("CFG-004", (f"source:{name}", logical), f"source {name!r} returned a non-string value for {logical!r}")
                )
                continue
            raw[logical] = value
    return raw


def _parse(key: _Key, raw: str, issues: list[ConfigIssue]) -> object:
    refuse = lambda message: issues.append(ConfigIssue("CFG-003", (key.logical,), message)) or _UNSET  # noqa: E731
    if key.kind == "list":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    text = raw.strip()
    if not text:
        return refuse("value is empty or whitespace-only")
    if key.kind == "str":
        return raw
    if key.kind == "url":
        parsed = urlparse(text)
        return text if parsed.scheme and parsed.netloc else refuse("value is not an absolute URL")
    try:
        number: float | int = int(text) if key.kind == "int" else float(text)
    except ValueError:
        return refuse("value is not a valid number")
    if key.kind == "float" and not math.isfinite(number):
        return refuse("value is not a finite number")
    if key.lo is not None and key.lo_exclusive and number <= key.lo:
        return refuse(f"value must be greater than {key.lo}")
    if key.lo is not None and not key.lo_exclusive and number < key.lo:
        return refuse(f"value is below the minimum {key.lo}")
    if key.hi is not None and number > key.hi:
        return refuse(f"value is above the maximum {key.hi}")
    return number


@dataclass(frozen=True)
class Config:
    """A checked, immutable configuration: ``Config.from_env()`` or ``Config.build(...)``."""

    _secret_fields: ClassVar[frozenset[str]] = frozenset({"client_secret"})

    http_timeout: float
    http_retry_max_attempts: int
    http_retry_base_delay: float
    jwks_max_size: int
    jwks_max_keys: int
    jwks_cache_ttl: float
    discovery_cache_ttl: float
    jwks_kid_miss_cooldown: float
    jwks_cache_max_entries: int
    discovery_cache_max_entries: int
    client_discovery_url: str | None
    client_id: str | None
    client_secret: Secret | None
    client_scope: str
    client_audience: str | None
    client_redirect_uri: str
    client_post_login_redirect: str
    client_post_logout_redirect: str
    client_excluded_paths: tuple[str, ...]

    @classmethod
    def from_env(
        cls, *, prefix: str = "OIDC_", group: str | None = None, client_auth_method: ClientAuthMethod = ClientAuthMethod.NONE
    ) -> Config:
        """From the environment alone (client keys with ``prefix``)."""
        return cls.build(sources=[EnvSource(prefix=prefix)], env=False, group=group, client_auth_method=client_auth_method)

    @classmethod
    def build(
        cls,
        *,
        sources: Sequence[ConfigSource] | None = None,
        overrides: Mapping[str, str] | None = None,
        env: bool = True,
        group: str | None = None,
        client_auth_method: ClientAuthMethod = ClientAuthMethod.NONE,
    ) -> Config:
        """``overrides`` (logical key to raw string) first, then ``sources`` in order, then the
        environment (``env``; default prefix). ``group="client"`` requires
        ``client.discovery_url`` and ``client.id`` (and ``client.secret`` when
        ``client_auth_method`` needs one); without it, client keys need
        ``client.discovery_url``. Raises ``ConfigError`` with every problem."""
        chain = list(sources or []) + ([EnvSource()] if env else [])
        issues: list[ConfigIssue] = []
        raw = _raw(chain, overrides or {}, issues)
        values: dict[str, object] = {}
        for key in _KEYS:
            if key.logical in raw:
                parsed = _parse(key, raw[key.logical], issues)
                if parsed is not _UNSET:
                    values[key.attr] = parsed
            elif key.default is not _UNSET:
                values[key.attr] = key.default
        if group == "client":
            issues.extend(
                ConfigIssue("CFG-001", (required,), f"required key {required!r} is missing")
                for required in _CLIENT_REQUIRED
                if _BY_LOGICAL[required].attr not in values and required not in raw
            )
            if client_auth_method.requires_secret and values.get("client_secret") is None:
                issues.append(
                    ConfigIssue(
                        "CFG-002",
                        ("client", "client.secret"),
                        f"client auth method {client_auth_method.value!r} requires client.secret",
                    )
                )
        elif any(logical.startswith("client.") for logical in raw) and "client.discovery_url" not in raw:
            issues.append(
                ConfigIssue("CFG-002", ("client", "client.discovery_url"), "client-group key present without client.discovery_url")
            )
        if isinstance(values.get("client_secret"), str):
            values["client_secret"] = Secret(values["client_secret"])  # type: ignore[arg-type]
        if issues:
            raise ConfigError(issues)
        for key in _KEYS:
            values.setdefault(key.attr, None if key.default is _UNSET else key.default)
        if values.get("client_audience") is None:
            values["client_audience"] = values.get("client_id")
        return cls(**values)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        shown = (
            f"{f.name}={REDACTED!r}" if f.name in self._secret_fields and getattr(self, f.name) is not None else f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Config({', '.join(shown)})"


__all__ = ["ClientAuthMethod", "Config", "ConfigError", "ConfigIssue", "ConfigSource", "EnvSource", "MappingSource", "Secret"]
