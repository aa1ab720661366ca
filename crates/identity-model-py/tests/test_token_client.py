"""py-identity-model's request functions against ``idm provider``: every grant, PAR, device
flow, introspection, revocation, userinfo, DPoP and private_key_jwt, sync and ``aio`` (on
asyncio and uvloop); failed responses guard their data; the code flow's ID token is
checked with ``validate_id_token``."""

from __future__ import annotations

import asyncio
import http.client
import urllib.parse

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import identity_model as im
from identity_model import aio

from conftest import AUDIENCE, Key, Provider, redirect_of

REDIRECT = "http://127.0.0.1:8400/callback"
APP = "demo-app"
SERVICE, SECRET = "demo-service", "demo-secret"


def _pem(private) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _jwk_of(private, alg: str, kid: str) -> dict:
    import jwt

    algo = jwt.algorithms.RSAAlgorithm if alg.startswith(("RS", "PS")) else jwt.algorithms.ECAlgorithm
    public = algo.to_jwk(private.public_key(), as_dict=True)
    return {**{k: v for k, v in public.items() if k != "key_ops"}, "kid": kid, "alg": alg, "use": "sig"}


class ClientKeys:
    """private_key_jwt keys of the test's clients: an ES256 one (PKCS #8) and an RSA one
    (PKCS #1 PEM, py-identity-model's default PS256)."""

    def __init__(self):
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_jwk = _jwk_of(self.ec, "ES256", "ec-client")
        self.rsa_jwk = _jwk_of(self.rsa, "PS256", "rsa-client")
        self.rsa_pkcs1 = self.rsa.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )


@pytest.fixture(scope="module")
def client_keys() -> ClientKeys:
    return ClientKeys()


@pytest.fixture(scope="module")
def op(keys, client_keys):
    service = {
        "id": SERVICE,
        "secret": SECRET,
        "auth_methods": ["client_secret_basic", "client_secret_post"],
        "grant_types": ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"],
        "scopes": ["api:read", "api:write"],
    }
    app = {
        "id": APP,
        "auth_methods": ["none"],
        "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        "scopes": ["openid", "profile", "email", "offline_access", "api:read"],
        "redirect_uris": [REDIRECT],
    }
    signed = {
        "id": "jwt-service",
        "auth_methods": ["private_key_jwt"],
        "jwks": {"keys": [client_keys.ec_jwk, client_keys.rsa_jwk]},
        "grant_types": ["client_credentials"],
        "scopes": ["api:read"],
    }
    # Polls are never too fast here (the slow_down answer is tested on the default provider).
    provider = Provider([keys["RS256"]], {"clients": [service, app, signed], "device_poll_interval": 0})
    yield provider
    provider.stop()


def _url(op, path: str) -> str:
    return op.issuer + path


def _service_token(op, scope: str = "api:read") -> str:
    request = im.ClientCredentialsTokenRequest(
        address=_url(op, "/token"), client_id=SERVICE, client_secret=SECRET, scope=scope
    )
    response = im.request_client_credentials_token(request)
    assert response.is_successful, response.error
    return response.token["access_token"]


def _code_flow(op, dpop_key=None, scope="openid profile offline_access"):
    """Authorization URL (PKCE, state, nonce) → callback → code redeemed; returns the
    callback, the tokens and the nonce."""
    verifier, challenge = im.generate_pkce_pair()
    state, nonce = "state-" + verifier[:8], "nonce-" + verifier[8:16]
    url = im.build_authorization_url(
        _url(op, "/authorize"), APP, REDIRECT, scope=scope, state=state, nonce=nonce,
        code_challenge=challenge, code_challenge_method="S256",
    )
    callback = im.parse_authorize_callback_response(redirect_of(url))
    assert im.validate_authorize_callback_state(callback, state).is_valid
    assert im.validate_authorize_callback_issuer(callback, op.issuer).is_valid
    response = im.request_authorization_code_token(
        im.AuthorizationCodeTokenRequest(
            address=_url(op, "/token"), client_id=APP, code=callback.code, redirect_uri=REDIRECT,
            code_verifier=verifier, dpop_key=dpop_key,
        )
    )
    assert response.is_successful, response.error
    return callback, response.token, nonce


def test_client_credentials_give_a_token_the_authority_accepts(op):
    token = _service_token(op)
    claims = im.Authority(op.issuer, AUDIENCE, allow_http_on_loopback=True).validate(token)
    assert claims["client_id"] == SERVICE and claims["scope"] == "api:read"


