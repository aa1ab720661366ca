"""py-identity-model's claims principal (after .NET's ``System.Security.Claims``):
``to_principal(claims)`` turns the claims ``validate_token`` returns into a
``ClaimsPrincipal`` of one ``ClaimsIdentity``; an array claim becomes one ``Claim`` per item,
every value is a string. Same behaviour as py-identity-model 4.1.1, except that a principal
copies the claim list it is given instead of appending to the caller's."""

from __future__ import annotations

import abc
import enum

_STRING = "http://www.w3.org/2001/XMLSchema#string"


class Claim:
    """A statement about the subject: a type, a string value and who issued it (default
    ``LOCAL AUTHORITY``)."""

    def __init__(
        self,
        claim_type: str,
        value: str,
        value_type: str = _STRING,
        issuer: str | None = None,
        original_issuer: str | None = None,
    ):
        self.claim_type = claim_type
        self.value = value
        self.value_type = value_type
        self.issuer = issuer or "LOCAL AUTHORITY"
        self.original_issuer = original_issuer or self.issuer
        self.properties: dict = {}

    def __str__(self) -> str:
        return f"{self.claim_type}: {self.value}"

    def __repr__(self) -> str:
        return f"Claim(claim_type='{self.claim_type}', value='{self.value}', issuer='{self.issuer}')"


class ClaimType(enum.Enum):
    """.NET's standard claim type URIs."""

    Name = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
    NameIdentifier = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"
    Role = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
    Email = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    GivenName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
    Surname = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
    DateOfBirth = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/dateofbirth"
    Country = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/country"
    Gender = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/gender"
    HomePhone = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/homephone"
    MobilePhone = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/mobilephone"
    PostalCode = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/postalcode"
    StateOrProvince = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/stateorprovince"
    StreetAddress = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/streetaddress"
    Webpage = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/webpage"


class Identity(metaclass=abc.ABCMeta):
    """An identity (.NET's ``IIdentity``)."""

    @abc.abstractmethod
    def is_authenticated(self) -> bool: ...

    @property
    @abc.abstractmethod
    def authentication_type(self) -> str | None: ...

    @property
    @abc.abstractmethod
    def name(self) -> str | None: ...

    @property
    @abc.abstractmethod
    def claims(self) -> list[Claim]: ...

    @abc.abstractmethod
    def find_first(self, claim_type: str) -> Claim | None: ...

    @abc.abstractmethod
    def find_all(self, claim_type: str) -> list[Claim]: ...


class Principal(metaclass=abc.ABCMeta):
    """A security context (.NET's ``IPrincipal``)."""

    @property
    @abc.abstractmethod
    def identity(self) -> Identity | None: ...

    @abc.abstractmethod
    def is_in_role(self, role: str) -> bool: ...

    @abc.abstractmethod
    def has_claim(self, claim_type: str, value: str | None = None) -> bool: ...


class ClaimsIdentity(Identity):
    """An identity made of claims; authenticated when it has an authentication type."""

    def __init__(
        self,
        claims: list[Claim],
        authentication_type: str | None = None,
        name_type_claim: str = ClaimType.Name.value,
        role_type_claim: str = ClaimType.Role.value,
    ):
        self._claims = claims
        self.role_type_claim = role_type_claim
        self.name_type_claim = name_type_claim
        self._authentication_type = authentication_type

    @property
    def claims(self) -> list[Claim]:
        return self._claims

    @property
    def authentication_type(self) -> str | None:
        return self._authentication_type

    @property
    def name(self) -> str | None:
        """The value of the first claim of ``name_type_claim``."""
        found = self.find_first(self.name_type_claim)
        return found.value if found else None

    def is_authenticated(self) -> bool:
        return self._authentication_type is not None

    def find_first(self, claim_type: str) -> Claim | None:
        return next((claim for claim in self._claims if claim.claim_type == claim_type), None)

    def find_all(self, claim_type: str) -> list[Claim]:
        return [claim for claim in self._claims if claim.claim_type == claim_type]


class ClaimsPrincipal(Principal):
    """A principal of an identity; its claims are the given ones and the identity's."""

    def __init__(self, identity: Identity | None = None, claims: list[Claim] | None = None):
        self._identity = identity
        self._claims = list(claims or [])
        if isinstance(identity, ClaimsIdentity):
            self._claims.extend(identity.claims)

    @property
    def identity(self) -> Identity | None:
        return self._identity

    @property
    def claims(self) -> list[Claim]:
        return self._claims

    def add_identity(self, identity: Identity) -> None:
        """Makes ``identity`` the principal's identity and adds its claims."""
        self._identity = identity
        if isinstance(identity, ClaimsIdentity):
            self._claims.extend(identity.claims)

    def has_claim(self, claim_type: str, value: str | None = None) -> bool:
        return any(c.claim_type == claim_type and (value is None or c.value == value) for c in self._claims)

    def is_in_role(self, role: str) -> bool:
        """Whether a claim of .NET's role type has this value (as in py-identity-model: a JWT
        ``role`` or ``roles`` claim is not that type; use ``has_claim("roles", role)``)."""
        return self.has_claim(ClaimType.Role.value, role)

    def find_first(self, claim_type: str) -> Claim | None:
        return next((claim for claim in self._claims if claim.claim_type == claim_type), None)

    def find_all(self, claim_type: str) -> list[Claim]:
        return [claim for claim in self._claims if claim.claim_type == claim_type]


def to_principal(token_claims: dict, authentication_type: str = "Bearer") -> ClaimsPrincipal:
    """The principal of validated claims: one ``Claim`` per value (an array gives one per
    item), values as ``str()`` gives them, issued by the token's ``iss``."""
    issuer = str(token_claims.get("iss", "LOCAL AUTHORITY"))
    claims: list[Claim] = []
    for claim_type, value in token_claims.items():
        values = value if isinstance(value, list) else [value]
        claims.extend(Claim(claim_type=claim_type, value=str(item), issuer=issuer) for item in values)
    return ClaimsPrincipal(identity=ClaimsIdentity(claims=claims, authentication_type=authentication_type))


__all__ = ["Claim", "ClaimsIdentity", "ClaimsPrincipal", "to_principal"]
