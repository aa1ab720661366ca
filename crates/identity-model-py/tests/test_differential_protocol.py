"""Differential test of the protocol functions against py-identity-model 4.1.1: the same
requests to ``idm provider`` succeed or fail alike (with the same token members), ID and
logout tokens get the same verdict, the pure helpers give the same results; every
difference is a row of the README's table."""

from __future__ import annotations

import os
import time
import urllib.parse

import pytest

import identity_model as im

pim = pytest.importorskip("py_identity_model", reason="py-identity-model 4.1.1 is installed by scripts/test")

from conftest import Key, redirect_of  # noqa: E402
from test_differential import table  # noqa: E402

APP, REDIRECT = "demo-app", "http://127.0.0.1:8400/callback"
SERVICE, SECRET = "demo-service", "demo-secret"


def outcome(response) -> tuple:
    """What must agree: success, and the members of the answer (or the polling code)."""
    if not response.is_successful:
        return ("failed", getattr(response, "error_code", None) if type(response).__name__ == "DeviceTokenResponse" else None)
    for name in ("token", "claims"):
        try:
            value = getattr(response, name)
        except AttributeError:
            continue
        return ("ok", tuple(sorted(value)) if isinstance(value, dict) else None)
    return ("ok", None)


def requests(lib, issuer: str, access_token: str, device_code: str) -> dict:
    """name -> request of ``lib`` (built from its own classes) and the function to send it."""
    token, intro, revoke = f"{issuer}/token", f"{issuer}/introspect", f"{issuer}/revoke"
    service = {"client_id": SERVICE, "client_secret": SECRET}
    return {
        "request_client_credentials": (
            lib.request_client_credentials_token,
            lib.ClientCredentialsTokenRequest(address=token, scope="api:read", **service),
        ),
        "request_wrong_secret": (
            lib.request_client_credentials_token,
            lib.ClientCredentialsTokenRequest(address=token, client_id=SERVICE, client_secret="wrong"),
        ),
        "request_unknown_scope": (
            lib.request_client_credentials_token,
            lib.ClientCredentialsTokenRequest(address=token, scope="not-a-scope", **service),
        ),
        "request_introspect_active": (
            lib.introspect_token,
            lib.TokenIntrospectionRequest(address=intro, token=access_token, **service),
        ),
        "request_introspect_junk": (
            lib.introspect_token,
            lib.TokenIntrospectionRequest(address=intro, token="junk", token_type_hint="access_token", **service),
        ),
        "request_revoke_junk": (lib.revoke_token, lib.TokenRevocationRequest(address=revoke, token="junk", **service)),
        "request_exchange": (
            lib.exchange_token,
            lib.TokenExchangeRequest(
                address=token, subject_token=access_token,
                subject_token_type="urn:ietf:params:oauth:token-type:access_token", **service,
            ),
        ),
        "request_device_authorization": (
            lib.request_device_authorization,
            lib.DeviceAuthorizationRequest(address=f"{issuer}/device_authorization", client_id=APP, scope="openid"),
        ),
        "request_device_poll_unknown": (
            lib.poll_device_token,
            lib.DeviceTokenRequest(address=token, client_id=APP, device_code="unknown"),
        ),
        "request_device_poll_pending": (
            lib.poll_device_token,
            lib.DeviceTokenRequest(address=token, client_id=APP, device_code=device_code),
        ),
        "request_refresh_junk": (
            lib.refresh_token,
            lib.RefreshTokenRequest(address=token, client_id=APP, refresh_token="junk"),
        ),
        "request_code_junk": (
            lib.request_authorization_code_token,
            lib.AuthorizationCodeTokenRequest(address=token, client_id=APP, code="junk", redirect_uri=REDIRECT),
        ),
        "request_par": (
            lib.push_authorization_request,
            lib.PushedAuthorizationRequest(
                address=f"{issuer}/par", client_id=APP, redirect_uri=REDIRECT,
                code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method="S256",
            ),
        ),
        "request_par_unknown_redirect": (
            lib.push_authorization_request,
            lib.PushedAuthorizationRequest(address=f"{issuer}/par", client_id=APP, redirect_uri="https://evil.example/cb"),
        ),
        "request_userinfo_service_token": (
            lib.get_userinfo,
            lib.UserInfoRequest(address=f"{issuer}/userinfo", token=access_token),
        ),
        "request_userinfo_junk": (lib.get_userinfo, lib.UserInfoRequest(address=f"{issuer}/userinfo", token="junk")),
    }


