"""`idm serve --grpc-listen` asked the way Envoy asks: Python grpcio with Envoy's own API
definitions (the `envoy-data-plane` package from PyPI), sharing no code with the sidecar.
The sidecar trusts `idm provider`; tokens come from its client-credentials endpoint. Run by
scripts/test (which installs grpcio and envoy-data-plane into its virtualenv); outside CI a
missing package skips loudly, under CI it fails."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

try:
    import grpc
    from envoy_data_plane.envoy.service.auth.v3 import (
        AttributeContext,
        AttributeContextHttpRequest,
        AttributeContextRequest,
        CheckRequest,
        CheckResponse,
    )
except ImportError as missing:  # pragma: no cover - the skip/fail is the point
    if os.environ.get("CI") == "true":
        raise
    pytest.skip(f"*** SKIPPED: gRPC ext_authz tests: {missing} (pip install grpcio envoy-data-plane) ***", allow_module_level=True)


def idm() -> str:
    path = os.environ.get("IDM_BIN") or str(REPO / "target" / "debug" / "idm")
    if not Path(path).exists():
        pytest.fail(f"idm binary not found at {path}")
    return path


class Process:
    """A child process whose first stdout lines are read; stopped by PID."""

    def __init__(self, args: list[str], lines: int):
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        deadline = time.monotonic() + 30
        while len(self.lines) < lines and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.strip())
        if len(self.lines) < lines:
            self.stop()
            pytest.fail(f"{args[1]} did not start: {self.lines}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def provider():
    process = Process([idm(), "provider", "--port", "0"], 2)
    issuer = next(line.split()[1] for line in process.lines if line.startswith("issuer"))
    yield issuer
    process.stop()


@pytest.fixture(scope="module")
def sidecar(provider):
    config = Path(tempfile.mkdtemp(prefix="idm-grpc-")) / "serve.toml"
    config.write_text(
        f'[[issuer]]\nissuer = "{provider}"\naudience = "https://api.example"\nallow_http = true\n\n'
        '[[route]]\nprefix = "/admin"\nscopes = ["admin"]\n\n[[route]]\nprefix = "/public"\nanonymous = true\n'
    )
    process = Process([idm(), "serve", "--config", str(config), "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"], 2)
    grpc_addr = process.lines[1].rsplit(" ", 1)[1]
    channel = grpc.insecure_channel(grpc_addr)
    yield channel
    channel.close()
    process.stop()


def token(issuer: str) -> str:
    form = b"grant_type=client_credentials&scope=api:read"
    request = urllib.request.Request(f"{issuer}/token", data=form)
    request.add_header("Authorization", "Basic " + base64.b64encode(b"demo-service:demo-secret").decode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["access_token"]


def check(channel, method: str, path: str, headers: dict[str, str]) -> CheckResponse:
    call = channel.unary_unary(
        "/envoy.service.auth.v3.Authorization/Check",
        request_serializer=bytes,
        response_deserializer=CheckResponse.parse,
    )
    http = AttributeContextHttpRequest(method=method, path=path, host="api.example", headers=headers, protocol="HTTP/1.1")
    request = CheckRequest(attributes=AttributeContext(request=AttributeContextRequest(http=http)))
    return call(request, timeout=10)


def headers_of(options) -> dict[str, str]:
    return {option.header.key.lower(): option.header.value for option in options}


def test_allowed_checks_get_identity_headers(provider, sidecar):
    response = check(sidecar, "GET", "/orders?x=1", {"authorization": f"Bearer {token(provider)}"})
    assert response.status.code == 0, response
    identity = headers_of(response.ok_response.headers)
    assert identity["x-auth-request-user"] == "demo-service"
    assert identity["x-auth-request-scope"] == "api:read"
    assert identity["x-auth-request-email"] == "", "every identity header, empty when absent"


def test_refusals_are_denied_responses_with_status_challenge_and_body(provider, sidecar):
    missing = check(sidecar, "GET", "/orders", {})
    assert missing.status.code == 16  # UNAUTHENTICATED
    assert missing.denied_response.status.code == 401
    assert headers_of(missing.denied_response.headers)["www-authenticate"] == 'Bearer realm="api"'
    assert json.loads(missing.denied_response.body)["error"] == "missing_token"

    scoped = check(sidecar, "GET", "/admin/users", {"authorization": f"Bearer {token(provider)}"})
    assert scoped.status.code == 7  # PERMISSION_DENIED
    assert scoped.denied_response.status.code == 403
    assert json.loads(scoped.denied_response.body)["error"] == "insufficient_scope"

    assert check(sidecar, "GET", "/public/page", {}).status.code == 0
    climb = check(sidecar, "GET", "/public/..%2fadmin", {})
    assert climb.denied_response.status.code == 400
    assert json.loads(climb.denied_response.body)["error"] == "ambiguous_target"
    override = check(sidecar, "GET", "/public/x", {"x-http-method-override": "DELETE"})
    assert override.status.code == 0, "same rule for DELETE"


def test_readiness_through_the_grpc_health_protocol(sidecar):
    call = sidecar.unary_unary("/grpc.health.v1.Health/Check", request_serializer=bytes, response_deserializer=bytes)
    # HealthCheckRequest{service = "envoy.service.auth.v3.Authorization"}; the answer's field 1
    # is the status: 1 = SERVING.
    name = b"envoy.service.auth.v3.Authorization"
    deadline = time.monotonic() + 20
    while True:
        answer = call(b"\x0a" + bytes([len(name)]) + name, timeout=5)
        if answer == b"\x08\x01" or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # a condition wait with a deadline: the keys load in the background
    assert answer == b"\x08\x01", answer
    assert call(b"", timeout=5) == b"\x08\x01"
