"""The reads dispatched without FastAPI's router (gateway/fast_reads.py) answer exactly as FastAPI does."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from gateway import api
from gateway.app import create_app, handle_problem_or_page
from gateway.fast_reads import FastReads
from tests.gateway.conftest import Stack, asgi_client

READS = [
    "/api/v1/people/A1",
    "/api/v1/people/A2",
    "/api/v1/people/VP-S",
    "/api/v1/people/NOBODY",
    "/api/v1/people/A1?view=full",
    "/api/v1/people/bad!id",  # refused by the route's pattern: 422
    "/api/v1/people/A1%0A",  # a newline after a valid id
    "/api/v1/people/" + "x" * 64,
    "/api/v1/people/A1/",
    "/api/v1/roles/service-agent",
    "/api/v1/roles/service-agent@1",
    "/api/v1/roles/service-agent@999",
    "/api/v1/roles/missing",
    "/api/v1/roles/bad@version",
    "/api/v1/orgUnits/SALES-N",
    "/api/v1/orgUnits/SERVICE",
    "/api/v1/orgUnits/NOWHERE",
    "/api/v1/decisionCategories/customer-refund",
    "/api/v1/decisionCategories/missing",
    "/api/v1/assignments/no-such-assignment",
    "/api/v1/assignments/bad!id",
]
HEADERS = ("content-type", "etag", "retry-after", "location")


def without_fast_reads(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastReads]
    return app


async def answers(client: httpx.AsyncClient, path: str, headers: dict[str, str], method: str = "GET") -> Any:
    r = await client.request(method, path, headers=headers)
    return r.status_code, r.content, {h: r.headers.get(h) for h in HEADERS}


async def test_fast_reads_answer_as_fastapi_does(stack: Stack) -> None:
    plain = without_fast_reads(create_app(stack.settings))
    auths = [stack.auth(user) for user in stack.tokens] + [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwdw=="},
    ]
    made = await stack.assignment()  # one that exists: visible to some users, not to others
    async with asgi_client(plain) as reference:
        for path in [*READS, f"/api/v1/assignments/{made}"]:
            for auth in auths:
                expected = await answers(reference, path, auth)
                assert await answers(stack.client, path, auth) == expected, (path, auth)
        for method in ("HEAD", "POST", "DELETE"):
            expected = await answers(reference, READS[0], stack.auth("admin"), method)
            assert await answers(stack.client, READS[0], stack.auth("admin"), method) == expected, method
    await plain.state.gateway.roles.close()


async def test_fast_reads_answer_as_fastapi_does_when_the_roles_service_is_down(stack: Stack) -> None:
    down = stack.settings.model_copy(update={"roles_target": "127.0.0.1:1", "grpc_deadline_seconds": 1.0})
    fast, plain = create_app(down), without_fast_reads(create_app(down))
    async with asgi_client(fast) as client, asgi_client(plain) as reference:
        for path in ("/api/v1/people/A1", "/api/v1/roles/service-agent"):
            expected = await answers(reference, path, stack.auth("line_manager"))
            assert expected[0] == 503
            assert await answers(client, path, stack.auth("line_manager")) == expected
    for app in (fast, plain):
        await app.state.gateway.roles.close()


async def test_the_reads_are_taken_without_the_router_and_counted_by_their_route(stack: Stack) -> None:
    async def router(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError(f"{scope['path']} reached the router")

    fast = FastReads(router, routes=api.router.routes, on_problem=handle_problem_or_page)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    for path in ("/api/v1/people/A1", "/api/v1/roles/service-agent"):
        sent.clear()
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"authorization", stack.auth("admin")["Authorization"].encode())],
            "app": stack.app,
        }
        await fast(scope, receive, send)
        assert sent[0]["status"] == 200
        assert scope["route"].path in ("/api/v1/people/{person_id}", "/api/v1/roles/{role_id}")
    assert (await stack.client.get("/api/v1/people/A1", headers=stack.auth("admin"))).status_code == 200
    metrics = (await stack.client.get("/metrics")).text
    assert 'engage_gateway_requests_total{method="GET",route="/api/v1/people/{person_id}",status="200"}' in metrics
