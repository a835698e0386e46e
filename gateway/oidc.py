"""Sign-in to the web app with the organisation's OpenID Connect provider: authorisation code flow with PKCE.

`/signin/oidc` sends the browser to the provider's authorisation endpoint (from its discovery
document) with a fresh `state`, `nonce` and PKCE `code_challenge` (S256); the three secrets wait
in a short-lived HttpOnly cookie scoped to `/signin`. `/signin/callback` checks `state`,
exchanges the code with the `code_verifier` at the token endpoint, verifies the ID token
(signature, issuer, audience = client id, nonce) and the access token like any bearer token
(issuer, audience = Engage), and keeps the access token in the session cookie.

The standard library's HTTP client is used (in a thread): the gateway depends on no HTTP client.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt

from gateway.identity import ALGORITHMS, KeySet, Principal, TokenVerifier, unauthenticated
from gateway.problems import ProblemError, unavailable
from gateway.settings import GatewaySettings

FLOW_COOKIE = "engage_signin"
FLOW_SECONDS = 600
DISCOVERY_SECONDS = 3600


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def challenge(verifier: str) -> str:
    """PKCE S256: BASE64URL(SHA256(verifier))."""
    return _b64(hashlib.sha256(verifier.encode()).digest())


@dataclass(frozen=True)
class Flow:
    """What one sign-in attempt must find again at the callback."""

    state: str
    nonce: str
    verifier: str
    next: str

    @classmethod
    def new(cls, next_path: str) -> Flow:
        safe = next_path if next_path.startswith("/") and not next_path.startswith("//") else "/"
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), safe)

    def cookie(self) -> str:
        return _b64(json.dumps([self.state, self.nonce, self.verifier, self.next]).encode())

    @classmethod
    def from_cookie(cls, value: str) -> Flow | None:
        try:
            state, nonce, verifier, next_path = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
            return cls(str(state), str(nonce), str(verifier), str(next_path))
        except (ValueError, TypeError):
            return None


class OidcSignIn:
    def __init__(self, settings: GatewaySettings, verifier: TokenVerifier):
        self.settings = settings
        self.verifier = verifier
        self.discovery_url = settings.oidc_discovery_url or (
            settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
            if settings.oidc_issuer.startswith(("https://", "http://"))
            else ""
        )
        self._document: dict[str, Any] | None = None
        self._fetched = 0.0
        self._id_keys: KeySet | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.oidc_client_id and self.discovery_url)

    def _get(self, url: str) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.loads(response.read()))

    def _post(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise unauthenticated(f"The identity provider refused the sign-in (HTTP {exc.code}).") from exc

    async def document(self) -> dict[str, Any]:
        if self._document is None or time.monotonic() - self._fetched > DISCOVERY_SECONDS:
            try:
                self._document = await asyncio.to_thread(self._get, self.discovery_url)
            except (OSError, ValueError) as exc:
                raise unavailable(5, "The identity provider's discovery document is not available.") from exc
            self._fetched = time.monotonic()
            self._id_keys = KeySet(url=str(self._document.get("jwks_uri", "")))
        return self._document

    def redirect_uri(self, base_url: str) -> str:
        public = self.settings.public_origin.rstrip("/") or base_url.rstrip("/")
        return public + "/signin/callback"

    async def authorization_url(self, flow: Flow, base_url: str) -> str:
        doc = await self.document()
        query = {
            "response_type": "code",
            "client_id": self.settings.oidc_client_id,
            "redirect_uri": self.redirect_uri(base_url),
            "scope": self.settings.oidc_scopes,
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": challenge(flow.verifier),
            "code_challenge_method": "S256",
        }
        return f"{doc['authorization_endpoint']}?{urllib.parse.urlencode(query)}"

    async def finish(self, flow: Flow | None, state: str, code: str, base_url: str) -> tuple[Principal, int]:
        """Checks the callback and redeems the code; returns the caller and the session's lifetime in seconds."""
        if flow is None or not state or not secrets.compare_digest(flow.state, state) or not code:
            raise ProblemError(400, "The sign-in expired or did not start here; sign in again.", "SIGNIN_STATE")
        doc = await self.document()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri(base_url),
            "client_id": self.settings.oidc_client_id,
            "code_verifier": flow.verifier,
        }
        if self.settings.oidc_client_secret:
            form["client_secret"] = self.settings.oidc_client_secret
        try:
            tokens = await asyncio.to_thread(self._post, str(doc["token_endpoint"]), form)
        except OSError as exc:
            raise unavailable(5, "The identity provider's token endpoint is not reachable.") from exc
        await self._check_id_token(str(tokens.get("id_token", "")), flow.nonce)
        access = str(tokens.get("access_token", ""))
        principal = await self.verifier.verify(access, via_cookie=True)
        return principal, int(tokens.get("expires_in") or 3600)

    async def _check_id_token(self, id_token: str, nonce: str) -> None:
        assert self._id_keys is not None
        try:
            header = jwt.get_unverified_header(id_token)
            key = await self._id_keys.key(str(header.get("kid") or ""))
            if key is None or header.get("alg") not in ALGORITHMS:
                raise unauthenticated("The ID token was signed with an unknown key.")
            claims = jwt.decode(
                id_token,
                key=key,
                algorithms=[header["alg"]],
                audience=self.settings.oidc_client_id,
                issuer=self.settings.oidc_issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "nonce"]},
            )
        except jwt.PyJWTError as exc:
            raise unauthenticated(f"The ID token is not valid: {exc}.") from exc
        if not secrets.compare_digest(str(claims["nonce"]), nonce):
            raise unauthenticated("The ID token belongs to another sign-in (nonce).")
