"""Web sign-in with an OpenID Connect provider: authorisation code flow with PKCE, end to end.

The provider is a small real one served over HTTP in the test: discovery document, key set,
an authorisation endpoint that signs A1 in at once, and a token endpoint that checks the
PKCE verifier against the challenge (RFC 7636, S256) before it issues tokens.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse

from gateway.app import create_app
from gateway.oidc import FLOW_COOKIE, challenge
from tests.gateway.conftest import Stack, asgi_client, served
from tests.support.tokens import ISSUER, TokenMint

CLIENT_ID = "engage-web"


@dataclass
class Provider:
    mint: TokenMint
    base_url: str = ""
    grants: dict[str, dict[str, str]] = field(default_factory=dict)  # code -> authorisation request
    redeemed: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, str]:
            return {
                "issuer": ISSUER,
                "authorization_endpoint": f"{self.base_url}/authorize",
                "token_endpoint": f"{self.base_url}/token",
                "jwks_uri": f"{self.base_url}/jwks",
            }

        @app.get("/jwks")
        async def jwks() -> Any:
            return json.loads(self.mint.jwks_file.read_text())

        @app.get("/authorize")
        async def authorize(request: Request) -> RedirectResponse:
            params = dict(request.query_params)
            code = uuid.uuid4().hex
            self.grants[code] = params
            return RedirectResponse(f"{params['redirect_uri']}?{urlencode({'code': code, 'state': params['state']})}")

        @app.post("/token")
        async def token(
            grant_type: str = Form(),
            code: str = Form(),
            redirect_uri: str = Form(),
            client_id: str = Form(),
            code_verifier: str = Form(),
        ) -> JSONResponse:
            grant = self.grants.pop(code, None)
            if (
                grant is None
                or grant_type != "authorization_code"
                or grant["redirect_uri"] != redirect_uri
                or client_id != CLIENT_ID
                or grant["code_challenge_method"] != "S256"
                or challenge(code_verifier) != grant["code_challenge"]
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            self.redeemed.append(code)
            now = int(time.time())
            id_token = jwt.encode(
                {
                    "iss": ISSUER,
                    "aud": CLIENT_ID,
                    "sub": "user-A1",
                    "iat": now,
                    "exp": now + 300,
                    "nonce": grant["nonce"],
                },
                self.mint.key,
                algorithm="RS256",
                headers={"kid": self.mint.kid},
            )
            access = self.mint.token("user-A1", person="A1")
            return JSONResponse(
                {"access_token": access, "id_token": id_token, "token_type": "Bearer", "expires_in": 300}
            )

        return app


@pytest.fixture
async def provider(stack: Stack) -> AsyncIterator[Provider]:
    found = Provider(stack.mint)
    async with served(found.app(), lifespan="off") as base_url:
        found.base_url = base_url
        yield found


def gateway_for(stack: Stack, provider: Provider) -> FastAPI:
    return create_app(
        stack.settings.model_copy(
            update={
                "dev_issuer": False,
                "oidc_client_id": CLIENT_ID,
                "oidc_discovery_url": f"{provider.base_url}/.well-known/openid-configuration",
            }
        )
    )


async def start(client: httpx.AsyncClient, next_path: str = "/me") -> tuple[str, dict[str, str]]:
    """GET /signin/oidc; returns the provider URL it redirects to and its query."""
    response = await client.get("/signin/oidc", params={"next": next_path})
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def authorise(url: str) -> dict[str, str]:
    """The browser at the provider: it signs the user in and sends them back with a code."""
    async with httpx.AsyncClient() as browser:
        back = await browser.get(url)
    assert back.status_code in (302, 307), back.text
    return {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}


async def test_sign_in_with_the_provider_using_pkce(stack: Stack, provider: Provider) -> None:
    app = gateway_for(stack, provider)
    async with asgi_client(app) as client:
        page = await client.get("/signin")
        assert "Sign in with your organisation" in page.text and "data-user" not in page.text  # no demo users
        url, query = await start(client, "/me/scorecard")
        assert url.startswith(f"{provider.base_url}/authorize?")
        assert query["code_challenge_method"] == "S256" and query["client_id"] == CLIENT_ID
        assert query["redirect_uri"] == "http://gateway.test/signin/callback" and query["nonce"] and query["state"]
        assert "code_verifier" not in query  # the verifier stays with the browser's sign-in cookie
        assert client.cookies.get(FLOW_COOKIE)
        back = await authorise(url)
        done = await client.get("/signin/callback", params=back)
        assert done.status_code == 303 and done.headers["location"] == "/me/scorecard", done.text
        assert provider.redeemed == [back["code"]]
        session = client.cookies.get(stack.settings.cookie_name)
        assert session
        me = await client.get("/api/v1/me")
        assert me.status_code == 200 and me.json()["person"]["name"] == "people/A1"
    for service in (app.state.gateway.roles, app.state.gateway.skills, app.state.gateway.incentives):
        await service.close()


async def test_a_code_without_its_verifier_or_state_signs_nobody_in(stack: Stack, provider: Provider) -> None:
    app = gateway_for(stack, provider)
    async with asgi_client(app) as client:
        first_url, _ = await start(client)
        first = await authorise(first_url)
        # A second sign-in replaces the flow cookie: the first code arrives with the wrong state ...
        second_url, _ = await start(client)
        wrong_state = await client.get("/signin/callback", params=first)
        assert wrong_state.status_code == 400
        # ... and with the second flow's state but the first code, the provider refuses the verifier.
        second = await authorise(second_url)
        swapped = await client.get("/signin/callback", params={"code": first["code"], "state": second["state"]})
        assert swapped.status_code == 303 and swapped.headers["location"].startswith("/signin")
        assert not client.cookies.get(stack.settings.cookie_name)
        assert provider.redeemed == []
        refused = await client.get("/signin/callback", params={"error": "access_denied", "state": second["state"]})
        assert refused.status_code == 303 and refused.headers["location"].startswith("/signin")
    for service in (app.state.gateway.roles, app.state.gateway.skills, app.state.gateway.incentives):
        await service.close()


async def test_without_a_client_id_there_is_no_provider_sign_in(stack: Stack) -> None:
    assert (await stack.client.get("/signin/oidc")).status_code == 404
    assert (await stack.client.get("/signin/callback", params={"code": "x", "state": "y"})).status_code == 404
