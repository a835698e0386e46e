"""A real key pair and JWKS file, tokens signed with it, and the tokens that must be refused."""

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


def refused_authorizations(mint: TokenMint) -> dict[str, str | None]:
    """`authorization` values every service and the gateway must refuse, by what is wrong with them
    (None: no header at all). Each but the key is a well-formed, signed, HR administrator's token."""
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unsigned = jwt.encode(
        {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60, "engage_roles": ["hr_admin"]},
        key=None,
        algorithm="none",
    )
    good = mint.token(roles=["hr_admin"])
    header, payload, signature = good.split(".")
    tampered = ".".join([header, payload[:-4] + ("AAAA" if not payload.endswith("AAAA") else "BBBB"), signature])
    bearer = {
        "expired": mint.token(roles=["hr_admin"], exp=now - 10, iat=now - 100),
        "not yet valid": mint.token(roles=["hr_admin"], nbf=now + 3600),
        "wrong audience": mint.token(roles=["hr_admin"], aud="someone-else"),
        "wrong issuer": mint.token(roles=["hr_admin"], iss="evil"),
        "alg none": unsigned,
        "tampered claims": tampered,
        "tampered signature": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "wrong key": mint.token(roles=["hr_admin"], key=other_key),
        "unknown kid": mint.token(roles=["hr_admin"], kid="other"),
    }
    return {"missing": None, "not bearer": "garbage", **{what: f"Bearer {t}" for what, t in bearer.items()}}
