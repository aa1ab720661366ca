"""Per-call cached validation through identity_model against py-identity-model 4.1.1, PyJWT
with a cached PyJWKClient, oxyjwt (when installed), and the raw signature check
(cryptography's verify of the same signature); then a rotation burst's wall time. Prints one
table; the figures go to docs/PERFORMANCE.md by hand. Run by scripts/bench-python."""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import jwt  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils  # noqa: E402

import identity_model as im  # noqa: E402
import py_identity_model as pim  # noqa: E402
from conftest import AUDIENCE, Key, MiniOP, claims_for  # noqa: E402


def per_call(fn, seconds: float = 2.0) -> float:
    """Microseconds per call, the best of three timed runs of about ``seconds`` / 3."""
    for _ in range(200):
        fn()
    best = float("inf")
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while True:
            for _ in range(100):
                fn()
            n += 100
            elapsed = time.perf_counter() - start
            if elapsed > seconds / 3:
                break
        best = min(best, elapsed / n * 1e6)
    return best


def raw_verify(key: Key, token: str):
    head, body, sig = token.split(".")
    signing_input = f"{head}.{body}".encode()
    signature = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    public = key.private.public_key()
    if key.alg == "RS256":
        return lambda: public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    half = len(signature) // 2
    der = utils.encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))
    return lambda: public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))


def main() -> None:
    rows = []
    for alg in ("RS256", "ES256"):
        key = Key(alg)
        op = MiniOP([key])
        token = key.sign(claims_for(op.issuer))
        config_im = im.TokenValidationConfig(perform_disco=True, audience=AUDIENCE)
        config_pim = pim.TokenValidationConfig(perform_disco=True, audience=AUDIENCE)
        authority = im.Authority(op.issuer, AUDIENCE, allow_http_on_loopback=True)
        jwks_client = jwt.PyJWKClient(f"{op.issuer}/jwks", cache_keys=True)
        cases = {
            "identity_model Authority.validate": lambda: authority.validate(token),
            "identity_model validate_token": lambda: im.validate_token(token, config_im, op.discovery),
            "py-identity-model validate_token": lambda: pim.validate_token(token, config_pim, op.discovery),
            "PyJWT + cached PyJWKClient": lambda: jwt.decode(
                token,
                jwks_client.get_signing_key_from_jwt(token).key,
                algorithms=[alg],
                audience=AUDIENCE,
                issuer=op.issuer,
            ),
            "raw signature check (cryptography)": raw_verify(key, token),
        }
        try:
            import oxyjwt  # type: ignore

            public_pem = key.private.public_key().public_bytes(
                encoding=__import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.PEM,
                format=__import__("cryptography.hazmat.primitives.serialization", fromlist=["PublicFormat"]).PublicFormat.SubjectPublicKeyInfo,
            )
            load = oxyjwt.DecodingKey.from_rsa_pem if alg == "RS256" else oxyjwt.DecodingKey.from_ec_pem
            decoding_key = load(public_pem)
            cases["oxyjwt decode"] = lambda: oxyjwt.decode(
                token, decoding_key, [alg], audience=AUDIENCE, issuer=op.issuer
            )
        except Exception as e:  # noqa: BLE001 - optional
            print(f"oxyjwt not measured: {e!r}", file=sys.stderr)
        for name, fn in cases.items():
            rows.append((alg, name, per_call(fn)))
        op.stop()

    print(f"{'alg':6} {'case':38} {'us/call':>9}")
    for alg, name, us in rows:
        print(f"{alg:6} {name:38} {us:9.1f}")

    # The GIL released during the signature check: 4000 distinct validations on 1, 2 and 8
    # threads (the machine's cores bound the gain).
    import threading

    for alg in ("RS256", "ES256"):
        key = Key(alg)
        op = MiniOP([key])
        authority = im.Authority(op.issuer, AUDIENCE, allow_http_on_loopback=True)
        tokens = [key.sign(claims_for(op.issuer, jti=str(i))) for i in range(4000)]
        authority.validate(tokens[0])

        def work(part, authority=authority):
            for token in part:
                authority.validate(token)

        walls = {}
        for n in (1, 2, 8):
            threads = [threading.Thread(target=work, args=(tokens[i::n],)) for i in range(n)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            walls[n] = time.perf_counter() - start
        shown = ", ".join(f"{n} thread(s) {w * 1e3:.0f} ms ({walls[1] / w:.2f}x)" for n, w in walls.items())
        print(f"4000 {alg} validations: {shown}")
        op.stop()

    # Rotation burst: 50 asyncio callers with a token signed by a key published since.
    def burst_im(op, token):
        authority = im.Authority(op.issuer, AUDIENCE, allow_http_on_loopback=True)

        async def run():
            await asyncio.gather(*(authority.validate_async(token) for _ in range(50)))

        return run

    for lib in ("identity_model", "py-identity-model"):
        first, second = Key("RS256"), Key("RS256")
        op = MiniOP([first])
        if lib == "identity_model":
            authority = im.Authority(op.issuer, AUDIENCE, allow_http_on_loopback=True)
            authority.validate(first.sign(claims_for(op.issuer)))
            op.replace_keys([second])
            token = second.sign(claims_for(op.issuer))

            async def run():
                await asyncio.gather(*(authority.validate_async(token) for _ in range(50)))
        else:
            config = pim.TokenValidationConfig(perform_disco=True, audience=AUDIENCE)
            from py_identity_model import aio as pim_aio

            async def warm():
                await pim_aio.validate_token(first.sign(claims_for(op.issuer)), config, op.discovery)

            asyncio.run(warm())
            op.replace_keys([second])
            token = second.sign(claims_for(op.issuer))

            async def run():
                await asyncio.gather(*(pim_aio.validate_token(token, config, op.discovery) for _ in range(50)))

        before = dict(op.counts)
        start = time.perf_counter()
        asyncio.run(run())
        wall = (time.perf_counter() - start) * 1e3
        fetched = op.counts["jwks"] - before["jwks"]
        print(f"rotation burst of 50, {lib}: {wall:.1f} ms, {fetched} key set request(s)")
        op.stop()


if __name__ == "__main__":
    main()
