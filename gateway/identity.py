"""Who is calling: OIDC bearer tokens verified against the issuer's key set.

A token arrives as `Authorization: Bearer ...` (API clients) or in the
session cookie the sign-in page sets (the web app). Only RS256 and ES256 are
accepted. The verified token is forwarded unchanged to the services, so they
check it again and record the caller on every change. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jwt

from gateway.problems import ProblemError

ALGORITHMS = ["RS256", "ES256"]
ADMIN_ROLES = frozenset({"hr_admin"})


@dataclass(frozen=True)
class Principal:
    """An authenticated caller and the token they presented."""

    subject: str
    token: str = field(repr=False)
    roles: frozenset[str] = frozenset()
    person_id: str | None = None
    via_cookie: bool = False

    @property
    def is_admin(self) -> bool:
        return bool(self.roles & ADMIN_ROLES)

    @property
    def person(self) -> str | None:
        """`people/{id}` of the caller, if the caller is a person."""
        return f"people/{self.person_id}" if self.person_id else None


def unauthenticated(detail: str = "Sign in or send a bearer token.") -> ProblemError:
    return ProblemError(401, detail, "UNAUTHENTICATED")


class KeySet:
    """Signing keys by key id, from a JWKS file (re-read when it changes) or URL."""

    def __init__(self, *, file: str = "", url: str = "", keys: dict[str, Any] | None = None):
        self.file = Path(file) if file else None
        self.url = url
        self._keys: dict[str, Any] = dict(keys or {})
        self._mtime = 0.0
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    @staticmethod
    def parse(document: dict[str, Any]) -> dict[str, Any]:
        keys: dict[str, Any] = {}
        for jwk in jwt.PyJWKSet.from_dict(document).keys:
            keys[jwk.key_id or ""] = jwk.key
        return keys

    async def key(self, kid: str) -> Any:
        if self.file is not None:
            mtime = self.file.stat().st_mtime if self.file.exists() else 0.0
            if mtime != self._mtime:
                self._keys = self.parse(json.loads(self.file.read_text())) if mtime else {}
                self._mtime = mtime
        elif self.url and kid not in self._keys and time.monotonic() - self._fetched > 30:
            async with self._lock:
                if kid not in self._keys:
                    self._keys = await asyncio.to_thread(self._fetch)
                    self._fetched = time.monotonic()
        return self._keys.get(kid)

    def _fetch(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.url, timeout=5) as response:
            return self.parse(json.loads(response.read()))


class TokenVerifier:
    """Verifies tokens; a verified token is remembered (by its exact text) until it expires.

    A client sends the same token with every request, and the signature check is most of the
    cost of a cheap read. The remembered answer cannot go stale but by time, checked on every use;
    a key removed from the key set takes effect when its tokens expire (they are short-lived)."""

    REMEMBERED = 10_000

    def __init__(self, keys: KeySet, issuer: str, audience: str):
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self._verified: OrderedDict[str, tuple[Principal, float, float]] = OrderedDict()

    async def verify(self, token: str, *, via_cookie: bool = False) -> Principal:
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, not_before, expires = remembered
            if not_before <= time.time() < expires:
                self._verified.move_to_end(token)
                return self._as_sent(principal, via_cookie)
            del self._verified[token]
        principal, claims = await self._verify(token)
        self._verified[token] = (principal, float(claims.get("nbf", 0)), float(claims["exp"]))
        if len(self._verified) > self.REMEMBERED:
            self._verified.popitem(last=False)
        return self._as_sent(principal, via_cookie)

    @staticmethod
    def _as_sent(principal: Principal, via_cookie: bool) -> Principal:
        # Remembered principals came as bearer tokens; a copy only for cookies (most calls skip it).
        return replace(principal, via_cookie=True) if via_cookie else principal

    async def _verify(self, token: str) -> tuple[Principal, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthenticated("The token is malformed.") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise unauthenticated("The token's algorithm is not accepted.")
        try:
            key = await self.keys.key(str(header.get("kid") or ""))
        except (OSError, ValueError) as exc:
            raise ProblemError(
                503,
                "The key set of the identity provider is not available.",
                "UNAVAILABLE",
                headers={"Retry-After": "5"},
            ) from exc
        if key is None:
            raise unauthenticated("The token was signed with an unknown key.")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise unauthenticated(f"The token is not valid: {exc}.") from exc
        roles = claims.get("engage_roles") or []
        person = claims.get("engage_person")
        if not isinstance(roles, list) or (person is not None and not isinstance(person, str)):
            raise unauthenticated("The token's Engage claims are malformed.")
        principal = Principal(
            subject=str(claims["sub"]),
            token=token,
            roles=frozenset(str(r) for r in roles),
            person_id=person or None,
        )
        return principal, claims
