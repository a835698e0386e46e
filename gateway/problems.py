"""Errors as RFC 9457 problem details, and the one place gRPC errors become HTTP.

Mapping of service errors (`from_rpc_error`):
- INVALID_ARGUMENT, OUT_OF_RANGE -> 422 with the field violations in `errors`
- NOT_FOUND, and PERMISSION_DENIED on someone else's object -> 404, the same
  body for both so a caller cannot tell "not there" from "not yours"
- ALREADY_EXISTS -> 409; FAILED_PRECONDITION -> 409 (412 for an etag reason)
- ABORTED (stale etag) -> 412
- UNAUTHENTICATED -> 401
- UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED -> 503 with Retry-After
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.rpc import error_details_pb2, status_pb2
from pydantic import BaseModel, Field

from services.platform.log import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "https://engage.dev/problems/"

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}
SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    412: "precondition-failed",
    422: "invalid-request",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}
# The one body every "not there / not yours" answer carries.
NOT_FOUND_DETAIL = "No such resource, or it is not visible to you."


class FieldError(BaseModel):
    field: str = Field(description="Path of the field at fault, e.g. `assignment.validFrom` or `query.pageSize`.")
    detail: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="URI identifying the kind of problem.")
    title: str
    status: int
    detail: str
    reason: str | None = Field(default=None, description="Machine-readable reason, e.g. `DUPLICATE_ASSIGNMENT`.")
    errors: list[FieldError] | None = Field(default=None, description="Field violations (422 only).")


@dataclass
class ProblemError(Exception):
    """Raised anywhere in the gateway; rendered by `problem_response`."""

    status: int
    detail: str
    reason: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> Problem:
        return Problem(
            type=TYPE_PREFIX + SLUGS.get(self.status, "error"),
            title=TITLES.get(self.status, "Error"),
            status=self.status,
            detail=self.detail,
            reason=self.reason,
            errors=self.errors or None,
        )


def not_found() -> ProblemError:
    return ProblemError(404, NOT_FOUND_DETAIL)


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, detail, "FORBIDDEN")


def invalid(field_path: str, detail: str) -> ProblemError:
    return ProblemError(
        422, f"{field_path}: {detail}", "INVALID_ARGUMENT", [FieldError(field=field_path, detail=detail)]
    )


def unavailable(
    retry_after: int, detail: str = "A service Engage depends on is not reachable; retry shortly."
) -> ProblemError:
    return ProblemError(503, detail, "UNAVAILABLE", headers={"Retry-After": str(retry_after)})


def _details(error: grpc.aio.AioRpcError) -> tuple[list[FieldError], str]:
    errors: list[FieldError] = []
    reason = ""
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                errors += [FieldError(field=v.field, detail=v.description) for v in bad.field_violations]
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
    return errors, reason


def from_rpc_error(error: grpc.aio.AioRpcError, retry_after: int) -> ProblemError:
    code = error.code()
    message = error.details() or code.name
    errors, reason = _details(error)
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        return ProblemError(422, message, reason or "INVALID_ARGUMENT", errors)
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
        # The gateway checks scope before calling; a service refusal is treated
        # like absence so nothing about other people's objects leaks.
        return not_found()
    if code == grpc.StatusCode.ABORTED or (code == grpc.StatusCode.FAILED_PRECONDITION and "ETAG" in reason):
        return ProblemError(412, message, reason or "ETAG_MISMATCH")
    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS):
        return ProblemError(409, message, reason or code.name, errors)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return ProblemError(401, "The services did not accept your credentials; sign in again.", "UNAUTHENTICATED")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED):
        return unavailable(retry_after)
    log.error("gateway.unexpected_rpc_error", code=code.name, detail=message)
    return ProblemError(500, "Unexpected error from a service.", code.name)


def problem_response(problem: ProblemError) -> JSONResponse:
    headers = dict(problem.headers)
    if problem.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="engage"')
    return JSONResponse(
        problem.body().model_dump(exclude_none=True),
        status_code=problem.status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


async def handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc)


def _field_path(loc: Iterable[Any]) -> str:
    return ".".join(str(p) for p in loc)


async def handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(field=_field_path(e.get("loc", ())), detail=str(e.get("msg", "invalid"))) for e in exc.errors()
    ]
    detail = "; ".join(f"{e.field}: {e.detail}" for e in errors) or "invalid request"
    return problem_response(ProblemError(422, detail, "INVALID_ARGUMENT", errors))


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problem statuses a route can return."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        entry: dict[str, Any] = {
            "description": TITLES[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status in (429, 503):
            entry["headers"] = {
                "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
            }
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"description": "Bearer challenge.", "schema": {"type": "string"}}}
        out[status] = entry
    return out
