"""An ASGI middleware (Starlette, FastAPI, any ASGI app) that admits only requests with a
valid bearer token, answering like the Rust tower layer: 401 with an RFC 6750
``WWW-Authenticate: Bearer`` challenge (``invalid_token`` and its description when a token
was refused), 403 ``insufficient_scope`` naming the scopes, 400 ``invalid_request`` for a
malformed ``Authorization`` header, 503 with ``Retry-After`` when no keys can be had (the
provider's fault, not the token's), 500 for a configuration error; ``X-Auth-Error`` carries the
stable kind. The claims reach the app as ``scope["state"]["claims"]`` (Starlette's
``request.state.claims``)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

from .exceptions import ConfigurationException, NetworkException, PyIdentityModelException

RETRY_AFTER_SECS = "5"

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def _quoted(value: str) -> str:
    """An RFC 7230 quoted-string: printable ASCII kept, ``"`` and ``\\`` escaped, the rest
    replaced by ``?``, cut to 200 characters."""
    out = []
    for c in value[:200]:
        if c in '"\\':
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append("?")
    return '"' + "".join(out) + '"'


def bearer_challenge(realm: str, error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    """A ``Bearer`` challenge: ``realm``, then ``error``, ``error_description``, ``scope``."""
    params = [f"realm={_quoted(realm)}"]
    if error is not None:
        params.append(f"error={_quoted(error)}")
    if description is not None:
        params.append(f"error_description={_quoted(description)}")
    if scope is not None:
        params.append(f"scope={_quoted(scope)}")
    return "Bearer " + ", ".join(params)


class BearerMiddleware:
    """``BearerMiddleware(app, authority, realm="api", required_scopes=(), exclude_paths=())``.

    ``authority`` is an :class:`identity_model.Authority` (or anything with an awaitable
    ``validate_async(token)``). ``required_scopes`` must all be in the token's ``scope``;
    paths in ``exclude_paths`` (exact) pass without a token. Non-HTTP scopes pass through.
    """

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        authority: Any,
        realm: str = "api",
        required_scopes: Iterable[str] = (),
        exclude_paths: Iterable[str] = (),
    ):
        self.app = app
        self.authority = authority
        self.realm = realm
        self.required_scopes = tuple(required_scopes)
        self.exclude_paths = frozenset(exclude_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("path") in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope.get("headers", []) if k.lower() == b"authorization"]
        if not values:
            await self._refuse(send, 401, "missing_token", bearer_challenge(self.realm))
            return
        token = self._bearer_token(values)
        if token is None:
            why = "the Authorization header is not one Bearer token"
            await self._refuse(send, 400, "invalid_request", bearer_challenge(self.realm, "invalid_request", why))
            return
        try:
            claims = await self.authority.validate_async(token)
        except NetworkException as e:
            await self._refuse(send, 503, e.kind or "keys_unavailable", None, retry=True)
            return
        except ConfigurationException as e:
            await self._refuse(send, 500, e.kind or "invalid_config", None)
            return
        except PyIdentityModelException as e:
            challenge = bearer_challenge(self.realm, "invalid_token", e.message)
            await self._refuse(send, 401, e.kind or "invalid_token", challenge)
            return
        granted = set(str(claims.get("scope", "")).split())
        missing = [s for s in self.required_scopes if s not in granted]
        if missing:
            wanted = " ".join(self.required_scopes)
            challenge = bearer_challenge(
                self.realm, "insufficient_scope", f"the token lacks a required scope ({wanted})", wanted
            )
            await self._refuse(send, 403, "insufficient_scope", challenge)
            return
        scope.setdefault("state", {})["claims"] = claims
        await self.app(scope, receive, send)

    @staticmethod
    def _bearer_token(values: list[bytes]) -> str | None:
        if len(values) != 1:
            return None
        try:
            text = values[0].decode("ascii")
        except UnicodeDecodeError:
            return None
        scheme, _, token = text.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            return None
        return token

    async def _refuse(self, send: Send, status: int, kind: str, challenge: str | None, retry: bool = False) -> None:
        headers = [(b"x-auth-error", kind.encode("ascii", "replace")), (b"content-length", b"0")]
        if challenge is not None:
            headers.append((b"www-authenticate", challenge.encode("ascii", "replace")))
        if retry:
            headers.append((b"retry-after", RETRY_AFTER_SECS.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


__all__ = ["BearerMiddleware", "bearer_challenge"]
