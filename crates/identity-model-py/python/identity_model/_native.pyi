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

def error_kinds() -> list[tuple[str, str]]: ...

def discover(issuer: str, metadata: str = "openid", allow_http_on_loopback: bool = False) -> str: ...
def discover_future(issuer: str, metadata: str = "openid", allow_http_on_loopback: bool = False) -> Any: ...
