"""Verified tokens are remembered for speed, but never past their validity."""

import time

import pytest

from services.platform.auth import TokenVerifier
from services.platform.errors import Unauthenticated
from tests.support.tokens import AUDIENCE, ISSUER, TokenMint
from tests.support.waiting import eventually


@pytest.fixture
def verifier(mint: TokenMint) -> TokenVerifier:
    return TokenVerifier("jwt", str(mint.jwks_file), ISSUER, AUDIENCE)


async def test_a_remembered_token_is_refused_once_it_expires(verifier, mint):
    now = int(time.time())
    token = f"Bearer {mint.token(roles=['hr_admin'], iat=now, exp=now + 2)}"
    assert verifier.verify(token).subject and verifier.verify(token).is_admin  # verified, then remembered

    def refused() -> bool:
        try:
            verifier.verify(token)
        except Unauthenticated:
            return True
        return False

    async def probe() -> bool:
        return refused()

    await eventually(probe, bool, timeout=10, what="the expired token to be refused")


def test_a_token_not_yet_valid_is_not_remembered_as_valid(verifier, mint):
    token = f"Bearer {mint.token(roles=['hr_admin'], nbf=int(time.time()) + 3600)}"
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            verifier.verify(token)


def test_the_memory_is_bounded(verifier, mint, monkeypatch):
    monkeypatch.setattr(TokenVerifier, "CACHE_SIZE", 3)
    tokens = [f"Bearer {mint.token(subject=f'user-{i}', roles=['hr_admin'])}" for i in range(5)]
    assert [verifier.verify(t).subject for t in tokens] == [f"user-{i}" for i in range(5)]
    assert len(verifier._verified) == 3
