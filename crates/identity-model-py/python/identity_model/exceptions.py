"""Exceptions: py-identity-model's hierarchy (same names, bases and constructors), each
carrying the stable error kind of the Rust core (``kind``), whose fault it is (``fault``:
``token``, ``provider``, ``configuration`` or ``store``) and, when one claim is at fault,
its name (``claim``)."""

from __future__ import annotations


class PyIdentityModelException(Exception):
    """Base exception for all errors."""

    kind: str | None = None
    fault: str | None = None
    claim: str | None = None

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ValidationException(PyIdentityModelException):
    """Raised when validation fails."""


class TokenValidationException(ValidationException):
    """Raised when token validation fails."""

    def __init__(self, message: str, token_part: str | None = None, details: dict | None = None):
        super().__init__(message, details)
        self.token_part = token_part


class SignatureVerificationException(TokenValidationException):
    """The signature does not verify."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message, token_part="signature", details=details)


class TokenExpiredException(TokenValidationException):
    """The token has expired."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message, token_part="payload", details=details)


class InvalidAudienceException(TokenValidationException):
    """The audience is not the expected one."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message, token_part="payload", details=details)


class InvalidIssuerException(TokenValidationException):
    """The issuer is not the expected one."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message, token_part="payload", details=details)


class LogoutTokenValidationException(TokenValidationException):
    """A back-channel logout token breaks its profile."""


class IdTokenValidationException(TokenValidationException):
    """An ID token breaks its profile (nonce, at_hash, azp, auth_time)."""


class CertificateBindingError(TokenValidationException):
    """A certificate-bound token is presented without its certificate."""


class ClaimsValidationError(TokenValidationException):
    """A claims validator refused the token."""

    def __init__(self, reason: str, claim: str | None = None, details: dict | None = None):
        if details is None:
            details = {"reason": reason} if claim is None else {"reason": reason, "claim": claim}
        super().__init__(reason, token_part="payload", details=details)
        self.reason = reason
        self.claim = claim


class LogoutStateValidationException(ValidationException):
    """The post-logout ``state`` does not match."""


class AuthorizeCallbackException(ValidationException):
    """An authorization callback fails its checks."""


class JarmValidationException(AuthorizeCallbackException):
    """A JARM response fails its checks."""


class NetworkException(PyIdentityModelException):
    """The provider could not be asked, or answered badly."""

    def __init__(
        self,
        message: str,
        url: str | None = None,
        status_code: int | None = None,
        details: dict | None = None,
    ):
        super().__init__(message, details)
        self.url = url
        self.status_code = status_code


class DiscoveryException(NetworkException):
    """The discovery document could not be had."""


class DiscoveryParseError(DiscoveryException):
    """The discovery document is not usable JSON."""


class DiscoveryMissingFieldsError(DiscoveryException):
    """The discovery document lacks required members."""


class JwksException(NetworkException):
    """The key set could not be had."""


class TokenRequestException(NetworkException):
    """A token request failed."""


class UserInfoException(NetworkException):
    """A userinfo request failed."""


class ConfigurationException(PyIdentityModelException):
    """The configuration (or the use of the API) is wrong."""


class DiscoveryHTTPSRequiredError(ConfigurationException):
    """A URL is not HTTPS where HTTPS is required."""


class FailedResponseAccessError(PyIdentityModelException):
    """A data field was read on a failed response."""


class SuccessfulResponseAccessError(PyIdentityModelException):
    """``error`` was read on a successful response."""


# The class for each stable error kind of the core whose answer is more precise than its
# fault's default (see ``from_native``).
_BY_KIND: dict[str, type[PyIdentityModelException]] = {
    "token_expired": TokenExpiredException,
    "invalid_audience": InvalidAudienceException,
    "invalid_issuer": InvalidIssuerException,
    "invalid_signature": SignatureVerificationException,
    "invalid_callback": AuthorizeCallbackException,
    "invalid_document": DiscoveryParseError,
    "missing_fields": DiscoveryMissingFieldsError,
    "issuer_mismatch": DiscoveryException,
    "invalid_key_set": JwksException,
    "policy_violation": DiscoveryHTTPSRequiredError,
}

# The class for each fault.
_BY_FAULT: dict[str, type[PyIdentityModelException]] = {
    "token": TokenValidationException,
    "provider": NetworkException,
    "store": NetworkException,
    "configuration": ConfigurationException,
}


def from_native(kind: str, fault: str, message: str, claim: str | None) -> PyIdentityModelException:
    """The exception for an error of the Rust core (called by the extension module)."""
    cls = _BY_KIND.get(kind) or _BY_FAULT.get(fault, PyIdentityModelException)
    details = {"kind": kind}
    if claim is not None:
        details["claim"] = claim
    if issubclass(cls, ClaimsValidationError):
        error = cls(message, claim=claim, details=details)
    else:
        error = cls(message, details=details)
    error.kind = kind
    error.fault = fault
    error.claim = claim
    return error


__all__ = [
    "AuthorizeCallbackException",
    "CertificateBindingError",
    "ClaimsValidationError",
    "ConfigurationException",
    "DiscoveryException",
    "DiscoveryHTTPSRequiredError",
    "DiscoveryMissingFieldsError",
    "DiscoveryParseError",
    "FailedResponseAccessError",
    "IdTokenValidationException",
    "InvalidAudienceException",
    "InvalidIssuerException",
    "JarmValidationException",
    "JwksException",
    "LogoutStateValidationException",
    "LogoutTokenValidationException",
    "NetworkException",
    "PyIdentityModelException",
    "SignatureVerificationException",
    "SuccessfulResponseAccessError",
    "TokenExpiredException",
    "TokenRequestException",
    "TokenValidationException",
    "UserInfoException",
    "ValidationException",
    "from_native",
]
