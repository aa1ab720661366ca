"""py-identity-model's response objects' guard: a data field of a failed response raises
``FailedResponseAccessError``, the ``error`` of a successful one
``SuccessfulResponseAccessError``; ``repr`` never shows a secret field (tokens, codes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .exceptions import FailedResponseAccessError, SuccessfulResponseAccessError


@dataclass
class BaseRequest:
    """The base of every request: the endpoint's ``address``."""

    address: str


class _GuardedResponse:
    """The base of every response: ``is_successful``, ``error`` and guarded data fields."""

    _guarded_fields: frozenset = frozenset()
    _secret_fields: frozenset = frozenset()
    _error_fields = frozenset({"error"})
    _repr_fields: tuple | None = None  # default: the guarded fields

    def __getattribute__(self, name: str) -> Any:
        if name in object.__getattribute__(self, "_guarded_fields"):
            if not object.__getattribute__(self, "is_successful"):
                raise FailedResponseAccessError(
                    f"Cannot access '{name}' on a failed response: {object.__getattribute__(self, 'error')}. "
                    "Check 'is_successful' before accessing response data."
                )
        elif name in object.__getattribute__(self, "_error_fields"):
            if object.__getattribute__(self, "is_successful"):
                raise SuccessfulResponseAccessError(
                    f"Cannot access '{name}' on a successful response. "
                    "Check 'is_successful' before accessing error details."
                )
        return object.__getattribute__(self, name)

    def _set(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        shown = {"is_successful": object.__getattribute__(self, "is_successful")}
        if not shown["is_successful"]:
            shown["error"] = object.__getattribute__(self, "error")
        names = object.__getattribute__(self, "_repr_fields")
        for name in names if names is not None else sorted(object.__getattribute__(self, "_guarded_fields")):
            if shown["is_successful"]:
                value = object.__getattribute__(self, name)
                secret = name in object.__getattribute__(self, "_secret_fields")
                shown[name] = "[redacted]" if secret and value is not None else value
        return f"{type(self).__name__}({shown})"


BaseResponse = _GuardedResponse
"""py-identity-model's name for the base of every response (``is_successful``, ``error``,
guarded data fields)."""
