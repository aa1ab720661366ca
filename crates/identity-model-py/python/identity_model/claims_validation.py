"""py-identity-model's composable claims validators: a ``claims_validator`` of
``TokenValidationConfig`` is any ``(claims) -> None`` callable that raises to refuse (a
``ClaimsValidationError`` carries the reason and the claim); these build and combine them.
They run after the signature, issuer, audience and expiry checks have passed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable

from .exceptions import ClaimsValidationError


@runtime_checkable
class ClaimsValidator(Protocol):
    """A callable that accepts the decoded claims (returns ``None``) or raises
    ``ClaimsValidationError``."""

    def __call__(self, claims: Mapping[str, Any], /) -> None: ...


def combine_claims_validators(
    validators: Iterable[ClaimsValidator], *, require: Literal["all", "any"] = "all"
) -> ClaimsValidator:
    """One validator of several: ``"all"`` must accept (the first refusal is raised), or
    ``"any"`` one of them (a refusal naming every reason when none does; only a
    ``ClaimsValidationError`` counts as a refusal there, anything else propagates). An empty
    ``"any"`` set is a ``ValueError`` (it would refuse every token)."""
    if require not in ("all", "any"):
        raise ValueError(f"require must be 'all' or 'any', got {require!r}")
    members = tuple(validators)
    if require == "any" and not members:
        raise ValueError(
            "combine_claims_validators(require='any') needs at least one validator; "
            "an empty any-of set rejects every token."
        )

    def _validate(claims: Mapping[str, Any]) -> None:
        if require == "all":
            for validator in members:
                validator(claims)
            return
        reasons: list[str] = []
        for validator in members:
            try:
                validator(claims)
            except ClaimsValidationError as e:
                reasons.append(e.reason)
            else:
                return
        raise ClaimsValidationError("no validator accepted the claims: " + "; ".join(reasons))

    return _validate


def require_claims(*names: str) -> ClaimsValidator:
    """Refuses unless every named claim is present and not null."""
    if not names:
        raise ValueError("require_claims needs at least one claim name")

    def _validate(claims: Mapping[str, Any]) -> None:
        for name in names:
            if claims.get(name) is None:
                raise ClaimsValidationError(f"required claim {name!r} is missing", claim=name)

    return _validate


def require_claim_value(name: str, value: Any) -> ClaimsValidator:
    """Refuses unless claim ``name`` is present and equals ``value`` (an absent claim is
    refused even when ``value`` is ``None``)."""

    def _validate(claims: Mapping[str, Any]) -> None:
        if name not in claims or claims[name] != value:
            raise ClaimsValidationError(f"claim {name!r} must equal {value!r}", claim=name)

    return _validate


def _granted_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """The scopes of ``scope`` (a space-separated string) or else ``scp`` (an array); any
    other shape grants none (fails closed)."""
    raw = claims.get("scope")
    if raw is None or raw == "":
        raw = claims.get("scp")
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, (list, tuple, set, frozenset)):
        return frozenset(s for s in raw if isinstance(s, str))
    return frozenset()


def require_scopes(*scopes: str) -> ClaimsValidator:
    """Refuses unless the token grants every named scope (``scope`` or ``scp``)."""
    if not scopes:
        raise ValueError("require_scopes needs at least one scope")

    def _validate(claims: Mapping[str, Any]) -> None:
        granted = _granted_scopes(claims)
        missing = [scope for scope in scopes if scope not in granted]
        if missing:
            raise ClaimsValidationError(f"missing required scope(s): {', '.join(missing)}", claim="scope")

    return _validate


__all__ = [
    "ClaimsValidator",
    "combine_claims_validators",
    "require_claim_value",
    "require_claims",
    "require_scopes",
]
