"""Peers for the Python tests: ``idm provider`` (the project's testkit) started on a free port
with keys the tests hold, and a tiny in-process OP whose keys a test can swap and whose
requests it counts. Tokens are minted with PyJWT."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

REPO = Path(__file__).resolve().parents[3]
AUDIENCE = "https://api.example"


def idm_binary() -> str:
    path = os.environ.get("IDM_BIN") or str(REPO / "target" / "debug" / "idm")
    if not Path(path).exists():
        pytest.fail(f"idm binary not found at {path} (cargo build -p idm, or set IDM_BIN)")
    return path


class Key:
    """A private key, its JWK (public and private) and its kid."""

    def __init__(self, alg: str):
        self.alg = alg
        self.kid = uuid.uuid4().hex[:16]
        if alg.startswith("RS"):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            algo = jwt.algorithms.RSAAlgorithm
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            algo = jwt.algorithms.ECAlgorithm
        # PyJWT adds key_ops, which RFC 7517 says not to use with `use` (py-identity-model
        # refuses the pair): dropped.
        private = {k: v for k, v in algo.to_jwk(self.private, as_dict=True).items() if k != "key_ops"}
        public = {k: v for k, v in algo.to_jwk(self.private.public_key(), as_dict=True).items() if k != "key_ops"}
        self.private_jwk = {**private, "kid": self.kid, "alg": alg, "use": "sig"}
        self.public_jwk = {**public, "kid": self.kid, "alg": alg, "use": "sig"}

    def sign(self, claims: dict, headers: dict | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **(headers or {})})


def claims_for(issuer: str, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": issuer, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600, "scope": "read"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def start_peer(argv: list[str], prefix: str, name: str, stderr: int = subprocess.STDOUT) -> tuple[subprocess.Popen, str]:
    """Starts a peer that prints ``PREFIX ISSUER`` when it listens; its process and issuer
    (waited for with a 30 s deadline; the test fails, the process stopped, without it)."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.stdout is not None:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return process, line.split()[1]
        if not line and process.poll() is not None:
            break
    stop_process(process)
    pytest.fail(f"{name} did not start")


def stop_process(process: subprocess.Popen) -> None:
    """Stops a peer by its PID: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Provider:
    """``idm provider`` with the given private keys (and other settings of its JSON
    configuration); stopped (by PID) at the end."""

    def __init__(self, keys: list[Key], settings: dict | None = None):
        self.dir = tempfile.mkdtemp(prefix="idm-py-provider-")
        keys_file = Path(self.dir) / "keys.json"
        keys_file.write_text(json.dumps({"keys": [k.private_jwk for k in keys]}))
        config = Path(self.dir) / "config.json"
        config.write_text(json.dumps({**(settings or {}), "keys_file": str(keys_file)}))
        argv = [idm_binary(), "provider", "--port", "0", "--config", str(config)]
        self.process, self.issuer = start_peer(argv, "issuer", "idm provider")
        self.discovery = f"{self.issuer}/.well-known/openid-configuration"

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="session")
def keys() -> dict[str, Key]:
    return {"RS256": Key("RS256"), "ES256": Key("ES256")}


@pytest.fixture(scope="session")
def provider(keys):
    provider = Provider(list(keys.values()))
    yield provider
    provider.stop()


class MiniOP:
    """Discovery and a key set served in process; keys can be swapped, requests counted."""

    def __init__(self, keys: list[Key]):
        self.keys = list(keys)
        self.counts = {"discovery": 0, "jwks": 0}
        self.lock = threading.Lock()
        op = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    name, body = "discovery", {
                        "issuer": op.issuer,
                        "jwks_uri": f"{op.issuer}/jwks",
                        "authorization_endpoint": f"{op.issuer}/authorize",
                        "token_endpoint": f"{op.issuer}/token",
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    }
                    content_type = "application/json"
                elif self.path == "/jwks":
                    with op.lock:
                        name, body = "jwks", {"keys": [k.public_jwk for k in op.keys]}
                    content_type = "application/jwk-set+json"
                else:
                    self.send_error(404)
                    return
                with op.lock:
                    op.counts[name] += 1
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "max-age=300")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.discovery = f"{self.issuer}/.well-known/openid-configuration"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def replace_keys(self, keys: list[Key]) -> None:
        with self.lock:
            self.keys = list(keys)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mini_op(keys):
    op = MiniOP([keys["RS256"]])
    yield op
    op.stop()


class Recorded:
    """One request a FixtureServer received."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        self.method, self.path, self.headers, self.body = method, path, headers, body

    def form(self) -> list[tuple[str, str]]:
        from urllib.parse import parse_qsl

        return parse_qsl(self.body.decode(), keep_blank_values=True)

    def form_dict(self) -> dict[str, str]:
        return dict(self.form())


class FixtureServer:
    """An HTTP server in process that answers with the responses a test queues (the last one
    repeats) and records every request; ``hold`` keeps answers back until ``release``."""

    def __init__(self):
        self.requests: list[Recorded] = []
        self.queue: list[tuple[int, bytes, dict[str, str]]] = []
        self.held = threading.Event()
        self.held.set()
        self.lock = threading.Lock()
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fixture.lock:
                    fixture.requests.append(Recorded(self.command, self.path, headers, body))
                    status, data, extra = fixture.queue.pop(0) if len(fixture.queue) > 1 else fixture.queue[0]
                if not fixture.held.wait(timeout=30):
                    return
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, status: int, body: str | bytes | dict = b"", content_type: str = "application/json", **headers: str):
        """Queues an answer; the last queued one repeats."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body.encode() if isinstance(body, str) else body
        with self.lock:
            self.queue.append((status, data, {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}))
        return self

    def reset(self) -> FixtureServer:
        with self.lock:
            self.queue.clear()
            self.requests.clear()
        return self

    def last(self) -> Recorded:
        with self.lock:
            return self.requests[-1]

    def stop(self) -> None:
        self.held.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fixture_server():
    server = FixtureServer()
    yield server
    server.stop()


def redirect_of(url: str) -> str:
    """The ``Location`` of a provider's redirect answer to a GET of ``url`` (not followed)."""
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        answer = connection.getresponse()
        assert answer.status in (302, 303), answer.status
        return answer.getheader("Location")
    finally:
        connection.close()