def _differences(seen: dict, prefix: str) -> None:
    listed = {name: row for name, row in table().items() if name.startswith(prefix)}
    unlisted = {n: d for n, d in seen.items() if listed.get(n) != d}
    assert not unlisted, f"differences the README does not list (case: (theirs, ours)): {unlisted}"
    assert not set(listed) - set(seen), f"README rows that are not differences (any more): {set(listed) - set(seen)}"


def test_requests_succeed_or_fail_alike(provider):
    access = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(address=f"{provider.issuer}/token", client_id=SERVICE, client_secret=SECRET)
    ).token["access_token"]
    device = im.request_device_authorization(
        im.DeviceAuthorizationRequest(address=f"{provider.issuer}/device_authorization", client_id=APP)
    ).device_code
    seen = {}
    ours_all = requests(im, provider.issuer, access, device)
    theirs_all = requests(pim, provider.issuer, access, device)
    for name, (send, request) in ours_all.items():
        their_send, their_request = theirs_all[name]
        theirs, ours = outcome(their_send(their_request)), outcome(send(request))
        if name == "request_device_poll_pending":
            # Each library polled once, back to back: the second poll is too fast.
            assert (theirs, ours) == (("failed", "authorization_pending"), ("failed", "slow_down")), (theirs, ours)
            continue
        if theirs != ours:
            seen[name] = (theirs[0], ours[0])
    _differences(seen, "request_")


def _id_token(provider) -> tuple[dict, str]:
    verifier, challenge = im.generate_pkce_pair()
    nonce = "nonce-" + verifier[:10]
    url = im.build_authorization_url(
        f"{provider.issuer}/authorize", APP, REDIRECT, scope="openid profile", state="s", nonce=nonce,
        code_challenge=challenge, code_challenge_method="S256",
    )
    code = im.parse_authorize_callback_response(redirect_of(url)).code
    tokens = im.request_authorization_code_token(
        im.AuthorizationCodeTokenRequest(
            address=f"{provider.issuer}/token", client_id=APP, code=code, redirect_uri=REDIRECT, code_verifier=verifier
        )
    ).token
    return tokens, nonce


def _verdict(call) -> str:
    try:
        call()
        return "ok"
    except Exception as e:  # noqa: BLE001 - the class is the verdict
        return type(e).__name__


def test_id_and_logout_tokens_get_the_same_verdicts(provider, keys):
    tokens, nonce = _id_token(provider)
    id_token, access = tokens["id_token"], tokens["access_token"]
    now = int(time.time())
    event = {"http://schemas.openid.net/event/backchannel-logout": {}}
    logout = {"iss": provider.issuer, "aud": APP, "iat": now, "exp": now + 120, "jti": "j1", "sid": "s1", "events": event}
    sign = lambda claims, typ="logout+jwt": keys["RS256"].sign(claims, {"typ": typ})  # noqa: E731
    id_cases = {
        "id_token_valid": ({"nonce": nonce, "access_token": access}, APP),
        "id_token_no_checks": ({}, APP),
        "id_token_wrong_nonce": ({"nonce": "other"}, APP),
        "id_token_wrong_at_hash": ({"nonce": nonce, "access_token": "another"}, APP),
        "id_token_wrong_client": ({"nonce": nonce}, "someone-else"),
        "id_token_max_age": ({"nonce": nonce, "max_age": 3600}, APP),
    }
    logout_cases = {
        "logout_token_valid": sign(logout),
        "logout_token_with_nonce": sign({**logout, "nonce": "n"}),
        "logout_token_no_events": sign({k: v for k, v in logout.items() if k != "events"}),
        "logout_token_no_sid_or_sub": sign({k: v for k, v in logout.items() if k != "sid"}),
        "logout_token_expired": sign({**logout, "iat": now - 900, "exp": now - 600}),
        "logout_token_other_key": Key("RS256").sign(logout, {"typ": "logout+jwt"}),
        "logout_token_typ_jwt": sign(logout, "JWT"),
        "logout_token_no_exp": sign({k: v for k, v in logout.items() if k != "exp"}),
    }
    seen = {}
    for name, (checks, client) in id_cases.items():
        results = []
        for lib in (pim, im):
            config = lib.TokenValidationConfig(perform_disco=True, audience=client, require_https=False)
            results.append(_verdict(lambda: lib.validate_id_token(id_token, config, provider.discovery, **checks)))
        if results[0] != results[1]:
            seen[name] = tuple(results)
    for name, token in logout_cases.items():
        results = []
        for lib in (pim, im):
            config = lib.TokenValidationConfig(perform_disco=True, audience=APP, require_https=False)
            results.append(_verdict(lambda: lib.validate_logout_token(token, config, provider.discovery)))
        if results[0] != results[1]:
            seen[name] = tuple(results)
    assert not {n for n in ("id_token_valid", "logout_token_valid") if n in seen}, seen
    _differences({k: v for k, v in seen.items() if k.startswith("id_token_")}, "id_token_")
    _differences({k: v for k, v in seen.items() if k.startswith("logout_token_")}, "logout_token_")


