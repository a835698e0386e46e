"""A real key pair and JWKS file, and tokens signed with it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "engage-test"
AUDIENCE = "engage"


class TokenMint:
    def __init__(self, workdir: Path, kid: str = "test-key"):
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": kid, "alg": "RS256", "use": "sig"})
        self.jwks_file = workdir / "jwks.json"
        self.jwks_file.write_text(json.dumps({"keys": [public]}))

    def token(
        self,
        subject: str = "tester",
        *,
        roles: list[str] | None = None,
        person: str | None = None,
        key: Any = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload = {
            "sub": subject,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "engage_roles": roles or [],
        }
        if person:
            payload["engage_person"] = person
        payload.update(claims)
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def metadata(self, *args: Any, **kwargs: Any) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token(*args, **kwargs)}"),)
