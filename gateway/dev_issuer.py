"""A development OIDC issuer: an RSA key, its JWKS, and tokens for demo users.

Off by default; `make run` turns it on. The key is kept in a PEM file so
tokens stay valid across restarts, and the public key set is written to a
JWKS file that the services are pointed at (ENGAGE_AUTH_JWKS_FILE), so the
gateway and the services trust the same tokens.

    python -m gateway.dev_issuer   # creates the key if needed, writes the JWKS, prints its path
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.settings import DemoUser, GatewaySettings


class DevIssuer:
    def __init__(
        self, key_file: str, jwks_file: str, issuer: str, audience: str, *, kid: str = "", token_minutes: int = 480
    ):
        self.issuer = issuer
        self.audience = audience
        self.token_minutes = token_minutes
        self.key = self._load_or_create(Path(key_file))
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.kid = kid or jwt.PyJWK(public).key_id or self._thumbprint(public)
        public.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        self.public_jwk = public
        self.jwks_file = Path(jwks_file)
        self.jwks_file.parent.mkdir(parents=True, exist_ok=True)
        temp = self.jwks_file.with_suffix(".tmp")
        temp.write_text(json.dumps(self.jwks(), indent=2))
        temp.replace(self.jwks_file)

    @staticmethod
    def _thumbprint(jwk: dict[str, Any]) -> str:
        import base64
        import hashlib

        canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
        return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()[:16]

    @staticmethod
    def _load_or_create(path: Path) -> rsa.RSAPrivateKey:
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{path} does not hold an RSA private key")
            return key
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def openid_configuration(self, base_url: str) -> dict[str, Any]:
        base = base_url.rstrip("/")
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "authorization_endpoint": f"{base}/signin",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "engage_roles", "engage_person"],
        }

    def token(self, user: DemoUser) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": f"dev:{user.key}",
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.token_minutes * 60,
            "engage_roles": list(user.roles),
        }
        if user.person:
            claims["engage_person"] = user.person
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


def from_settings(settings: GatewaySettings) -> DevIssuer:
    return DevIssuer(
        settings.dev_issuer_key_file,
        settings.dev_issuer_jwks_file,
        settings.oidc_issuer,
        settings.oidc_audience,
        kid=settings.dev_issuer_kid,
        token_minutes=settings.dev_token_minutes,
    )


def main() -> int:
    issuer = from_settings(GatewaySettings())
    print(issuer.jwks_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
