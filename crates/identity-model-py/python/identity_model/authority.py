"""The native classes with their coroutine methods."""

from __future__ import annotations

from ._native import Authority as _NativeAuthority
from ._native import TokenManager as _NativeTokenManager


class Authority(_NativeAuthority):
    """An issuer trusted through discovery: ``validate(token)`` (GIL released) and
    ``await validate_async(token)`` (driven by the Rust core's async runtime, from any event
    loop). See ``identity_model._native.Authority`` for the arguments."""

    __slots__ = ()

    async def validate_async(self, token: str) -> dict:
        """Validates ``token`` without blocking the event loop; returns its claims."""
        return await self.validate_future(token)


class TokenManager(_NativeTokenManager):
    """Client-credentials tokens, cached and refreshed before they expire: ``get()`` and
    ``await get_async()`` return the token response as a ``dict``. See
    ``identity_model._native.TokenManager`` for the arguments."""

    __slots__ = ()

    async def get_async(self) -> dict:
        """A valid token response without blocking the event loop."""
        return await self.get_future()