def test_pure_helpers_agree():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert im.generate_code_challenge(verifier) == pim.generate_code_challenge(verifier)
    assert im.compute_ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU") == pim.compute_ath(
        "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    )
    arguments = dict(
        authorization_endpoint="https://op.example/authorize?tenant=a", client_id="app", redirect_uri="https://app.example/cb",
        scope="openid email", state="st", nonce="nc", code_challenge="ch", code_challenge_method="S256", prompt="login",
    )
    ours, theirs = im.build_authorization_url(**arguments), pim.build_authorization_url(**arguments)
    split = lambda url: (url.split("?")[0], sorted(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)))  # noqa: E731
    assert split(ours) == split(theirs)
    for callback in (
        "https://app.example/cb?code=c1&state=st&iss=https%3A%2F%2Fop.example",
        "https://app.example/cb?error=access_denied&error_description=no&state=st",
        "https://app.example/cb#access_token=at&token_type=Bearer&expires_in=60&state=st",
    ):
        a, b = im.parse_authorize_callback_response(callback), pim.parse_authorize_callback_response(callback)
        assert a.is_successful == b.is_successful and a.state == b.state and a.values == b.values
        for expected in ("st", "other", None):
            assert (
                im.validate_authorize_callback_state(a, expected).result.value
                == pim.validate_authorize_callback_state(b, expected).result.value
            )
        for issuer, required in (("https://op.example", False), ("https://evil.example", False), ("https://op.example", True)):
            assert (
                im.validate_authorize_callback_issuer(a, issuer, require=required).result.value
                == pim.validate_authorize_callback_issuer(b, issuer, require=required).result.value
            )
    # A DPoP proof of each library has the same members (values are random or times).
    import jwt

    for alg in ("ES256", "RS256"):
        proofs = [
            lib.create_dpop_proof(lib.generate_dpop_key(alg), "post", "https://rs.example/x?q=1", access_token="at", nonce="n")
            for lib in (im, pim)
        ]
        shapes = [
            (sorted(jwt.get_unverified_header(p)), sorted(jwt.decode(p, options={"verify_signature": False})))
            for p in proofs
        ]
        assert shapes[0] == shapes[1], shapes
        claims = [jwt.decode(p, options={"verify_signature": False}) for p in proofs]
        assert [(c["htm"], c["htu"], c["ath"], c["nonce"]) for c in claims][0] == [
            (c["htm"], c["htu"], c["ath"], c["nonce"]) for c in claims
        ][1]
    # PKCE plain: a listed difference.
    rows = table()
    try:
        im.generate_code_challenge(verifier, "plain")
        ours = "ok"
    except ValueError:
        ours = "ValueError"
    assert pim.generate_code_challenge(verifier, "plain") == verifier
    assert rows.get("pkce_plain") == ("ok", ours) and ours == "ValueError"


