"""The native ``Authority`` with its coroutine method."""

from __future__ import annotations

from ._native import Authority as _NativeAuthority


class Authority(_NativeAuthority):
    """An issuer trusted through discovery: ``validate(token)`` (GIL released) and
    ``await validate_async(token)`` (driven by the Rust core's async runtime, from any event
    loop). See ``identity_model._native.Authority`` for the arguments."""

    __slots__ = ()

    async def validate_async(self, token: str) -> dict:
        """Validates ``token`` without blocking the event loop; returns its claims."""
        return await self.validate_future(token)
