"""Who is calling: bearer tokens (JWT) verified against a key set.

Tokens carry the caller's roles in the `engage_roles` claim (`hr_admin`, `hr_system`,
`programme_lead`, `crm_system`) and, for people, their HR employee
id in `engage_person`. Each RPC declares one permission; `GRANTS` says which
roles hold it. Finer rules (a manager acts only in the units they head, a
person acknowledges only their own roles) live in the use cases, which read
the caller from `current_identity()`.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from services.platform.errors import PermissionDenied, Unauthenticated
from services.platform.log import get_logger

log = get_logger(__name__)

# Asymmetric algorithms only: `none` and shared-secret HMAC are refused.
ALLOWED_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]

# Permissions every RPC declares.
READ = "read"
DIRECTORY_WRITE = "directory.write"
CATALOGUE_WRITE = "catalogue.write"
ASSIGNMENTS_WRITE = "assignments.write"
SELF_SERVICE = "self_service"

ASSESSMENTS_WRITE = "assessments.write"
ASSESSMENTS_IMPORT = "assessments.import"
BEHAVIOURS_RECORD = "behaviours.record"
PERIODS_CLOSE = "periods.close"
AWARDS_DECIDE = "awards.decide"
AUDIT_READ = "audit.read"

# Which caller roles hold which permission. "person" is every caller who is a
# person (has `engage_person`); "service" is every authenticated caller. Finer
# rules (which person, which org unit) are the use cases' to check.
GRANTS: dict[str, frozenset[str]] = {
    READ: frozenset({"service", "person"}),
    DIRECTORY_WRITE: frozenset({"hr_admin", "hr_system"}),
    CATALOGUE_WRITE: frozenset({"hr_admin", "programme_lead"}),
    ASSIGNMENTS_WRITE: frozenset({"hr_admin", "hr_system", "person"}),
    SELF_SERVICE: frozenset({"hr_admin", "person"}),
    # Skills: people assess themselves, managers their units, HR everyone.
    ASSESSMENTS_WRITE: frozenset({"hr_admin", "hr_system", "person"}),
    ASSESSMENTS_IMPORT: frozenset({"hr_admin", "hr_system"}),
    # Incentives: CRM systems send behaviour events; programme leads close periods.
    BEHAVIOURS_RECORD: frozenset({"hr_admin", "crm_system"}),
    PERIODS_CLOSE: frozenset({"hr_admin", "programme_lead"}),
    AWARDS_DECIDE: frozenset({"hr_admin", "person"}),
    # Every service's audit trail: HR administrators and HR systems.
    AUDIT_READ: frozenset({"hr_admin", "hr_system"}),
}

ADMIN_ROLES = frozenset({"hr_admin", "hr_system"})


@dataclass(frozen=True)
class Identity:
    """The authenticated caller."""

    subject: str
    roles: frozenset[str] = field(default_factory=frozenset)
    person_id: str | None = None  # HR employee id when the caller is a person

    @property
    def is_admin(self) -> bool:
        return bool(self.roles & ADMIN_ROLES)

    @property
    def actor(self) -> str:
        """How changes record who made them: `people/{id}` or the token subject."""
        return f"people/{self.person_id}" if self.person_id else self.subject

    def holds(self, permission: str) -> bool:
        granted = GRANTS.get(permission, frozenset())
        effective = set(self.roles) | {"service"}
        if self.person_id:
            effective.add("person")
        return bool(granted & effective)


DEV_IDENTITY = Identity(subject="dev-admin", roles=frozenset({"hr_admin"}))
SYSTEM_IDENTITY = Identity(subject="system", roles=frozenset({"hr_system"}))

_current: ContextVar[Identity] = ContextVar("engage_identity", default=SYSTEM_IDENTITY)


def current_identity() -> Identity:
    return _current.get()


def set_identity(identity: Identity) -> object:
    return _current.set(identity)


def require(identity: Identity, permission: str | None) -> None:
    if permission is None:
        raise PermissionDenied("this method declares no permission; access is denied")
    if not identity.holds(permission):
        raise PermissionDenied(f"caller {identity.subject} lacks permission {permission}")


class TokenVerifier:
    """Verifies `authorization: Bearer <jwt>` against a JWKS file.

    A signature check costs far more than the rest of a read RPC, and a client
    sends the same token on every call until it expires; so a verified token
    is remembered (by its exact text) until its `exp`. The key set is fixed
    for the verifier's life, so a remembered answer cannot go stale except
    by time, which is checked on every use."""

    CACHE_SIZE = 10_000

    def __init__(self, mode: str, jwks_file: str, issuer: str, audience: str):
        self._verified: OrderedDict[str, tuple[Identity, float, float]] = OrderedDict()
        self.mode = mode
        self.issuer = issuer
        self.audience = audience
        self._keys: dict[str, jwt.PyJWK] = {}
        if jwks_file:
            keyset = jwt.PyJWKSet.from_dict(json.loads(Path(jwks_file).read_text()))
            self._keys = {k.key_id or "": k for k in keyset.keys}
        if mode == "dev":
            log.warning(
                "auth.development_mode",
                detail="AUTHENTICATION IS OFF: calls without a token act as an HR administrator",
            )
        elif not self._keys:
            log.warning("auth.no_keys", detail="no JWKS configured: every call will be rejected")

    def verify(self, authorization: str | None) -> Identity:
        if not authorization:
            if self.mode == "dev":
                return DEV_IDENTITY
            raise Unauthenticated("missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("authorization must be 'Bearer <token>'")
        remembered = self._verified.get(token)
        if remembered is not None:
            identity, not_before, expires = remembered
            if not_before <= time.time() < expires:
                self._verified.move_to_end(token)
                return identity
            del self._verified[token]
        identity, claims = self._verify(token)
        self._verified[token] = (identity, float(claims.get("nbf", 0)), float(claims["exp"]))
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return identity

    def _verify(self, token: str) -> tuple[Identity, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(header.get("kid") or "")
            if key is None:
                raise Unauthenticated("token signed with an unknown key", "UNKNOWN_KEY")
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[a for a in ALLOWED_ALGORITHMS if a == header.get("alg")],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}", "INVALID_TOKEN") from exc
        roles = claims.get("engage_roles") or []
        if not isinstance(roles, list):
            raise Unauthenticated("claim engage_roles must be a list", "INVALID_TOKEN")
        person = claims.get("engage_person")
        identity = Identity(
            subject=str(claims["sub"]),
            roles=frozenset(str(r) for r in roles),
            person_id=str(person) if person else None,
        )
        return identity, claims
