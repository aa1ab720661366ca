"""The Python API against panva's oidc-provider (tests/interop/provider.mjs, installed by
``npm ci`` there): discovery, client credentials (secret and private_key_jwt) with the
access token validated sync, ``aio`` and natively, the code flow with PKCE (plain and
pushed, RFC 9207 ``iss``) with the ID token checked and userinfo, DPoP with the provider's
required nonces, the device flow, revocation. Without node or the package the tests skip
loudly; under CI they fail."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import identity_model as im
from identity_model import aio

from conftest import REPO, Key, start_peer, stop_process

INTEROP = REPO / "tests" / "interop"
REDIRECT = "http://127.0.0.1:8400/callback"
API = "urn:interop:api"


def _peer_available() -> None:
    node = shutil.which("node") is not None
    installed = (INTEROP / "node_modules" / "oidc-provider" / "package.json").is_file()
    if node and installed:
        return
    why = "tests/interop/node_modules is missing (run npm ci there)" if node else "node is not installed"
    if os.environ.get("CI") == "true":
        pytest.fail(f"oidc-provider is required under CI: {why}")
    pytest.skip(f"*** SKIPPED: oidc-provider interop tests: {why} ***")


class OidcProvider:
    """``node provider.mjs PORT KEYS [CLIENT_JWKS]``, stopped by PID at the end."""

    def __init__(self, signing: Key, client_jwks: dict):
        self.dir = Path(tempfile.mkdtemp(prefix="idm-py-interop-"))
        (self.dir / "keys.json").write_text(json.dumps({"keys": [signing.private_jwk]}))
        (self.dir / "client-jwks.json").write_text(json.dumps(client_jwks))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        argv = ["node", str(INTEROP / "provider.mjs"), str(port), str(self.dir / "keys.json"), str(self.dir / "client-jwks.json")]
        try:
            self.process, self.issuer = start_peer(argv, "ISSUER ", "oidc-provider", stderr=subprocess.DEVNULL)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        # Keep draining: the provider logs to stdout, and a full pipe would stall it.
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
        self.discovery = f"{self.issuer}/.well-known/openid-configuration"
        document = im.get_discovery_document(im.DiscoveryDocumentRequest(address=self.discovery))
        assert document.is_successful, document.error
        self.document = document

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def client_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def op(client_key):
    _peer_available()
    import jwt

    public = jwt.algorithms.ECAlgorithm.to_jwk(client_key.public_key(), as_dict=True)
    client_jwks = {"keys": [{**public, "kid": "interop-client", "alg": "ES256", "use": "sig"}]}
    provider = OidcProvider(Key("RS256"), client_jwks)
    yield provider
    provider.stop()


class Browser:
    """Cookies kept, redirects not followed."""

    def __init__(self, origin: str):
        self.origin = origin
        self.cookies: dict[str, str] = {}

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(NoRedirect)

    def go(self, url: str, form: list[tuple[str, str]] | None = None) -> tuple[int, str | None, str]:
        url = self.origin + url if url.startswith("/") else url
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data)
        request.add_header("Cookie", "; ".join(f"{n}={v}" for n, v in self.cookies.items()))
        try:
            response = self.opener.open(request, timeout=10)
        except urllib.error.HTTPError as answer:  # 3xx (not followed) and errors
            response = answer
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, value = header.split(";")[0].partition("=")
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response.status, response.headers.get("Location"), response.read().decode(errors="replace")


def _hidden(page: str, name: str) -> str | None:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    return found.group(1) if found else None


def _interact(browser: Browser, first, login: str, stop: str | None):
    """Through the login and consent prompts until a page, or a redirect to ``stop``."""
    status, location, page = first
    prompts = []
    for _ in range(12):
        if not (300 <= status < 400 and location):
            break
        if stop and location.startswith(stop):
            break
        nxt = location
        status, location, page = browser.go(nxt)
        if "/interaction/" in nxt and status == 200:
            prompt = _hidden(page, "prompt")
            form = [("prompt", "login"), ("login", login), ("password", "any")] if prompt == "login" else [("prompt", "consent")]
            prompts.append(prompt)
            status, location, page = browser.go(nxt, form)
    return status, location, page, prompts


def _config(audience: str) -> im.TokenValidationConfig:
    return im.TokenValidationConfig(perform_disco=True, audience=audience, discovery_policy=im.DiscoveryPolicy(require_https=False))


def test_client_credentials_tokens_validate_sync_aio_and_native(op, client_key):
    response = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(address=op.document.token_endpoint, client_id="interop", client_secret="interop-secret")
    )
    assert response.is_successful, response.error
    token = response.token["access_token"]
    claims = im.validate_token(token, _config(API), op.discovery)
    assert claims["client_id"] == "interop" and claims["aud"] == API

    async def burst():
        return await asyncio.gather(*[aio.validate_token(token, _config(API), op.discovery) for _ in range(50)])

    assert all(c["jti"] == claims["jti"] for c in asyncio.run(burst()))
    native = im.Authority(op.issuer, API, token_type="at+jwt", allow_http_on_loopback=True)
    assert native.validate(token)["jti"] == claims["jti"]
    with pytest.raises(im.InvalidAudienceException):
        im.validate_token(token, _config("urn:other"), op.discovery)

    pem = client_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signed = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(
            address=op.document.token_endpoint, client_id="interop-jwt",
            private_key_jwt=im.PrivateKeyJwt(private_key=pem, algorithm="ES256", kid="interop-client"),
        )
    )
    assert signed.is_successful, signed.error
    assert im.validate_token(signed.token["access_token"], _config(API), op.discovery)["client_id"] == "interop-jwt"
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    refused = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(
            address=op.document.token_endpoint, client_id="interop-jwt",
            private_key_jwt=im.PrivateKeyJwt(private_key=stranger, algorithm="ES256", kid="interop-client"),
        )
    )
    assert not refused.is_successful and refused.error_code == "invalid_client"


@pytest.mark.parametrize("pushed", [False, True])
def test_code_flow_with_pkce_id_token_userinfo_and_revocation(op, pushed):
    verifier, challenge = im.generate_pkce_pair()
    state, nonce = "state-" + verifier[:6], "nonce-" + verifier[6:12]
    fields = dict(scope="openid profile", state=state, nonce=nonce, code_challenge=challenge, code_challenge_method="S256")
    if pushed:
        par = im.push_authorization_request(
            im.PushedAuthorizationRequest(
                address=op.document.pushed_authorization_request_endpoint, client_id="interop-app", redirect_uri=REDIRECT, **fields
            )
        )
        assert par.is_successful, par.error
        query = urllib.parse.urlencode({"client_id": "interop-app", "request_uri": par.request_uri})
        url = f"{op.document.authorization_endpoint}?{query}"
    else:
        url = im.build_authorization_url(op.document.authorization_endpoint, "interop-app", REDIRECT, **fields)
    browser = Browser(op.issuer)
    status, location, page, prompts = _interact(browser, browser.go(url), "carol", REDIRECT)
    assert 300 <= status < 400 and prompts == ["login", "consent"], page[:300]
    callback = im.parse_authorize_callback_response(location)
    assert im.validate_authorize_callback_state(callback, state).is_valid
    assert im.validate_authorize_callback_issuer(
        callback, op.issuer, iss_parameter_supported=bool(op.document.authorization_response_iss_parameter_supported)
    ).is_valid
    tokens = im.request_authorization_code_token(
        im.AuthorizationCodeTokenRequest(
            address=op.document.token_endpoint, client_id="interop-app", code=callback.code, redirect_uri=REDIRECT,
            code_verifier=verifier,
        )
    )
    assert tokens.is_successful, tokens.error
    access = tokens.token["access_token"]
    claims = im.validate_id_token(tokens.token["id_token"], _config("interop-app"), op.discovery, nonce=nonce, access_token=access)
    assert claims["sub"] == "carol"
    with pytest.raises(im.IdTokenValidationException):
        im.validate_id_token(tokens.token["id_token"], _config("interop-app"), op.discovery, nonce="other")
    info = im.get_userinfo(im.UserInfoRequest(address=op.document.userinfo_endpoint, token=access, expected_sub="carol"))
    assert info.is_successful and info.claims["name"] == "User carol", info.error
    revoked = im.revoke_token(
        im.TokenRevocationRequest(address=op.document.revocation_endpoint, token=access, client_id="interop-app")
    )
    assert revoked.is_successful, revoked.error
    after = im.get_userinfo(im.UserInfoRequest(address=op.document.userinfo_endpoint, token=access))
    assert not after.is_successful and after.status_code == 401


def test_dpop_bound_code_flow_and_userinfo_with_required_nonces(op):
    key = im.generate_dpop_key("ES256")
    verifier, challenge = im.generate_pkce_pair()
    url = im.build_authorization_url(
        op.document.authorization_endpoint, "interop-app", REDIRECT, scope="openid profile", state="s", nonce="n",
        code_challenge=challenge, code_challenge_method="S256", dpop_jkt=key.jwk_thumbprint,
    )
    browser = Browser(op.issuer)
    _, location, page, _ = _interact(browser, browser.go(url), "dave", REDIRECT)
    callback = im.parse_authorize_callback_response(location)
    tokens = im.request_authorization_code_token(
        im.AuthorizationCodeTokenRequest(
            address=op.document.token_endpoint, client_id="interop-app", code=callback.code, redirect_uri=REDIRECT,
            code_verifier=verifier, dpop_key=key,
        )
    )
    assert tokens.is_successful, tokens.error
    assert tokens.token["token_type"] == "DPoP"
    access = tokens.token["access_token"]
    info = im.get_userinfo(im.UserInfoRequest(address=op.document.userinfo_endpoint, token=access, dpop_key=key))
    assert info.is_successful and info.claims["sub"] == "dave", info.error
    # The bound token with another key, or as a bearer token: refused.
    other = im.get_userinfo(im.UserInfoRequest(address=op.document.userinfo_endpoint, token=access, dpop_key=im.generate_dpop_key()))
    assert not other.is_successful
    bearer = im.get_userinfo(im.UserInfoRequest(address=op.document.userinfo_endpoint, token=access))
    assert not bearer.is_successful


def test_device_flow(op):
    started = im.request_device_authorization(
        im.DeviceAuthorizationRequest(address=op.document.device_authorization_endpoint, client_id="interop-device", scope="openid")
    )
    assert started.is_successful, started.error
    poll = im.DeviceTokenRequest(address=op.document.token_endpoint, client_id="interop-device", device_code=started.device_code)
    pending = im.poll_device_token(poll)
    assert not pending.is_successful and pending.error_code == "authorization_pending"
    browser = Browser(op.issuer)
    _, _, page = browser.go("/device")
    form = [("xsrf", _hidden(page, "xsrf")), ("user_code", started.user_code), ("confirm", "yes")]
    status, _, page, prompts = _interact(browser, browser.go("/device", form), "erin", None)
    assert status == 200 and "Sign-in Success" in page and prompts == ["login", "consent"], page[:300]
    # The provider asks for `interval` seconds between polls: the caller's loop waits them.
    deadline = time.monotonic() + started.interval * 3 + 10
    while True:
        time.sleep(started.interval)  # RFC 8628 section 3.5: the protocol's wait, not synchronisation
        done = im.poll_device_token(poll)
        if done.is_successful or done.error_code not in ("authorization_pending", "slow_down") or time.monotonic() > deadline:
            break
    assert done.is_successful, done.error
    info = im.get_userinfo(im.UserInfoRequest(address=op.document.userinfo_endpoint, token=done.token["access_token"]))
    assert info.is_successful and info.claims["sub"] == "erin", info.error
