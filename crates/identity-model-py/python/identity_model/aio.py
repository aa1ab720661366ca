"""The ``asyncio`` API: the same functions as coroutines, driven by the Rust core's async
runtime (not a thread pool); usable from several event loops and from uvloop."""

from __future__ import annotations

from .discovery import get_discovery_document_async as get_discovery_document
from .jwks import get_jwks_async as get_jwks
from .validation import clear_discovery_cache as _clear_discovery_cache
from .validation import clear_jwks_cache as _clear_jwks_cache
from .validation import validate_token_async as validate_token


async def clear_discovery_cache() -> None:
    """Forgets cached documents and keys (awaited, as in py-identity-model's ``aio``)."""
    _clear_discovery_cache()


async def clear_jwks_cache() -> None:
    """Forgets cached documents and keys."""
    _clear_jwks_cache()


__all__ = ["clear_discovery_cache", "clear_jwks_cache", "get_discovery_document", "get_jwks", "validate_token"]
