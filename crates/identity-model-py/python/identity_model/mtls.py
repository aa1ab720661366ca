"""py-identity-model's RFC 8705 helpers: the ``x5t#S256`` thumbprint of a certificate, the
check that a certificate-bound token (``cnf.x5t#S256``) belongs to the certificate presented
on the connection, and the ``mtls_endpoint_aliases`` lookup. (Client authentication with a
certificate: ``MtlsClientAuth`` on any request.) No dependency beyond the standard library: a
certificate is read from PEM or DER and checked for the shape of an X.509 certificate."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

from .exceptions import CertificateBindingError

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


def _der_length(data: bytes, at: int) -> tuple[int, int] | None:
    """The length of the DER element whose length octets start at ``at``, and where its
    content starts."""
    if at >= len(data):
        return None
    first = data[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    if count == 0 or count > 4 or at + 1 + count > len(data):
        return None
    return int.from_bytes(data[at + 1 : at + 1 + count], "big"), at + 1 + count


def _certificate_der(cert: str | bytes) -> bytes:
    """The DER of a PEM (first certificate) or DER certificate; ``ValueError`` unless it has
    the shape of one (a SEQUENCE filling the input, starting with the tbsCertificate
    SEQUENCE)."""
    if not cert or (isinstance(cert, str) and not cert.strip()):
        raise ValueError("certificate must not be empty")
    data = cert.encode("utf-8") if isinstance(cert, str) else bytes(cert)
    found = _PEM.search(data)
    if found:
        try:
            data = base64.b64decode(b"".join(found.group(1).split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("certificate is not valid PEM or DER X.509 content") from None
    outer = _der_length(data, 1) if data[:1] == b"\x30" else None
    inner = _der_length(data, outer[1] + 1) if outer and data[outer[1] : outer[1] + 1] == b"\x30" else None
    if not outer or outer[1] + outer[0] != len(data) or not inner or inner[1] + inner[0] > len(data):
        raise ValueError("certificate is not valid PEM or DER X.509 content")
    return data


def compute_certificate_thumbprint(cert: str | bytes) -> str:
    """The RFC 8705 section 3.1 ``x5t#S256``: base64url (no padding) of the SHA-256 of the
    certificate's DER. ``cert``: PEM text or bytes, or DER bytes."""
    digest = hashlib.sha256(_certificate_der(cert)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def certificate_thumbprint_from_file(path: str) -> str:
    """The ``x5t#S256`` of the PEM or DER certificate in ``path``."""
    if not path or not str(path).strip():
        raise ValueError("path must not be empty")
    return compute_certificate_thumbprint(Path(path).read_bytes())


def validate_certificate_binding(claims: dict, cert: str | bytes) -> None:
    """Raises ``CertificateBindingError`` unless the (already validated) token claims are
    bound to ``cert``: ``cnf`` holds an ``x5t#S256`` equal to the certificate's thumbprint
    (compared in constant time)."""
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict):
        raise CertificateBindingError("Access token is not certificate-bound: missing 'cnf' claim (RFC 8705 Section 3.1)")
    bound = cnf.get("x5t#S256")
    if not bound or not isinstance(bound, str):
        raise CertificateBindingError(
            "Access token 'cnf' claim has no 'x5t#S256' certificate thumbprint (RFC 8705 Section 3.1)"
        )
    if not bound.isascii():
        raise CertificateBindingError(
            "Access token 'cnf[x5t#S256]' is not a valid base64url thumbprint (non-ASCII characters) (RFC 8705 Section 3.1)"
        )
    if not hmac.compare_digest(bound, compute_certificate_thumbprint(cert)):
        raise CertificateBindingError(
            "Certificate binding mismatch: token 'cnf[x5t#S256]' does not match the presented client certificate (RFC 8705 Section 3)"
        )


def resolve_mtls_endpoint(disco: Any, endpoint: str) -> str | None:
    """``endpoint`` (a discovery member name such as ``token_endpoint``) through the
    document's ``mtls_endpoint_aliases`` (RFC 8705 section 5) when it has one, else the
    document's own value."""
    aliases = disco.mtls_endpoint_aliases
    if isinstance(aliases, dict) and aliases.get(endpoint):
        return aliases[endpoint]
    return getattr(disco, endpoint, None)


__all__ = [
    "certificate_thumbprint_from_file",
    "compute_certificate_thumbprint",
    "resolve_mtls_endpoint",
    "validate_certificate_binding",
]
