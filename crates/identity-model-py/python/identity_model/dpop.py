"""py-identity-model's DPoP helpers (RFC 9449) on the Rust core: the key pair lives in Rust
(``_native.DpopKey``), proofs are signed there."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import urlparse

from . import _native

_SUPPORTED = frozenset({"ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"})


class DPoPKey:
    """A DPoP key pair. ``DPoPKey(algorithm="ES256")`` generates one (ES256/384/512, RS256,
    PS256, EdDSA); ``DPoPKey.from_jwk(jwk)`` reads a stored one (``private_jwk()``)."""

    __slots__ = ("_native",)

    def __init__(self, algorithm: str = "ES256", *, _key: Any = None) -> None:
        if _key is None:
            if algorithm not in _SUPPORTED:
                raise ValueError(f"Unsupported DPoP algorithm: {algorithm}. Supported: {sorted(_SUPPORTED)}")
            _key = _native.DpopKey(algorithm)
        self._native = _key

    @classmethod
    def from_jwk(cls, jwk: dict | str, algorithm: str | None = None) -> DPoPKey:
        """A key from its private JWK."""
        text = jwk if isinstance(jwk, str) else json.dumps(jwk)
        return cls(_key=_native.DpopKey.from_jwk(text, algorithm))

    @property
    def algorithm(self) -> str:
        """The signing algorithm."""
        return self._native.algorithm

    @property
    def public_jwk(self) -> dict:
        """The public JWK: the ``jwk`` header of every proof."""
        return self._native.public_jwk

    @property
    def jwk_thumbprint(self) -> str:
        """The RFC 7638 thumbprint (``dpop_jkt``; a bound token's ``cnf.jkt``)."""
        return self._native.jwk_thumbprint

    def private_jwk(self) -> dict | None:
        """The private JWK, to store the key (``None`` when it cannot be exported)."""
        return self._native.private_jwk()

    def __repr__(self) -> str:
        return repr(self._native)


def jwk_thumbprint(jwk: dict | str) -> str:
    """The RFC 7638 thumbprint of a JWK (public or private): compare it with a bound token's
    ``cnf.jkt``. Not in py-identity-model."""
    return _native.jwk_thumbprint(jwk if isinstance(jwk, str) else json.dumps(jwk))


def generate_dpop_key(algorithm: str = "ES256") -> DPoPKey:
    """A new DPoP key pair."""
    return DPoPKey(algorithm)


def compute_ath(access_token: str) -> str:
    """The ``ath`` of ``access_token``: base64url(SHA-256(token))."""
    if not access_token or not access_token.strip():
        raise ValueError("access_token must not be empty")
    try:
        data = access_token.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("access_token must contain only ASCII characters") from None
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def create_dpop_proof(
    key: DPoPKey, method: str, uri: str, access_token: str | None = None, nonce: str | None = None
) -> str:
    """A signed proof for ``method`` and ``uri`` (``htu`` without query and fragment), with
    ``ath`` when ``access_token`` is given and the server's ``nonce``."""
    if not method or not method.strip():
        raise ValueError("method must not be empty")
    if not uri or not uri.strip():
        raise ValueError("uri must not be empty")
    parsed = urlparse(uri)
    if not parsed.scheme or not parsed.netloc:
        raise ValueError("uri must be an absolute HTTP URI")
    return key._native.proof(method.upper(), uri, access_token or None, nonce or None)


def build_dpop_headers(proof: str, access_token: str | None = None) -> dict[str, str]:
    """``{"DPoP": proof}``, with ``Authorization: DPoP <token>`` when a token is given."""
    if not proof or not proof.strip():
        raise ValueError("proof must not be empty")
    headers = {"DPoP": proof}
    if access_token and access_token.strip():
        headers["Authorization"] = f"DPoP {access_token}"
    return headers


def extract_dpop_nonce(response: Any) -> str | None:
    """The server's ``DPoP-Nonce`` when ``response`` (httpx-like: ``status_code``,
    ``headers``, ``json()``) asks for a proof with it (``use_dpop_nonce``, RFC 9449 section
    8 and 9), else ``None``."""
    if getattr(response, "status_code", None) not in (400, 401):
        return None
    nonce = response.headers.get("DPoP-Nonce")
    if not nonce:
        return None
    if "use_dpop_nonce" in (response.headers.get("WWW-Authenticate") or ""):
        return nonce
    try:
        body = response.json()
    except Exception:  # noqa: BLE001 - any unreadable body is "not asked"
        return None
    return nonce if isinstance(body, dict) and body.get("error") == "use_dpop_nonce" else None


__all__ = [
    "DPoPKey",
    "build_dpop_headers",
    "compute_ath",
    "create_dpop_proof",
    "extract_dpop_nonce",
    "generate_dpop_key",
    "jwk_thumbprint",
]