# What py-identity-model 4.1.1 exports and this package does not (yet): the README's "From
# Python" section names each group. A name here that the package gains fails the test too.
NOT_YET = {
    "dynamic registration": {
        "ClientDeleteRequest", "ClientDeleteResponse", "ClientReadRequest", "ClientRegistrationRequest",
        "ClientRegistrationResponse", "ClientUpdateRequest", "delete_client", "read_client", "register_client", "update_client",
    },
}


def test_every_name_of_py_identity_model_is_ours_or_listed_as_not_yet():
    import inspect

    import py_identity_model.aio as pim_aio

    listed = set().union(*NOT_YET.values())
    for theirs, ours in ((pim, im), (pim_aio, im.aio)):
        missing = set(theirs.__all__) - set(ours.__all__)
        assert missing <= listed, f"{theirs.__name__}: not ours and not listed: {sorted(missing - listed)}"
        assert not listed & set(ours.__all__), f"listed but ours now: {sorted(listed & set(ours.__all__))}"
        for name in set(theirs.__all__) & set(ours.__all__):
            assert hasattr(ours, name), name
            # A coroutine where py-identity-model has one, a plain function where it has one.
            assert inspect.iscoroutinefunction(getattr(theirs, name)) == inspect.iscoroutinefunction(getattr(ours, name)), (
                f"{theirs.__name__}.{name}"
            )


def test_logout_claims_validator_discovery_url_and_jwk_helpers_agree():
    def outcome(call):
        try:
            return ("ok", call())
        except Exception as e:  # noqa: BLE001 - the class and message are the verdict
            return (type(e).__name__, str(e))

    for arguments in (
        dict(end_session_endpoint="https://op.example/logout"),
        dict(end_session_endpoint="https://op.example/logout?tenant=a#frag", id_token_hint="h", client_id="c",
             post_logout_redirect_uri="https://app.example/bye", state="s", logout_hint="alice", ui_locales="de fr"),
        dict(end_session_endpoint="https://op.example/logout?", state="s", extra="x y"),
        dict(end_session_endpoint="https://op.example/logout", state="s", client_id="x", foo="1"),
        dict(end_session_endpoint="https://op.example/logout", state=None, id_token_hint="x"),
        dict(end_session_endpoint="  "),
    ):
        assert outcome(lambda: im.build_end_session_url(**arguments)) == outcome(lambda: pim.build_end_session_url(**arguments)), arguments
    # Named parameters given as a mapping, beside an extra one.
    extra = {"id_token_hint": "x"}
    assert outcome(lambda: im.build_end_session_url("https://op.example/l", **{**extra, "x": "1"})) == outcome(
        lambda: pim.build_end_session_url("https://op.example/l", **{**extra, "x": "1"})
    )
    for expected, returned in (("s", "s"), ("s", "t"), ("", "s"), (None, "s"), ("s", None), ("s", ""), (1, 1)):
        assert outcome(lambda: im.validate_post_logout_state(expected, returned)) == outcome(
            lambda: pim.validate_post_logout_state(expected, returned)
        ), (expected, returned)

    claims_cases = (
        {"sub": "a", "scope": "read write", "tenant": "t1"},
        {"sub": "a", "scp": ["read"], "tenant": None},
        {"scope": "", "scp": ["write", 3]},
        {"scope": {"read": True}},
        {},
    )
    for lib in (im, pim):
        assert lib.ClaimsValidationError.__mro__[1].__name__ == "TokenValidationException"
    builders = {
        "claims": lambda lib: lib.require_claims("sub", "tenant"),
        "value": lambda lib: lib.require_claim_value("tenant", "t1"),
        "null_value": lambda lib: lib.require_claim_value("tenant", None),
        "scopes": lambda lib: lib.require_scopes("read", "write"),
        "all": lambda lib: lib.combine_claims_validators([lib.require_claims("sub"), lib.require_scopes("read")]),
        "any": lambda lib: lib.combine_claims_validators([lib.require_claims("sub"), lib.require_scopes("write")], require="any"),
        "empty_any": lambda lib: lib.combine_claims_validators([], require="any"),
        "no_names": lambda lib: lib.require_claims(),
    }
    for name, build in builders.items():
        for claims in claims_cases:
            results = []
            for lib in (im, pim):
                made = outcome(lambda: build(lib))
                if made[0] != "ok":
                    results.append(made)
                    continue
                try:
                    made[1](claims)
                    results.append(("ok", None))
                except lib.ClaimsValidationError as e:
                    results.append(("ClaimsValidationError", e.reason, e.claim, e.details))
            assert results[0] == results[1], (name, claims, results)

    for url in (
        "https://op.example", "https://op.example/", "https://op.example/tenant/", "http://127.0.0.1:8080/.well-known/openid-configuration/",
        "op.example", "ftp://op.example", "https://", "https://op.example?x=1", "https://op.example#f", "",
    ):
        a, b = outcome(lambda: im.parse_discovery_url(url)), outcome(lambda: pim.parse_discovery_url(url))
        assert a[0] == b[0], url
        if a[0] == "ok":
            assert (a[1].url, a[1].authority) == (b[1].url, b[1].authority), url
    for members in (
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "k", "x5t#S256": "t", "use": "sig"},
        {"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "key_ops": ["verify"]},
        {"kty": "OKP", "crv": "Ed25519", "x": "x", "use": "https://example/use"},
        {"kty": "oct", "k": ""},
        {"n": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "x"},
        {"kty": "EC", "crv": "P-999", "x": "x", "y": "y"},
        {"kty": "RSA", "n": "AQAB"},
        {"kty": "oct"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "use": "other"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "key_ops": ["verify", "fly"]},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "key_ops": ["verify"], "use": "sig"},
    ):
        a, b = outcome(lambda: im.jwks_from_dict(members)), outcome(lambda: pim.jwks_from_dict(members))
        assert a[0] == b[0], (members, a, b)
        if a[0] != "ok":
            assert a[1] == b[1], (members, a, b)
            continue
        for field in ("kty", "kid", "use", "key_ops", "n", "e", "crv", "x", "y", "k", "x5t_s256"):
            assert getattr(a[1], field) == getattr(b[1], field), (members, field)


