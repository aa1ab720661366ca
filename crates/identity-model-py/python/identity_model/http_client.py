"""py-identity-model's managed HTTP clients, kept so that code passing ``http_client=`` runs
unchanged: every function here accepts the argument and ignores it, because requests go
through the Rust core's own pooled clients (one per settings; timeouts, CA bundle and
retries from the environment as py-identity-model reads them). An ``HTTPClient`` only keeps
py-identity-model's lifecycle rules (a wrapped client is not owned; closed means closed)."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class HTTPClient:
    """Accepted for compatibility; the Rust core sends the requests. ``timeout`` and
    ``verify`` beside an existing ``client`` are a ``ValueError``, as in py-identity-model."""

    def __init__(self, client: Any = None, timeout: float | None = None, verify: bool | str | None = None) -> None:
        if client is not None and (timeout is not None or verify is not None):
            raise ValueError("timeout and verify cannot be specified when wrapping an existing client")
        self._client = client
        self._owned = client is None
        self._closed = False

    @property
    def client(self) -> Any:
        """The wrapped client (``None`` when none was given: requests never use one)."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} has been closed")
        return self._client

    def close(self) -> None:
        """Closes an owned client. Idempotent."""
        if not self._closed and self._owned and self._client is not None:
            self._client.close()
        self._closed = True

    def __enter__(self) -> HTTPClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AsyncHTTPClient(HTTPClient):
    """``HTTPClient`` for ``identity_model.aio`` (``await close()``, ``async with``)."""

    async def close(self) -> None:  # type: ignore[override]
        self._closed = True

    async def __aenter__(self) -> AsyncHTTPClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
