"""RFC 8705 from Python: ``MtlsClientAuth`` presents the client certificate in the handshake
of a real TLS server that requires one (Python's ``ssl``), the request names the client and
carries no secret; the thumbprint, binding and alias helpers agree with py-identity-model
4.1.1. Certificates are made here with ``cryptography``."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import types
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import identity_model as im

pim = pytest.importorskip("py_identity_model", reason="py-identity-model 4.1.1 is installed by scripts/test")


def _certificate(name: str, key, issuer_name, issuer_key, *, ca=False, ip=None, usage=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


class Pki:
    def __init__(self, folder):
        pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
        key_pem = lambda k: k.private_bytes(  # noqa: E731
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("identity-model test CA", ca_key, None, None, ca=True)
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = _certificate("server", server_key, ca.subject, ca_key, ip="127.0.0.1", usage=ExtendedKeyUsageOID.SERVER_AUTH)
        client_key = ec.generate_private_key(ec.SECP256R1())
        self.client = _certificate("svc", client_key, ca.subject, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        self.files = {}
        for name, data in {
            "ca.pem": pem(ca),
            "server.pem": pem(server) + key_pem(server_key),
            "client.pem": pem(self.client),
            "client-key.pem": key_pem(client_key),
        }.items():
            path = folder / name
            path.write_bytes(data)
            self.files[name] = str(path)
        self.client_der = self.client.public_bytes(serialization.Encoding.DER)
        self._ca, self._ca_key, self._key_pem = ca, ca_key, key_pem

    def renew_client(self) -> None:
        """A new key and certificate from the same CA, written over the client's files."""
        import os

        self.previous_client_der = self.client_der
        key = ec.generate_private_key(ec.SECP256R1())
        self.client = _certificate("svc", key, self._ca.subject, self._ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        self.client_der = self.client.public_bytes(serialization.Encoding.DER)
        for name, data in (("client.pem", self.client.public_bytes(serialization.Encoding.PEM)), ("client-key.pem", self._key_pem(key))):
            before = os.stat(self.files[name]).st_mtime_ns
            with open(self.files[name], "wb") as out:
                out.write(data)
            # A file rewritten within the clock's granularity keeps its mtime: move it on.
            os.utime(self.files[name], ns=(before + 1_000_000, before + 1_000_000))


class TokenEndpoint:
    """An HTTPS token endpoint that requires a client certificate of the test CA; it records
    each request's client certificate, headers and form."""

    def __init__(self, pki: Pki):
        self.seen: list[dict] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                seen.append({"cert": self.connection.getpeercert(binary_form=True), "headers": dict(self.headers), "form": form})
                body = json.dumps({"access_token": "AT-mtls", "token_type": "Bearer", "expires_in": 60}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.files["server.pem"])
        context.load_verify_locations(pki.files["ca.pem"])
        context.verify_mode = ssl.CERT_REQUIRED
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.server.handle_error = lambda request, address: None  # refused handshakes are expected
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


@pytest.fixture
def endpoint(pki, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", pki.files["ca.pem"])
    monkeypatch.setenv("HTTP_RETRY_MAX_ATTEMPTS", "1")
    served = TokenEndpoint(pki)
    yield served
    served.stop()


def test_mtls_client_auth_presents_the_certificate_and_names_the_client(pki, endpoint):
    mtls = im.MtlsClientAuth(certificate=pki.files["client.pem"], private_key=pki.files["client-key.pem"])
    for method in ("tls_client_auth", "self_signed_tls_client_auth"):
        mtls.auth_method = method
        request = im.ClientCredentialsTokenRequest(address=endpoint.url, client_id="svc", scope="api:read", mtls=mtls)
        response = im.request_client_credentials_token(request)
        assert response.is_successful, response
        assert response.token["access_token"] == "AT-mtls"
    assert [s["cert"] for s in endpoint.seen] == [pki.client_der, pki.client_der], "the handshake carried the certificate"
    for seen in endpoint.seen:
        assert seen["form"]["client_id"] == "svc" and "client_secret" not in seen["form"]
        assert "Authorization" not in seen["headers"]
    assert im.compute_certificate_thumbprint(endpoint.seen[0]["cert"]) == im.certificate_thumbprint_from_file(pki.files["client.pem"])


def test_a_renewed_certificate_is_presented_on_the_next_request(pki, endpoint):
    mtls = im.MtlsClientAuth(certificate=pki.files["client.pem"], private_key=pki.files["client-key.pem"])
    request = im.ClientCredentialsTokenRequest(address=endpoint.url, client_id="svc", mtls=mtls)
    assert im.request_client_credentials_token(request).is_successful
    # Renewed in place (as cert-manager or a sidecar does it): same paths, a new certificate.
    pki.renew_client()
    assert im.request_client_credentials_token(request).is_successful
    assert pki.previous_client_der != pki.client_der
    assert [s["cert"] for s in endpoint.seen] == [pki.previous_client_der, pki.client_der]


def test_without_the_certificate_the_handshake_is_refused_and_bad_settings_are_clear(pki, endpoint):
    refused = im.request_client_credentials_token(
        im.ClientCredentialsTokenRequest(address=endpoint.url, client_id="svc", client_secret="s")
    )
    assert not refused.is_successful
    assert endpoint.seen == []
    for mtls, words in (
        (im.MtlsClientAuth(pki.files["client.pem"], pki.files["client-key.pem"], password="pw"), "encrypted"),
        (im.MtlsClientAuth(pki.files["client.pem"], pki.files["client-key.pem"], auth_method="client_secret_basic"), "auth_method"),
        (im.MtlsClientAuth(pki.files["client.pem"], pki.files["client.pem"] + ".missing"), "cannot read"),
    ):
        request = im.ClientCredentialsTokenRequest(address=endpoint.url, client_id="svc", mtls=mtls)
        # As every failure of a request function: a failed response saying why.
        response = im.request_client_credentials_token(request)
        assert not response.is_successful and words in response.error, response.error
    assert endpoint.seen == []


def test_aio_mtls(pki, endpoint):
    import asyncio

    mtls = im.MtlsClientAuth(certificate=pki.files["client.pem"], private_key=pki.files["client-key.pem"])
    request = im.aio.ClientCredentialsTokenRequest(address=endpoint.url, client_id="svc", mtls=mtls)
    response = asyncio.run(im.aio.request_client_credentials_token(request))
    assert response.is_successful and endpoint.seen[0]["cert"] == pki.client_der


def test_thumbprint_binding_and_alias_helpers_agree(pki):
    def outcome(call):
        try:
            return ("ok", call())
        except Exception as e:  # noqa: BLE001 - the class is the verdict
            return (type(e).__name__,)

    pem = open(pki.files["client.pem"]).read()
    for cert in (pem, pem.encode(), pki.client_der, "", b"", "not a certificate", b"\x30\x03\x02\x01\x01", pem.replace("M", "*", 1)):
        assert outcome(lambda: im.compute_certificate_thumbprint(cert)) == outcome(lambda: pim.compute_certificate_thumbprint(cert)), cert
    assert im.certificate_thumbprint_from_file(pki.files["client.pem"]) == pim.certificate_thumbprint_from_file(pki.files["client.pem"])
    thumbprint = im.compute_certificate_thumbprint(pem)
    for claims in ({"cnf": {"x5t#S256": thumbprint}}, {"cnf": {"x5t#S256": "other"}}, {"cnf": {"jkt": "x"}}, {}, {"cnf": "x"}, {"cnf": {"x5t#S256": "é"}}):
        assert outcome(lambda: im.validate_certificate_binding(claims, pem)) == outcome(
            lambda: pim.validate_certificate_binding(claims, pem)
        ), claims
    for aliases in ({"token_endpoint": "https://mtls.op/token"}, {}, None, {"token_endpoint": ""}):
        disco = types.SimpleNamespace(mtls_endpoint_aliases=aliases, token_endpoint="https://op/token")
        assert im.resolve_mtls_endpoint(disco, "token_endpoint") == pim.resolve_mtls_endpoint(disco, "token_endpoint")
    assert im.resolve_mtls_endpoint(disco, "userinfo_endpoint") is None
