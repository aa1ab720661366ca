"""py-identity-model's RP-Initiated Logout helpers (OpenID Connect RP-Initiated Logout 1.0
section 2): the end-session URL and the constant-time check of the ``state`` that comes back
to the post-logout redirect URI. Pure string work, the same in ``identity_model.aio``.
(Back-channel logout tokens: ``validate_logout_token``.)"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode, urlsplit

from .exceptions import LogoutStateValidationException

_RESERVED = frozenset({"id_token_hint", "logout_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales"})


def build_end_session_url(
    end_session_endpoint: str,
    id_token_hint: str | None = None,
    client_id: str | None = None,
    post_logout_redirect_uri: str | None = None,
    state: str | None = None,
    logout_hint: str | None = None,
    ui_locales: str | None = None,
    **extra_params: str,
) -> str:
    """The end-session URL with the parameters that are given (none is required by the
    specification). A fragment of the endpoint is dropped (a query after it would be lost);
    ``extra_params`` may not name a parameter of the specification (``ValueError``)."""
    if not end_session_endpoint or not end_session_endpoint.strip():
        raise ValueError("end_session_endpoint must not be empty")
    collisions = _RESERVED & extra_params.keys()
    if collisions:
        raise ValueError(
            f"extra_params must not override reserved RP-Initiated Logout parameters: {', '.join(sorted(collisions))}"
        )
    endpoint = end_session_endpoint.split("#", 1)[0]
    named = {
        "id_token_hint": id_token_hint,
        "logout_hint": logout_hint,
        "client_id": client_id,
        "post_logout_redirect_uri": post_logout_redirect_uri,
        "state": state,
        "ui_locales": ui_locales,
    }
    params = {name: value for name, value in named.items() if value is not None}
    params.update(extra_params)
    if not params:
        return endpoint
    query = urlencode(params)
    if endpoint.endswith(("?", "&")):
        return f"{endpoint}{query}"
    return f"{endpoint}{'&' if urlsplit(endpoint).query else '?'}{query}"


def validate_post_logout_state(expected_state: str | None, returned_state: str | None) -> None:
    """Raises ``LogoutStateValidationException`` unless ``returned_state`` (from the
    post-logout redirect) equals the non-empty ``expected_state`` sent to the end-session
    endpoint (compared in constant time)."""
    if not isinstance(expected_state, str) or not expected_state:
        raise LogoutStateValidationException("Expected logout state is missing or empty (session may have expired)")
    if not isinstance(returned_state, str) or not returned_state:
        raise LogoutStateValidationException("State parameter not present in post-logout redirect")
    if not hmac.compare_digest(returned_state.encode(), expected_state.encode()):
        raise LogoutStateValidationException("State parameter does not match expected value")


__all__ = ["build_end_session_url", "validate_post_logout_state"]
