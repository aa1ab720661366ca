"""The ASGI middleware, driven as an ASGI server would drive it: each refusal with its
status, challenge and kind, like the Rust tower layer; the claims handed to the app."""

from __future__ import annotations

import asyncio
import socket

import identity_model as im
from conftest import AUDIENCE, Key, claims_for
from identity_model.asgi import BearerMiddleware


async def app(scope, receive, send):
    body = scope["state"]["claims"]["sub"].encode() if "state" in scope else b"open"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def call(middleware, path="/orders", authorization: list[bytes] | None = None):
    headers = [(b"authorization", value) for value in (authorization or [])]
    scope = {"type": "http", "path": path, "headers": headers}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, sent[1]["body"]


def test_answers_like_the_tower_layer(mini_op, keys):
    authority = im.Authority(mini_op.issuer, AUDIENCE, allow_http_on_loopback=True)
    middleware = BearerMiddleware(app, authority, required_scopes=["read"], exclude_paths=["/health"])
    good = keys["RS256"].sign(claims_for(mini_op.issuer)).encode()

    assert call(middleware, authorization=[b"Bearer " + good]) == (200, {}, b"alice")
    assert call(middleware, path="/health")[0] == 200

    status, headers, _ = call(middleware)
    assert (status, headers["www-authenticate"], headers["x-auth-error"]) == (401, 'Bearer realm="api"', "missing_token")

    status, headers, _ = call(middleware, authorization=[b"Bearer " + good, b"Bearer " + good])
    assert (status, headers["x-auth-error"]) == (400, "invalid_request")

    expired = keys["RS256"].sign(claims_for(mini_op.issuer, exp=1)).encode()
    status, headers, _ = call(middleware, authorization=[b"Bearer " + expired])
    assert (status, headers["x-auth-error"]) == (401, "token_expired")
    assert headers["www-authenticate"].startswith('Bearer realm="api", error="invalid_token", error_description=')

    no_scope = keys["RS256"].sign(claims_for(mini_op.issuer, scope="write")).encode()
    status, headers, _ = call(middleware, authorization=[b"Bearer " + no_scope])
    assert (status, headers["x-auth-error"]) == (403, "insufficient_scope")
    assert 'scope="read"' in headers["www-authenticate"]


def test_no_keys_is_503_with_retry_after_never_401():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    issuer = f"http://127.0.0.1:{port}"
    middleware = BearerMiddleware(app, im.Authority(issuer, AUDIENCE, allow_http_on_loopback=True))
    token = Key("RS256").sign(claims_for(issuer)).encode()
    status, headers, _ = call(middleware, authorization=[b"Bearer " + token])
    assert (status, headers["retry-after"], headers["x-auth-error"]) == (503, "5", "keys_unavailable")
    assert "www-authenticate" not in headers
