"""py-identity-model's ``get_jwks``: ``JwksRequest``, ``JwksResponse`` (``keys`` guarded on a
failed response) and ``JsonWebKey``. The key set is fetched and checked by the Rust core
(size and key-count limits, media type, each key's parameters); keys it sets aside (an
unsupported type, a weak RSA modulus, private members) are not returned."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

from . import _native
from .exceptions import ConfigurationException, PyIdentityModelException
from .responses import BaseRequest, _GuardedResponse
from .validation import DiscoveryPolicy

_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class JsonWebKeyParameterNames(Enum):
    """JWK member names (RFC 7517, RFC 7518)."""

    KTY = "kty"
    USE = "use"
    KEY_OPS = "key_ops"
    ALG = "alg"
    KID = "kid"
    X5U = "x5u"
    X5C = "x5c"
    X5T = "x5t"
    X5T_S256 = "x5t#S256"
    CRV = "crv"
    X = "x"
    Y = "y"
    D = "d"
    N = "n"
    E = "e"
    P = "p"
    Q = "q"
    DP = "dp"
    DQ = "dq"
    QI = "qi"
    OTH = "oth"
    K = "k"

    def __str__(self) -> str:
        return self.value


class JsonWebAlgorithmsKeyTypes(Enum):
    """Key types (``kty``) as py-identity-model names them."""

    EllipticCurve = "EC"
    RSA = "RSA"
    Octet = "oct"


@dataclass
class JsonWebKey:
    """One JWK (RFC 7517/7518 members; ``x5t#S256`` is ``x5t_s256``)."""

    kty: str
    use: str | None = None
    key_ops: list[str] | None = None
    alg: str | None = None
    kid: str | None = None
    x5u: str | None = None
    x5c: list[str] | None = None
    x5t: str | None = None
    x5t_s256: str | None = None
    crv: str | None = None
    x: str | None = None
    y: str | None = None
    d: str | None = None
    n: str | None = None
    e: str | None = None
    p: str | None = None
    q: str | None = None
    dp: str | None = None
    dq: str | None = None
    qi: str | None = None
    oth: list[dict[str, str]] | None = None
    k: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @staticmethod
    def from_dict(members: dict) -> "JsonWebKey":
        names = {f.name for f in fields(JsonWebKey)} - {"extra"}
        known = {("x5t_s256" if k == "x5t#S256" else k): v for k, v in members.items()}
        return JsonWebKey(
            **{k: v for k, v in known.items() if k in names},
            extra={k: v for k, v in members.items() if k not in names and k != "x5t#S256"},
        )

    @staticmethod
    def from_json(text: str) -> "JsonWebKey":
        return JsonWebKey.from_dict(json.loads(text))

    def as_dict(self) -> dict:
        out = {("x5t#S256" if f.name == "x5t_s256" else f.name): getattr(self, f.name) for f in fields(self)}
        out.pop("extra")
        out.update(self.extra)
        return {k: v for k, v in out.items() if v is not None}

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    @property
    def has_private_key(self) -> bool:
        return any(getattr(self, name) is not None for name in _PRIVATE_MEMBERS)


_CURVES = ("P-256", "P-384", "P-521", "secp256k1")
_KEY_OPS = ("sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits")


def jwks_from_dict(keys_dict: dict) -> JsonWebKey:
    """One JWK from its members, checked as py-identity-model's ``JsonWebKey`` checks them
    (``ConfigurationException``): ``kty`` present; an EC key's ``crv`` (a known curve), ``x``
    and ``y``, an RSA key's ``n`` and ``e``, an ``oct`` key's ``k``; ``use`` ``sig``, ``enc`` or
    an https URI; known ``key_ops``, never beside ``use``. (Keys from ``get_jwks`` are checked
    by the Rust core instead.)"""
    key = JsonWebKey.from_dict({**keys_dict, "kty": keys_dict.get("kty") or ""})
    problem = None
    if not key.kty:
        problem = "The 'kty' (Key Type) parameter is required"
    elif key.kty == "EC" and not all([key.crv, key.x, key.y]):
        problem = "EC keys require 'crv', 'x', and 'y' parameters"
    elif key.kty == "EC" and key.crv not in _CURVES:
        problem = f"Unsupported curve: {key.crv}. Supported curves: {list(_CURVES)}"
    elif key.kty == "RSA" and not all([key.n, key.e]):
        problem = "RSA keys require 'n' and 'e' parameters"
    elif key.kty == "oct" and key.k is None:
        problem = "Symmetric keys require 'k' parameter"
    elif key.use is not None and key.use not in ("sig", "enc") and not key.use.startswith("https://"):
        problem = f"Invalid 'use' parameter: {key.use}. Must be 'sig', 'enc', or a URI"
    elif key.key_ops is not None and any(op not in _KEY_OPS for op in key.key_ops):
        op = next(op for op in key.key_ops if op not in _KEY_OPS)
        problem = f"Invalid key operation: {op}. Valid operations: {list(_KEY_OPS)}"
    elif key.use is not None and key.key_ops is not None:
        problem = "The 'use' and 'key_ops' parameters are mutually exclusive"
    if problem:
        raise ConfigurationException(problem)
    return key


@dataclass
class JwksRequest(BaseRequest):
    """Where the key set is, and the policy for its URL."""

    address: str
    policy: DiscoveryPolicy | None = None


class JwksResponse(_GuardedResponse):
    """The usable keys, or why they could not be had."""

    _guarded_fields = frozenset({"keys"})

    def __init__(
        self,
        is_successful: bool,
        error: str | None = None,
        *,
        keys: list[JsonWebKey] | None = None,
        cache_control: str | None = None,
    ):
        object.__setattr__(self, "is_successful", is_successful)
        object.__setattr__(self, "error", error)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "cache_control", cache_control)


def get_jwks(request: JwksRequest, http_client: Any = None) -> JwksResponse:
    """Fetches and checks the key set at ``request.address``; never raises for a provider's
    failure. ``http_client`` is accepted and ignored."""
    policy = request.policy or DiscoveryPolicy()
    try:
        text, cache_control = _native.fetch_jwks(request.address, policy.allow_http_on_loopback)
    except PyIdentityModelException as e:
        return JwksResponse(False, e.message)
    return JwksResponse(True, keys=[JsonWebKey.from_dict(k) for k in json.loads(text)], cache_control=cache_control)


async def get_jwks_async(request: JwksRequest, http_client: Any = None) -> JwksResponse:
    """``get_jwks`` as a coroutine (``identity_model.aio``)."""
    policy = request.policy or DiscoveryPolicy()
    try:
        text, cache_control = await _native.fetch_jwks_future(request.address, policy.allow_http_on_loopback)
    except PyIdentityModelException as e:
        return JwksResponse(False, e.message)
    return JwksResponse(True, keys=[JsonWebKey.from_dict(k) for k in json.loads(text)], cache_control=cache_control)


__all__ = ["JsonWebKey", "JwksRequest", "JwksResponse", "get_jwks"]