def test_a_refused_request_is_a_failed_response_whose_data_is_guarded(op):
    response = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(address=_url(op, "/token"), client_id=SERVICE, client_secret="wrong")
    )
    assert not response.is_successful
    assert "invalid_client" in response.error
    with pytest.raises(im.FailedResponseAccessError):
        response.token
    good = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(address=_url(op, "/token"), client_id=SERVICE, client_secret=SECRET)
    )
    with pytest.raises(im.SuccessfulResponseAccessError):
        good.error
    assert good.token["access_token"] not in repr(good), "the token must not show in repr"
    # Nothing listens there: a failed response, not an exception.
    unreachable = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(address="http://127.0.0.1:9/token", client_id=SERVICE, client_secret=SECRET)
    )
    assert not unreachable.is_successful and unreachable.error


def test_plain_http_is_refused_off_loopback(op):
    response = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(address="http://provider.example/token", client_id=SERVICE, client_secret=SECRET)
    )
    assert not response.is_successful and "https" in response.error.lower()


def test_introspection_sees_a_revoked_token_inactive(op):
    token = _service_token(op)
    about = dict(address=_url(op, "/introspect"), token=token, client_id=SERVICE, client_secret=SECRET)
    first = im.introspect_token(im.TokenIntrospectionRequest(**about))
    assert first.is_successful and first.claims["active"] is True and first.claims["client_id"] == SERVICE
    revoked = im.revoke_token(
        im.TokenRevocationRequest(
            address=_url(op, "/revoke"), token=token, client_id=SERVICE, client_secret=SECRET,
            token_type_hint="access_token",
        )
    )
    assert revoked.is_successful
    assert im.introspect_token(im.TokenIntrospectionRequest(**about)).claims == {"active": False}


def test_token_exchange(op):
    subject = _service_token(op)
    response = im.exchange_token(
        im.TokenExchangeRequest(
            address=_url(op, "/token"), client_id=SERVICE, client_secret=SECRET, subject_token=subject,
            subject_token_type="urn:ietf:params:oauth:token-type:access_token",
        )
    )
    assert response.is_successful, response.error
    assert response.issued_token_type == "urn:ietf:params:oauth:token-type:access_token"
    assert response.token["access_token"] != subject