def test_principals_and_jwk_names_agree():
    claims = {
        "iss": "https://op.example", "sub": "alice", "roles": ["admin", "staff"], "n": 3, "ok": True,
        "obj": {"a": 1}, "none": None, "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": "root",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": "Alice",
    }
    shape = lambda p: (  # noqa: E731
        [(c.claim_type, c.value, c.value_type, c.issuer, c.original_issuer, str(c), repr(c)) for c in p.claims],
        p.identity.name, p.identity.is_authenticated(), p.identity.authentication_type,
        [p.is_in_role(r) for r in ("admin", "root")], [p.has_claim(t, v) for t, v in (("roles", "staff"), ("roles", None), ("sub", "bob"))],
        repr(p.find_first("roles")), [c.value for c in p.find_all("roles")], p.find_first("missing"),
    )
    for arguments in ((claims,), (claims, "DPoP"), ({"sub": "x"},), ({},)):
        assert shape(im.to_principal(*arguments)) == shape(pim.to_principal(*arguments)), arguments
    mine = [im.Claim("role", "a")]
    principal = im.ClaimsPrincipal(im.ClaimsIdentity([im.Claim("sub", "b")]), claims=mine)
    assert [c.value for c in principal.claims] == ["a", "b"] and len(mine) == 1, "the caller's list is not changed"
    assert not im.ClaimsIdentity([]).is_authenticated()
    for lib_enum in ("JsonWebKeyParameterNames", "JsonWebAlgorithmsKeyTypes"):
        ours, theirs = getattr(im, lib_enum), getattr(pim, lib_enum)
        assert [(m.name, m.value, str(m).split(".")[-1]) for m in ours] == [
            (m.name, m.value, str(m).split(".")[-1]) for m in theirs
        ], lib_enum


