"""The native API on the Rust core: validation with the testkit provider, typed exceptions
with their stable kind, one fetch for a cold burst and for a rotation burst of asyncio
callers, several event loops, and the GIL released while keys are awaited (threads validating in parallel: scripts/bench-python)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

import identity_model as im
from conftest import AUDIENCE, Key, claims_for


def test_validates_and_raises_typed_exceptions(provider, keys):
    authority = im.Authority(provider.issuer, AUDIENCE, allow_http_on_loopback=True)
    claims = authority.validate(keys["ES256"].sign(claims_for(provider.issuer)))
    assert claims["sub"] == "alice" and claims["aud"] == AUDIENCE
    with pytest.raises(im.TokenExpiredException) as expired:
        authority.validate(keys["RS256"].sign(claims_for(provider.issuer, exp=int(time.time()) - 600)))
    assert (expired.value.kind, expired.value.fault) == ("token_expired", "token")
    with pytest.raises(im.InvalidAudienceException) as audience:
        authority.validate(keys["RS256"].sign(claims_for(provider.issuer, aud="https://other.example")))
    assert audience.value.claim == "aud"
    with pytest.raises(im.ConfigurationException):
        im.Authority(provider.issuer, None)
    with pytest.raises(im.ConfigurationException):
        im.Authority("http://example.com", AUDIENCE)  # HTTP off loopback


def test_every_kind_maps_into_the_hierarchy_by_its_fault():
    parents = {
        "token": im.ValidationException,
        "provider": im.NetworkException,
        "store": im.NetworkException,
        "configuration": im.ConfigurationException,
    }
    kinds = im._native.error_kinds()
    assert len(kinds) >= 35
    for kind, fault in kinds:
        error = im.exceptions.from_native(kind, fault, "m", None)
        assert isinstance(error, parents[fault]), (kind, fault, type(error))
        assert error.kind == kind


def test_keys_unavailable_is_a_network_exception():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    authority = im.Authority(f"http://127.0.0.1:{port}", AUDIENCE, allow_http_on_loopback=True)
    with pytest.raises(im.NetworkException) as down:
        authority.validate(Key("RS256").sign(claims_for(f"http://127.0.0.1:{port}")))
    assert (down.value.kind, down.value.fault) == ("keys_unavailable", "provider")


def test_a_cold_burst_of_50_async_validations_fetches_once(mini_op, keys):
    authority = im.Authority(mini_op.issuer, AUDIENCE, allow_http_on_loopback=True)
    token = keys["RS256"].sign(claims_for(mini_op.issuer))

    async def burst():
        return await asyncio.gather(*(authority.validate_async(token) for _ in range(50)))

    results = asyncio.run(burst())
    assert all(r["sub"] == "alice" for r in results)
    assert mini_op.counts == {"discovery": 1, "jwks": 1}


def test_a_rotation_burst_of_50_fetches_the_key_set_once(mini_op, keys):
    authority = im.Authority(mini_op.issuer, AUDIENCE, allow_http_on_loopback=True)
    authority.validate(keys["RS256"].sign(claims_for(mini_op.issuer)))
    rotated = Key("RS256")
    mini_op.replace_keys([rotated])
    token = rotated.sign(claims_for(mini_op.issuer))
    before = mini_op.counts["jwks"]

    async def burst():
        return await asyncio.gather(*(authority.validate_async(token) for _ in range(50)))

    assert all(r["sub"] == "alice" for r in asyncio.run(burst()))
    assert mini_op.counts["jwks"] - before == 1


def test_one_authority_serves_several_event_loops_and_threads(mini_op, keys):
    authority = im.Authority(mini_op.issuer, AUDIENCE, allow_http_on_loopback=True)
    token = keys["RS256"].sign(claims_for(mini_op.issuer))
    first = asyncio.run(authority.validate_async(token))
    second = asyncio.run(authority.validate_async(token))
    loop_in_thread = []
    thread = threading.Thread(target=lambda: loop_in_thread.append(asyncio.run(authority.validate_async(token))))
    thread.start()
    thread.join()
    assert first == second == loop_in_thread[0]
    assert mini_op.counts["jwks"] == 1


def test_a_blocking_validation_waits_for_keys_without_the_gil(mini_op, keys):
    """The key set is served by Python threads (MiniOP): a synchronous cold validation that
    held the GIL while it waited for them would never get its answer."""
    authority = im.Authority(mini_op.issuer, AUDIENCE, allow_http_on_loopback=True)
    assert authority.validate(keys["RS256"].sign(claims_for(mini_op.issuer)))["sub"] == "alice"
    assert mini_op.counts == {"discovery": 1, "jwks": 1}


def test_token_manager_gets_one_token_for_many_callers_and_it_validates(provider):
    manager = im.TokenManager(
        provider.issuer, "demo-service", "demo-secret", ["api:read"], [AUDIENCE], allow_http_on_loopback=True
    )
    tokens = []
    threads = [threading.Thread(target=lambda: tokens.append(manager.get()["access_token"])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def more():
        return await asyncio.gather(*(manager.get_async() for _ in range(8)))

    tokens += [r["access_token"] for r in asyncio.run(more())]
    assert len(set(tokens)) == 1, "one token for every caller"
    authority = im.Authority(provider.issuer, AUDIENCE, allow_http_on_loopback=True, token_type="at+jwt")
    assert authority.validate(tokens[0])["client_id"] == "demo-service"
    with pytest.raises(im.PyIdentityModelException) as refused:
        im.TokenManager(provider.issuer, "demo-service", "wrong", ["api:read"], allow_http_on_loopback=True).get()
    assert refused.value.kind == "oauth_error"


def test_uvloop_drives_validate_async_too(mini_op, keys):
    uvloop = pytest.importorskip("uvloop", reason="uvloop is installed by scripts/test")
    authority = im.Authority(mini_op.issuer, AUDIENCE, allow_http_on_loopback=True)
    token = keys["RS256"].sign(claims_for(mini_op.issuer))

    async def burst():
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        return await asyncio.gather(*(authority.validate_async(token) for _ in range(20)))

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(burst())
    assert all(r["sub"] == "alice" for r in results)
    assert mini_op.counts["jwks"] == 1