def test_device_flow_pending_then_approved(op):
    started = im.request_device_authorization(
        im.DeviceAuthorizationRequest(address=_url(op, "/device_authorization"), client_id=APP, scope="openid api:read")
    )
    assert started.is_successful, started.error
    assert started.user_code and started.verification_uri.startswith(op.issuer) and started.interval == 0
    poll = im.DeviceTokenRequest(address=_url(op, "/token"), client_id=APP, device_code=started.device_code)
    pending = im.poll_device_token(poll)
    assert not pending.is_successful and pending.error_code == "authorization_pending"
    with pytest.raises(im.FailedResponseAccessError):
        pending.token
    # The user approves on the provider's page.
    parts = urllib.parse.urlsplit(op.issuer)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    body = urllib.parse.urlencode({"user_code": started.user_code, "confirm": "yes"})
    connection.request("POST", "/device", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert connection.getresponse().status == 200
    connection.close()
    done = im.poll_device_token(poll)
    assert done.is_successful, done.error
    assert done.token["access_token"]


def test_polling_too_fast_is_slow_down_for_the_callers_loop(provider):
    started = im.request_device_authorization(
        im.DeviceAuthorizationRequest(address=provider.issuer + "/device_authorization", client_id=APP)
    )
    assert started.is_successful and started.interval == 5
    poll = im.DeviceTokenRequest(address=provider.issuer + "/token", client_id=APP, device_code=started.device_code)
    assert im.poll_device_token(poll).error_code == "authorization_pending"
    # Polled again at once, well within the 5 s interval.
    assert im.poll_device_token(poll).error_code == "slow_down"


def test_code_flow_with_pkce_id_token_userinfo_and_refresh(op):
    callback, tokens, nonce = _code_flow(op)
    config = im.TokenValidationConfig(
        perform_disco=True, audience=APP, discovery_policy=im.DiscoveryPolicy(require_https=False)
    )
    discovery = op.discovery
    claims = im.validate_id_token(
        tokens["id_token"], config, discovery, nonce=nonce, access_token=tokens["access_token"]
    )
    assert claims["sub"] == "alice" and claims["aud"] in (APP, [APP])
    with pytest.raises(im.IdTokenValidationException) as raised:
        im.validate_id_token(tokens["id_token"], config, discovery, nonce="another nonce")
    assert raised.value.claim == "nonce"
    with pytest.raises(im.IdTokenValidationException) as raised:
        im.validate_id_token(tokens["id_token"], config, discovery, nonce=nonce, access_token="another token")
    assert raised.value.claim == "at_hash"
    wrong_client = im.TokenValidationConfig(
        perform_disco=True, audience="someone-else", discovery_policy=im.DiscoveryPolicy(require_https=False)
    )
    with pytest.raises(im.InvalidAudienceException):
        im.validate_id_token(tokens["id_token"], wrong_client, discovery, nonce=nonce)

    info = im.get_userinfo(im.UserInfoRequest(address=_url(op, "/userinfo"), token=tokens["access_token"], expected_sub="alice"))
    assert info.is_successful and info.claims["sub"] == "alice"
    other = im.get_userinfo(im.UserInfoRequest(address=_url(op, "/userinfo"), token=tokens["access_token"], expected_sub="bob"))
    assert not other.is_successful
    with pytest.raises(im.FailedResponseAccessError):
        other.claims

    refreshed = im.refresh_token(
        im.RefreshTokenRequest(address=_url(op, "/token"), client_id=APP, refresh_token=tokens["refresh_token"])
    )
    assert refreshed.is_successful, refreshed.error
    assert refreshed.token["access_token"] != tokens["access_token"]
    # The code is single use.
    again = im.request_authorization_code_token(
        im.AuthorizationCodeTokenRequest(address=_url(op, "/token"), client_id=APP, code=callback.code, redirect_uri=REDIRECT)
    )
    assert not again.is_successful and "invalid_grant" in again.error


def test_dpop_bound_code_flow_and_userinfo(op):
    key = im.generate_dpop_key()
    _, tokens, _ = _code_flow(op, dpop_key=key, scope="openid profile")
    assert tokens["token_type"].lower() == "dpop"
    claims = im.Authority(op.issuer, AUDIENCE, allow_http_on_loopback=True)
    info = im.get_userinfo(im.UserInfoRequest(address=_url(op, "/userinfo"), token=tokens["access_token"], dpop_key=key))
    assert info.is_successful, info.error
    # Another key cannot use the bound token.
    stolen = im.get_userinfo(
        im.UserInfoRequest(address=_url(op, "/userinfo"), token=tokens["access_token"], dpop_key=im.generate_dpop_key())
    )
    assert not stolen.is_successful
    del claims


def test_pushed_authorization_request_then_the_code(op):
    verifier, challenge = im.generate_pkce_pair()
    pushed = im.push_authorization_request(
        im.PushedAuthorizationRequest(
            address=_url(op, "/par"), client_id=APP, redirect_uri=REDIRECT, state="s1", nonce="n1",
            code_challenge=challenge, code_challenge_method="S256",
        )
    )
    assert pushed.is_successful, pushed.error
    assert pushed.request_uri.startswith("urn:ietf:params:oauth:request_uri:") and pushed.expires_in > 0
    assert pushed.request_uri not in repr(pushed)
    query = urllib.parse.urlencode({"client_id": APP, "request_uri": pushed.request_uri})
    callback = im.parse_authorize_callback_response(redirect_of(f"{_url(op, '/authorize')}?{query}"))
    assert callback.state == "s1"
    tokens = im.request_authorization_code_token(
        im.AuthorizationCodeTokenRequest(
            address=_url(op, "/token"), client_id=APP, code=callback.code, redirect_uri=REDIRECT, code_verifier=verifier
        )
    )
    assert tokens.is_successful, tokens.error


@pytest.mark.parametrize("which", ["ec", "rsa_pkcs1"])
def test_private_key_jwt(op, client_keys, which):
    if which == "ec":
        auth = im.PrivateKeyJwt(private_key=_pem(client_keys.ec), algorithm="ES256", kid="ec-client")
    else:
        auth = im.PrivateKeyJwt(private_key=client_keys.rsa_pkcs1, kid="rsa-client")  # PS256 by default
    request = im.ClientCredentialsTokenRequest(address=_url(op, "/token"), client_id="jwt-service", private_key_jwt=auth)
    response = im.request_client_credentials_token(request)
    assert response.is_successful, response.error
    # A key the provider does not know for the client is refused by the provider.
    stranger = ec.generate_private_key(ec.SECP256R1())
    refused = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(
            address=_url(op, "/token"), client_id="jwt-service",
            private_key_jwt=im.PrivateKeyJwt(private_key=_pem(stranger), algorithm="ES256", kid="ec-client"),
        )
    )
    assert not refused.is_successful and "invalid_client" in refused.error


