"""Errors raised by domain and use-case code, independent of gRPC.

The gRPC layer turns each into a status with `google.rpc` details
(BadRequest field violations, ErrorInfo, PreconditionFailure).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass
class EngageError(Exception):
    """Base error: a status code, a message and optional details."""

    message: str
    reason: str = ""
    violations: list[FieldViolation] = field(default_factory=list)
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __str__(self) -> str:
        return self.message


class InvalidArgument(EngageError):
    """The request itself is wrong; `violations` name the fields."""

    def __init__(self, message: str, *violations: FieldViolation, reason: str = "INVALID_ARGUMENT"):
        super().__init__(message, reason, list(violations), grpc.StatusCode.INVALID_ARGUMENT)


def invalid(field_path: str, description: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    """One-field INVALID_ARGUMENT, the most common error."""
    return InvalidArgument(f"{field_path}: {description}", FieldViolation(field_path, description), reason=reason)


class NotFound(EngageError):
    def __init__(self, message: str, reason: str = "NOT_FOUND"):
        super().__init__(message, reason, [], grpc.StatusCode.NOT_FOUND)


class AlreadyExists(EngageError):
    def __init__(self, message: str, reason: str = "ALREADY_EXISTS"):
        super().__init__(message, reason, [], grpc.StatusCode.ALREADY_EXISTS)


class FailedPrecondition(EngageError):
    """The request is well formed but the system's state forbids it."""

    def __init__(self, message: str, reason: str, *violations: FieldViolation):
        super().__init__(message, reason, list(violations), grpc.StatusCode.FAILED_PRECONDITION)


class StaleEtag(EngageError):
    """Optimistic concurrency: someone changed the resource since it was read."""

    def __init__(self, name: str):
        super().__init__(
            f"{name} was changed since it was read; read it again and retry",
            "ETAG_MISMATCH",
            [],
            grpc.StatusCode.ABORTED,
        )


class PermissionDenied(EngageError):
    def __init__(self, message: str, reason: str = "PERMISSION_DENIED"):
        super().__init__(message, reason, [], grpc.StatusCode.PERMISSION_DENIED)


class Unauthenticated(EngageError):
    def __init__(self, message: str, reason: str = "UNAUTHENTICATED"):
        super().__init__(message, reason, [], grpc.StatusCode.UNAUTHENTICATED)


class Unavailable(EngageError):
    def __init__(self, message: str, reason: str = "UNAVAILABLE"):
        super().__init__(message, reason, [], grpc.StatusCode.UNAVAILABLE)
