"""Differential test against py-identity-model 4.1.1 (from PyPI): the same tokens and
configurations give the same verdict (exception class, or the same claims), and every
difference is a row of the difference table in the package README."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest

import identity_model as im

pim = pytest.importorskip("py_identity_model", reason="py-identity-model 4.1.1 is installed by scripts/test")

from conftest import AUDIENCE, Key, claims_for  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def cases(provider, keys) -> dict[str, tuple[str, dict]]:
    """name -> (token, TokenValidationConfig keyword arguments)."""
    rs, es = keys["RS256"], keys["ES256"]
    iss = provider.issuer
    now = int(time.time())
    valid = rs.sign(claims_for(iss))
    head, body, sig = valid.split(".")
    tampered_claims = json.dumps(claims_for(iss, sub="mallory")).encode()
    disco = {"perform_disco": True, "audience": AUDIENCE}

    def refuse_non_admins(claims: dict) -> None:
        if claims.get("role") != "admin":
            raise ValueError("not an admin")

    return {
        "valid_rs256": (valid, disco),
        "valid_es256": (es.sign(claims_for(iss)), disco),
        "valid_with_algorithms": (valid, {**disco, "algorithms": ["RS256"]}),
        "expired": (rs.sign(claims_for(iss, exp=now - 120)), disco),
        "expired_within_leeway": (rs.sign(claims_for(iss, exp=now - 30)), {**disco, "leeway": 60}),
        "not_yet_valid": (rs.sign(claims_for(iss, nbf=now + 600)), disco),
        "wrong_audience": (rs.sign(claims_for(iss, aud="https://other.example")), disco),
        "wrong_issuer": (rs.sign(claims_for("https://evil.example")), disco),
        "tampered_payload": (f"{head}.{b64(tampered_claims)}.{sig}", disco),
        "junk_signature": (f"{head}.{body}.{b64(b'x' * 256)}", disco),
        "signature_not_base64url": (f"{head}.{body}.!!!***", disco),
        "alg_none": (unsigned({"alg": "none", "typ": "JWT"}, claims_for(iss)), disco),
        "unknown_kid": (Key("RS256").sign(claims_for(iss)), disco),
        "algorithm_not_listed": (es.sign(claims_for(iss)), {**disco, "algorithms": ["RS256"]}),
        "missing_exp": (rs.sign(claims_for(iss, exp=None)), disco),
        "no_audience_configured": (valid, {"perform_disco": True}),
        "subject_matches": (valid, {**disco, "subject": "alice"}),
        "subject_differs": (valid, {**disco, "subject": "bob"}),
        "required_claim_missing": (valid, {**disco, "options": {"require": ["jti"]}}),
        "verify_exp_disabled": (valid, {**disco, "options": {"verify_exp": False}}),
        "allowed_issuers_excludes": (valid, {**disco, "allowed_issuers": ["https://other.example"]}),
        "not_a_jwt": ("not-a-jwt", disco),
        "claims_validator_refuses": (valid, {**disco, "claims_validator": refuse_non_admins}),
        "claims_validator_accepts": (
            rs.sign(claims_for(iss, role="admin")),
            {**disco, "claims_validator": refuse_non_admins},
        ),
        "manual_key": (
            valid,
            {"perform_disco": False, "key": rs.public_jwk, "algorithms": ["RS256"], "audience": AUDIENCE, "issuer": iss},
        ),
        "manual_key_wrong_issuer": (
            valid,
            {"perform_disco": False, "key": rs.public_jwk, "algorithms": ["RS256"], "audience": AUDIENCE, "issuer": "x"},
        ),
    }


def verdict(lib, token: str, config: dict, address: str):
    """("ok", claims) or (exception class name, None)."""
    try:
        claims = lib.validate_token(token, lib.TokenValidationConfig(**config), address)
        return "ok", claims
    except Exception as e:  # noqa: BLE001 - the class is the verdict
        return type(e).__name__, None


def table() -> dict[str, tuple[str, str]]:
    """The README's difference table: case -> (py-identity-model verdict, ours)."""
    rows = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|\s*`?([A-Za-z_.]+)`?\s*\|\s*`?([A-Za-z_.]+)`?\s*\|", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def test_same_verdicts_or_a_listed_difference(provider, keys):
    # Rows of the other tests: discovery here below, the rest in test_differential_protocol.py.
    others = ("discovery_", "request_", "id_token_", "logout_token_", "pkce_")
    listed = {name: row for name, row in table().items() if not name.startswith(others)}
    assert listed, "the README has a difference table"
    seen_differences = {}
    for name, (token, config) in cases(provider, keys).items():
        theirs = verdict(pim, token, config, provider.discovery)
        ours = verdict(im, token, config, provider.discovery)
        if theirs[0] == ours[0]:
            assert theirs[1] == ours[1], f"{name}: same verdict, other claims"
            assert name not in listed, f"{name} is listed as a difference but both say {ours[0]}"
            continue
        seen_differences[name] = (theirs[0], ours[0])
    unlisted = {n: d for n, d in seen_differences.items() if listed.get(n) != d}
    assert not unlisted, f"differences the README does not list (case: (theirs, ours)): {unlisted}"
    stale = set(listed) - set(seen_differences)
    assert not stale, f"README rows that are not differences (any more): {stale}"


