"""Schemathesis against the OpenAPI document: no server errors, only documented statuses, headers and shapes.

The gateway runs on a real port in the test's event loop (its gRPC channel lives there);
schemathesis drives it over HTTP from a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway.conftest import Stack, served

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
MAX_EXAMPLES = 15


def fuzz(base_url: str, token: str) -> tuple[int, list[str]]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    count = 0
    for result in schema.exclude(path="/api/v1/events").get_all_operations():  # a stream never ends
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            nonlocal count
            count += 1
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
            case.call_and_validate(base_url=base_url, checks=CHECKS)

        try:
            check()
        except BaseException as exc:  # report every operation's failure, not only the first
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
    return count, failures


async def test_openapi_document_holds(stack: Stack) -> None:
    async with served(stack.app, lifespan="off") as base_url:
        count, failures = await asyncio.to_thread(fuzz, base_url, stack.tokens["admin"])
    assert not failures, "\n\n".join(failures)
    assert count >= 100, count