def test_config_resolves_and_refuses_alike(monkeypatch):
    def outcome(lib, arguments):
        try:
            config = lib.Config.build(**arguments(lib))
        except lib.ConfigError as e:
            return ("ConfigError", [(i.code, i.keys, i.message, str(i)) for i in e.issues], str(e))
        values = {}
        for name in type(config).__dataclass_fields__:
            value = getattr(config, name)
            values[name] = ("secret", value.expose(), repr(value), str(value)) if isinstance(value, lib.Secret) else value
        return ("ok", values, repr(config))

    class Failing:
        name = "vault"

        def resolve(self, keys):
            raise RuntimeError("down")

    class NotText:
        def resolve(self, keys):
            return {"http.timeout": 5}

    for variable in [v for v in os.environ if v.startswith(("OIDC_", "HTTP_", "JWKS_", "DISCO_", "MAX_JWKS", "KID_MISS", "APP_"))]:
        monkeypatch.delenv(variable)
    cases = {
        "defaults": lambda lib: {},
        "client": lambda lib: {
            "overrides": {"client.discovery_url": "https://op.example", "client.id": "app", "client.secret": "s3cret"},
            "group": "client", "client_auth_method": lib.ClientAuthMethod.CLIENT_SECRET_BASIC,
        },
        "client_missing": lambda lib: {"group": "client", "client_auth_method": lib.ClientAuthMethod.CLIENT_SECRET_POST},
        "client_without_discovery": lambda lib: {"overrides": {"client.id": "app"}},
        "bad_values": lambda lib: {"overrides": {
            "http.timeout": "0", "http.retry.max_attempts": "x", "jwks.cache.ttl": "10", "discovery.cache.ttl": "1e9",
            "http.retry.base_delay": "nan", "client.discovery_url": "op.example", "client.scope": "  ", "jwks.max_keys": "2.5",
        }},
        "sources": lambda lib: {
            "sources": [lib.MappingSource({"http.timeout": "7", "client.excluded_paths": " /a, ,/b "}), Failing(), NotText()],
            "overrides": {"http.timeout": "9"},
        },
        "aliases_and_prefix": lambda lib: {"sources": [lib.EnvSource(prefix="APP_")], "env": False},
        "env": lambda lib: {},
    }
    monkeypatch.setenv("HTTP_RETRY_COUNT", "5")
    monkeypatch.setenv("APP_DISCOVERY_URL", "https://op.example/.well-known/openid-configuration")
    monkeypatch.setenv("APP_CLIENT_ID", "from-env")
    monkeypatch.setenv("OIDC_CLIENT_SECRET", "unprefixed-is-not-read-by-APP_")
    for name, arguments in cases.items():
        ours, theirs = outcome(im, arguments), outcome(pim, arguments)
        assert ours == theirs, (name, ours, theirs)
    for group, method in ((None, "NONE"), ("client", "NONE")):
        a = _config_from_env(im, group, method)
        b = _config_from_env(pim, group, method)
        assert a == b, (group, method, a, b)
    config = im.Config.build(overrides={"client.discovery_url": "https://o", "client.secret": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(config) and config.client_secret.expose() == "s3cr3t-value"


def _config_from_env(lib, group, method):
    try:
        config = lib.Config.from_env(prefix="APP_", group=group, client_auth_method=getattr(lib.ClientAuthMethod, method))
        return ("ok", repr(config))
    except lib.ConfigError as e:
        return ("ConfigError", [str(i) for i in e.issues])


def test_fapi_checks_agree(provider):
    import itertools

    for response_type, challenge, method, redirect, par, alg in itertools.product(
        ("code", "token"), ("ch", " ", None), ("S256", "plain", None),
        ("https://app.example/cb", "http://app.example/cb", "https:///cb", 7), (True, False), (None, "PS256", "RS256"),
    ):
        arguments = dict(response_type=response_type, code_challenge=challenge, code_challenge_method=method,
                         redirect_uri=redirect, use_par=par, algorithm=alg)
        ours, theirs = im.validate_fapi_authorization_request(**arguments), pim.validate_fapi_authorization_request(**arguments)
        assert (ours.violations, ours.is_compliant) == (theirs.violations, theirs.is_compliant), arguments
    for auth, dpop, mtls in itertools.product((None, "private_key_jwt", "client_secret_basic"), (False, True), (False, True)):
        ours = im.validate_fapi_client_config(auth_method=auth, use_dpop=dpop, use_mtls=mtls)
        theirs = pim.validate_fapi_client_config(auth_method=auth, use_dpop=dpop, use_mtls=mtls)
        assert (ours.violations, ours.is_compliant) == (theirs.violations, theirs.is_compliant), (auth, dpop, mtls)
    # The testkit provider's document, fetched by each library, and a failed fetch.
    ours = im.get_discovery_document(im.DiscoveryDocumentRequest(address=provider.discovery))
    theirs = pim.get_discovery_document(pim.DiscoveryDocumentRequest(address=provider.discovery))
    assert ours.is_successful and theirs.is_successful
    assert im.validate_fapi_discovery(ours).violations == pim.validate_fapi_discovery(theirs).violations
    failed = im.get_discovery_document(im.DiscoveryDocumentRequest(address="http://127.0.0.1:1/.well-known/openid-configuration"))
    assert im.validate_fapi_discovery(failed).violations == ["Discovery document fetch failed"]


def test_request_objects_verify_as_py_identity_models_do(keys):
    import jwt
    from cryptography.hazmat.primitives import serialization

    def pem(key) -> str:
        return key.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    arguments = dict(client_id="app", audience="https://op.example", redirect_uri="https://app.example/cb", state="st",
                     nonce="nc", code_challenge="ch", code_challenge_method="S256", kid="k1", claims={"userinfo": {"email": None}})
    for alg in ("RS256", "ES256"):
        key = keys[alg]
        tokens = [lib.create_request_object(pem(key), alg, **arguments) for lib in (im, pim)]
        decoded = [jwt.decode(t, key.private.public_key(), algorithms=[alg], audience="https://op.example") for t in tokens]
        headers = [jwt.get_unverified_header(t) for t in tokens]
        assert [(h["typ"], h["kid"], h["alg"]) for h in headers] == [("oauth-authz-req+jwt", "k1", alg)] * 2
        strip = lambda c: {k: v for k, v in c.items() if k not in ("iat", "nbf", "exp", "jti")}  # noqa: E731
        assert strip(decoded[0]) == strip(decoded[1])
        assert decoded[0]["exp"] - decoded[0]["iat"] == 300 and decoded[0]["jti"] != decoded[1]["jti"]

    def outcome(call):
        try:
            call()
            return "ok"
        except Exception as e:  # noqa: BLE001 - the class and message are the verdict
            return (type(e).__name__, str(e))

    key = pem(keys["ES256"])
    for bad in (
        dict(algorithm="HS256"), dict(algorithm="none"), dict(client_id=""), dict(lifetime=0),
        dict(code_challenge="ch"), dict(kid=""), dict(scope="x", extra={"iss": "evil"}),
    ):
        extra = bad.pop("extra", {})
        call = lambda lib: lib.create_request_object(  # noqa: E731
            key, bad.get("algorithm", "ES256"), bad.get("client_id", "app"), "https://op", "https://app/cb",
            lifetime=bad.get("lifetime", 300), code_challenge=bad.get("code_challenge"), kid=bad.get("kid"), **extra,
        )
        assert outcome(lambda: call(im)) == outcome(lambda: call(pim)), bad
    for endpoint in ("https://op.example/authorize", "https://op.example/authorize?tenant=a"):
        for extra in ({}, {"scope": "openid", "response_type": "code"}):
            assert im.build_jar_authorization_url(endpoint, "app", "a.b.c", **extra) == pim.build_jar_authorization_url(endpoint, "app", "a.b.c", **extra)


def test_jarm_responses_get_the_same_verdicts(provider, keys):
    import jwt as pyjwt

    now = int(time.time())
    base = {"iss": provider.issuer, "aud": APP, "exp": now + 120, "code": "c1", "state": "st"}
    rs, es = keys["RS256"], keys["ES256"]
    unsigned = pyjwt.encode(base, key=None, algorithm="none")
    cases = {
        "valid": ("query", rs.sign(base)),
        "valid_fragment_es256": ("fragment", es.sign(base)),
        "form_post": ("jwt", rs.sign(base)),
        "error": ("query", rs.sign({**{k: v for k, v in base.items() if k != "code"}, "error": "access_denied"})),
        "wrong_audience": ("query", rs.sign({**base, "aud": "someone-else"})),
        "wrong_issuer": ("query", rs.sign({**base, "iss": "https://evil.example"})),
        "expired": ("query", rs.sign({**base, "exp": now - 600})),
        "no_exp": ("query", rs.sign({k: v for k, v in base.items() if k != "exp"})),
        "alg_none": ("query", unsigned),
        "hs256": ("query", pyjwt.encode(base, "a-shared-secret-of-enough-length-32b", algorithm="HS256")),
        "unknown_kid": ("query", Key("RS256").sign(base)),
        "tampered": ("query", rs.sign(base)[:-4] + "AAAA"),
        "nothing_recognized": ("query", rs.sign({k: base[k] for k in ("iss", "aud", "exp")})),
        "not_a_jwt": ("query", "not-a-jwt"),
        "twice": ("twice", rs.sign(base)),
        "none_present": ("empty", ""),
    }

    def callback(where, token):
        quoted = urllib.parse.quote(token, safe="")
        return {
            "query": f"{REDIRECT}?response={quoted}",
            "fragment": f"{REDIRECT}#response={quoted}",
            "jwt": token,
            "twice": f"{REDIRECT}?response={quoted}&response={quoted}",
            "empty": f"{REDIRECT}?code=x",
        }[where]

    def verdict(lib, where, token, algorithms):
        try:
            r = lib.process_jarm_response(
                callback(where, token), client_id=APP, disco_doc_address=provider.discovery,
                algorithms=algorithms, require_https=False, is_jwt=where == "jwt",
            )
        except Exception as e:  # noqa: BLE001 - the class is the verdict
            return type(e).__name__
        return ("ok", r.is_successful, r.state, r.values, (r.code, r.issuer) if r.is_successful else r.error)

    for algorithms in (["RS256", "ES256"], ["ES256"]):
        for name, (where, token) in cases.items():
            ours, theirs = verdict(im, where, token, algorithms), verdict(pim, where, token, algorithms)
            assert ours == theirs, (name, algorithms, ours, theirs)
    for where in ("query", "fragment", "twice", "empty"):
        url = callback(where, "a.b.c")
        assert im.is_jarm_response(url) == pim.is_jarm_response(url)
    import asyncio

    ours = asyncio.run(im.aio.process_jarm_response(callback("query", rs.sign(base)), client_id=APP,
                                                    disco_doc_address=provider.discovery, algorithms=["RS256"], require_https=False))
    assert ours.code == "c1" and ours.issuer == provider.issuer
    # Offline (issuer, keys and algorithms given): no discovery.
    jwks = im.get_jwks(im.JwksRequest(address=provider.issuer + "/jwks", policy=im.DiscoveryPolicy(require_https=False)))
    offline = im.process_jarm_response(callback("query", rs.sign(base)), client_id=APP, issuer=provider.issuer, jwks=jwks, algorithms=["RS256"])
    assert offline.code == "c1"


def test_http_clients_and_base_classes_are_accepted():
    import asyncio

    with im.HTTPClient() as client:
        assert client.client is None
    try:
        client.client
        raise AssertionError("a closed client must say so")
    except RuntimeError:
        pass
    try:
        im.HTTPClient(client=object(), timeout=1.0)
        raise AssertionError("timeout beside a client must be refused")
    except ValueError:
        pass

    async def use():
        async with im.aio.AsyncHTTPClient() as client:
            return client

    asyncio.run(use())
    request = im.ClientCredentialsTokenRequest(address="https://op/token", client_id="c")
    assert isinstance(request, im.BaseRequest) and isinstance(im.JwksRequest(address="https://op/jwks"), im.BaseRequest)
    failed = im.request_client_credentials_token(request, http_client=im.HTTPClient())
    assert isinstance(failed, im.BaseResponse) and not failed.is_successful
