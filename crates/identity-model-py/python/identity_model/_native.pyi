from typing import Any

__version__: str

class Authority:
    def __init__(
        self,
        issuer: str,
        audience: str | list[str] | None,
        *,
        algorithms: list[str] | None = None,
        leeway: float | None = None,
        token_type: str | None = None,
        allow_http_on_loopback: bool = False,
        metadata: str = "openid",
        max_staleness: float | None = None,
    ) -> None: ...
    @property
    def issuer(self) -> str: ...
    def validate(self, token: str) -> dict[str, Any]: ...
    def validate_future(self, token: str) -> Any: ...
    def validate_id_token(
        self,
        token: str,
        client_id: str,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
        code: str | None = None,
        max_age: float | None = None,
    ) -> dict[str, Any]: ...
    def validate_logout_token(self, token: str, client_id: str) -> dict[str, Any]: ...
    def validate_id_token_future(
        self,
        token: str,
        client_id: str,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
        code: str | None = None,
        max_age: float | None = None,
    ) -> Any: ...
    def validate_logout_token_future(self, token: str, client_id: str) -> Any: ...
    def ensure_keys(self) -> None: ...
    def clear(self) -> None: ...
    def stats(self) -> dict[str, int]: ...

class KeyValidator:
    def __init__(
        self,
        keys_json: str,
        issuer: str | list[str] | None,
        audience: str | list[str] | None,
        *,
        algorithms: list[str] | None = None,
        leeway: float | None = None,
        token_type: str | None = None,
    ) -> None: ...
    def validate(self, token: str) -> dict[str, Any]: ...
    def validate_id_token(
        self,
        token: str,
        client_id: str,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
        code: str | None = None,
        max_age: float | None = None,
    ) -> dict[str, Any]: ...
    def validate_logout_token(self, token: str, client_id: str) -> dict[str, Any]: ...

class TokenManager:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: list[str] = ...,
        resources: list[str] = ...,
        *,
        allow_http_on_loopback: bool = False,
    ) -> None: ...
    def get(self) -> dict[str, Any]: ...
    def get_future(self) -> Any: ...
    def invalidate(self, access_token: str) -> None: ...

class DpopKey:
    def __init__(self, algorithm: str = "ES256") -> None: ...
    @staticmethod
    def from_jwk(jwk: str, algorithm: str | None = None) -> DpopKey: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def public_jwk(self) -> dict[str, Any]: ...
    @property
    def jwk_thumbprint(self) -> str: ...
    def private_jwk(self) -> dict[str, Any] | None: ...
    def proof(self, method: str, uri: str, access_token: str | None = None, nonce: str | None = None) -> str: ...

class OAuthClient:
    def __init__(
        self,
        client_id: str,
        *,
        auth_method: str = "none",
        client_secret: str | None = None,
        private_key_der: bytes | None = None,
        algorithm: str | None = None,
        kid: str | None = None,
        assertion_audience: str | None = None,
        dpop_key: DpopKey | None = None,
        endpoints: dict[str, str] = ...,
        allow_http_on_loopback: bool = True,
        client_certificate: str | None = None,
        client_key: str | None = None,
    ) -> None: ...
    def call(self, name: str, params: list[tuple[str, str]]) -> dict[str, Any] | None: ...
    def call_future(self, name: str, params: list[tuple[str, str]]) -> Any: ...

def error_kinds() -> list[tuple[str, str]]: ...
def jwk_thumbprint(jwk: str) -> str: ...
def sign_jwt(private_key_der: bytes, algorithm: str, claims_json: str, typ: str | None = None, kid: str | None = None) -> str: ...

def discover(issuer: str, metadata: str = "openid", allow_http_on_loopback: bool = False) -> str: ...
def discover_future(issuer: str, metadata: str = "openid", allow_http_on_loopback: bool = False) -> Any: ...
def fetch_jwks(url: str, allow_http_on_loopback: bool = False) -> tuple[str, str | None]: ...
def fetch_jwks_future(url: str, allow_http_on_loopback: bool = False) -> Any: ...