def test_unusable_client_settings_fail_the_response_not_the_caller(op):
    for auth in (
        im.PrivateKeyJwt(private_key="not a key", algorithm="ES256"),
        im.PrivateKeyJwt(private_key=_pem(ec.generate_private_key(ec.SECP256R1())), algorithm="RS256"),
    ):
        response = im.request_client_credentials_token(
            im.ClientCredentialsTokenRequest(address=_url(op, "/token"), client_id="jwt-service", private_key_jwt=auth)
        )
        assert not response.is_successful and response.error
    mtls = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(
            address=_url(op, "/token"), client_id=SERVICE, mtls=im.MtlsClientAuth(certificate="c.pem", private_key="k.pem")
        )
    )
    assert not mtls.is_successful and "mTLS" in mtls.error


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_aio_functions_on_asyncio_and_uvloop(op, loop):
    async def main():
        results = await asyncio.gather(
            *[
                aio.request_client_credentials_token(
                    im.ClientCredentialsTokenRequest(address=_url(op, "/token"), client_id=SERVICE, client_secret=SECRET)
                )
                for _ in range(10)
            ]
        )
        assert all(r.is_successful for r in results)
        token = results[0].token["access_token"]
        about = await aio.introspect_token(
            im.TokenIntrospectionRequest(address=_url(op, "/introspect"), token=token, client_id=SERVICE, client_secret=SECRET)
        )
        assert about.claims["active"] is True
        revoked = await aio.revoke_token(
            im.TokenRevocationRequest(address=_url(op, "/revoke"), token=token, client_id=SERVICE, client_secret=SECRET)
        )
        assert revoked.is_successful
        refused = await aio.request_client_credentials_token(
            im.ClientCredentialsTokenRequest(address=_url(op, "/token"), client_id=SERVICE, client_secret="wrong")
        )
        assert not refused.is_successful and "invalid_client" in refused.error

    if loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def test_aio_id_token_and_logout_token(op, keys):
    callback, tokens, nonce = _code_flow(op, scope="openid")
    config = im.TokenValidationConfig(
        perform_disco=True, audience=APP, discovery_policy=im.DiscoveryPolicy(require_https=False)
    )

    async def main():
        claims = await aio.validate_id_token(tokens["id_token"], config, op.discovery, nonce=nonce)
        assert claims["nonce"] == nonce
        with pytest.raises(im.IdTokenValidationException):
            await aio.validate_id_token(tokens["id_token"], config, op.discovery, nonce="other")

    asyncio.run(main())
    del callback


def test_logout_tokens_sync_and_aio(op, keys):
    import time

    now = int(time.time())
    event = {"http://schemas.openid.net/event/backchannel-logout": {}}
    base = {"iss": op.issuer, "aud": APP, "iat": now, "exp": now + 120, "jti": "lt-1", "sid": "session-1", "events": event}
    sign = lambda claims: keys["RS256"].sign(claims, {"typ": "logout+jwt"})  # noqa: E731
    config = im.TokenValidationConfig(
        perform_disco=True, audience=APP, discovery_policy=im.DiscoveryPolicy(require_https=False)
    )
    assert im.validate_logout_token(sign(base), config, op.discovery)["sid"] == "session-1"
    assert asyncio.run(aio.validate_logout_token(sign(base), config, op.discovery))["jti"] == "lt-1"
    for broken, claim in (
        ({**base, "nonce": "n"}, "nonce"),
        ({k: v for k, v in base.items() if k != "events"}, "events"),
        ({k: v for k, v in base.items() if k != "sid"}, "sid"),
    ):
        with pytest.raises(im.LogoutTokenValidationException) as raised:
            im.validate_logout_token(sign(broken), config, op.discovery)
        assert raised.value.claim == claim
    with pytest.raises(im.LogoutTokenValidationException):
        im.validate_logout_token(keys["RS256"].sign(base, {"typ": "JWT"}), config, op.discovery)
    # Not the profile's failures: the usual classes.
    with pytest.raises(im.TokenExpiredException):
        im.validate_logout_token(sign({**base, "exp": now - 600, "iat": now - 900}), config, op.discovery)
    other = Key("RS256")
    with pytest.raises(im.TokenValidationException) as raised:
        im.validate_logout_token(other.sign(base, {"typ": "logout+jwt"}), config, op.discovery)
    assert not isinstance(raised.value, im.LogoutTokenValidationException)


@pytest.mark.parametrize(
    "variable, value",
    [("HTTP_TIMEOUT", "soon"), ("HTTP_RETRY_MAX_ATTEMPTS", "0"), ("HTTP_RETRY_BASE_DELAY", "-1"), ("MAX_JWKS_KEYS", "lots")],
)
def test_a_bad_environment_variable_is_named_not_ignored(op, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    request = im.ClientCredentialsTokenRequest(address=_url(op, "/token"), client_id=SERVICE, client_secret=SECRET)
    if variable.startswith("HTTP_"):  # the ones a token request reads
        response = im.request_client_credentials_token(request)
        assert not response.is_successful and variable in response.error
    with pytest.raises(im.ConfigurationException) as raised:
        im.Authority(op.issuer, AUDIENCE, allow_http_on_loopback=True)
    assert variable in str(raised.value)
    monkeypatch.delenv(variable)
    assert im.request_client_credentials_token(request).is_successful
