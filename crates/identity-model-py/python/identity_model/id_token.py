"""py-identity-model's ``validate_id_token`` and ``validate_logout_token`` on the Rust
core: the same key source as ``validate_token`` (discovery, cache, rotation), the profile
checks in Rust. A profile failure (``nonce``, ``azp``, ``auth_time``/``max_age``,
``at_hash``, ``c_hash``; a logout token's ``events``, ``sid``/``sub``, ``nonce``, ``jti``,
``typ``) raises ``IdTokenValidationException`` / ``LogoutTokenValidationException``; a
signature, expiry, audience or issuer failure the usual ``TokenValidationException``
subclass."""

from __future__ import annotations

from typing import Any

from .exceptions import (
    ConfigurationException,
    IdTokenValidationException,
    LogoutTokenValidationException,
    TokenValidationException,
)
from .validation import (
    TokenValidationConfig,
    _after,
    _authority,
    _checked_options,
    _key_validator,
    _run_validator,
)

_ID_TOKEN_CLAIMS = frozenset({"nonce", "azp", "auth_time", "at_hash", "c_hash", "sub", "iat"})
_LOGOUT_CLAIMS = frozenset({"events", "sid", "sub", "nonce", "jti", "iat"})
_PROFILE_KINDS = frozenset({"invalid_claim", "missing_claim", "invalid_token_type"})


def _client_id(config: TokenValidationConfig) -> str:
    if not isinstance(config.audience, str) or not config.audience:
        raise ConfigurationException("TokenValidationConfig.audience must be the client_id (one string)")
    return config.audience


def _reclassed(error: TokenValidationException, claims: frozenset, cls: type) -> TokenValidationException:
    """``error`` as ``cls`` when it is a profile failure (its claim among ``claims``)."""
    if type(error) is not TokenValidationException or error.kind not in _PROFILE_KINDS:
        return error
    if error.kind != "invalid_token_type" and error.claim not in claims:
        return error
    reclassed = cls(error.message, token_part="payload", details=error.details)
    reclassed.kind, reclassed.fault, reclassed.claim = error.kind, error.fault, error.claim
    return reclassed


def _validator(config: TokenValidationConfig, address: str | None) -> Any:
    return _authority(config, address) if config.perform_disco else _key_validator(config)


def validate_id_token(
    id_token: str,
    token_validation_config: TokenValidationConfig,
    disco_doc_address: str | None = None,
    http_client: Any = None,
    *,
    nonce: str | None = None,
    access_token: str | None = None,
    code: str | None = None,
    max_age: int | None = None,
) -> dict:
    """Validates an ID token (OIDC Core section 3.1.3.7): ``audience`` is the client id."""
    config = token_validation_config
    required = _checked_options(config.options)
    checks = {"nonce": nonce, "access_token": access_token, "code": code, "max_age": max_age}
    try:
        claims = _validator(config, disco_doc_address).validate_id_token(id_token, _client_id(config), **checks)
    except TokenValidationException as error:
        raise _reclassed(error, _ID_TOKEN_CLAIMS, IdTokenValidationException) from None
    _after(claims, config, required)
    _run_validator(claims, config)
    return claims


async def validate_id_token_async(
    id_token: str,
    token_validation_config: TokenValidationConfig,
    disco_doc_address: str | None = None,
    http_client: Any = None,
    *,
    nonce: str | None = None,
    access_token: str | None = None,
    code: str | None = None,
    max_age: int | None = None,
) -> dict:
    """``validate_id_token`` as a coroutine (``identity_model.aio``)."""
    config = token_validation_config
    required = _checked_options(config.options)
    checks = {"nonce": nonce, "access_token": access_token, "code": code, "max_age": max_age}
    validator = _validator(config, disco_doc_address)
    try:
        if config.perform_disco:
            claims = await validator.validate_id_token_future(id_token, _client_id(config), **checks)
        else:
            claims = validator.validate_id_token(id_token, _client_id(config), **checks)
    except TokenValidationException as error:
        raise _reclassed(error, _ID_TOKEN_CLAIMS, IdTokenValidationException) from None
    _after(claims, config, required)
    _run_validator(claims, config)
    return claims


def validate_logout_token(
    logout_token: str,
    token_validation_config: TokenValidationConfig,
    disco_doc_address: str | None = None,
    http_client: Any = None,
) -> dict:
    """Validates a back-channel logout token (OIDC Back-Channel Logout 1.0 section 2.6):
    ``audience`` is the client id. Refusing a replayed ``jti`` is the caller's job."""
    config = token_validation_config
    try:
        return _validator(config, disco_doc_address).validate_logout_token(logout_token, _client_id(config))
    except TokenValidationException as error:
        raise _reclassed(error, _LOGOUT_CLAIMS, LogoutTokenValidationException) from None


async def validate_logout_token_async(
    logout_token: str,
    token_validation_config: TokenValidationConfig,
    disco_doc_address: str | None = None,
    http_client: Any = None,
) -> dict:
    """``validate_logout_token`` as a coroutine (``identity_model.aio``)."""
    config = token_validation_config
    validator = _validator(config, disco_doc_address)
    try:
        if config.perform_disco:
            return await validator.validate_logout_token_future(logout_token, _client_id(config))
        return validator.validate_logout_token(logout_token, _client_id(config))
    except TokenValidationException as error:
        raise _reclassed(error, _LOGOUT_CLAIMS, LogoutTokenValidationException) from None


__all__ = ["validate_id_token", "validate_logout_token"]