def discovery_verdict(lib, address: str):
    response = lib.get_discovery_document(lib.DiscoveryDocumentRequest(address=address))
    if response.is_successful:
        return "ok", (response.issuer, response.jwks_uri, response.token_endpoint)
    return response.error_kind.name, response.status_code


def test_get_discovery_document_agrees_or_differs_as_listed(provider, mini_op):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    cases = {
        "discovery_valid": provider.discovery,
        "discovery_valid_mini": mini_op.discovery,
        "discovery_down": f"http://127.0.0.1:{free}/.well-known/openid-configuration",
        "discovery_not_found": f"{mini_op.issuer}/tenant/.well-known/openid-configuration",
        "discovery_https_required": "http://example.com/.well-known/openid-configuration",
        "discovery_not_well_known": f"{mini_op.issuer}/metadata.json",
    }
    listed = {name: row for name, row in table().items() if name.startswith("discovery_")}
    seen = {}
    for name, address in cases.items():
        theirs, ours = discovery_verdict(pim, address), discovery_verdict(im, address)
        if theirs == ours:
            assert name not in listed, f"{name} is listed as a difference but both say {ours}"
        else:
            seen[name] = (theirs[0], ours[0])
    assert {n: d for n, d in seen.items() if listed.get(n) != d} == {}, seen
    assert set(listed) - set(seen) == set(), "README rows that are not differences (any more)"
    failed = im.get_discovery_document(im.DiscoveryDocumentRequest(address=cases["discovery_not_found"]))
    with pytest.raises(im.FailedResponseAccessError):
        _ = failed.issuer
    ok = im.get_discovery_document(im.DiscoveryDocumentRequest(address=provider.discovery))
    with pytest.raises(im.SuccessfulResponseAccessError):
        _ = ok.error


def test_aio_get_discovery_document(provider):
    import asyncio

    from identity_model import aio

    response = asyncio.run(aio.get_discovery_document(im.DiscoveryDocumentRequest(address=provider.discovery)))
    assert response.is_successful and response.issuer == provider.issuer


def jwks_verdict(lib, address: str):
    response = lib.get_jwks(lib.JwksRequest(address=address))
    if response.is_successful:
        return "ok", sorted((k.kid, k.kty, k.has_private_key) for k in response.keys)
    return "failed", None


def test_get_jwks_agrees(provider, mini_op):
    import asyncio

    from identity_model import aio

    for address in (f"{provider.issuer}/jwks", f"{mini_op.issuer}/jwks", f"{mini_op.issuer}/missing"):
        theirs, ours = jwks_verdict(pim, address), jwks_verdict(im, address)
        assert theirs == ours, (address, theirs, ours)
    response = asyncio.run(aio.get_jwks(im.JwksRequest(address=f"{mini_op.issuer}/jwks")))
    assert response.is_successful and response.cache_control == "max-age=300"
    assert [k.kid for k in response.keys] == [k.kid for k in mini_op.keys]
    failed = im.get_jwks(im.JwksRequest(address=f"{mini_op.issuer}/missing"))
    with pytest.raises(im.FailedResponseAccessError):
        _ = failed.keys
