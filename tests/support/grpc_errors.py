"""Reading the rich error details a call failed with."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2


@dataclass
class CallError:
    code: grpc.StatusCode
    message: str
    fields: list[str]
    reason: str


async def call_error(call: Awaitable[object], code: grpc.StatusCode | None = None) -> CallError:
    """Awaits a call that must fail; returns its status, field violations and reason."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = info.value
    fields: list[str] = []
    reason = ""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)  # type: ignore[arg-type]
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    fields += [v.field for v in bad.field_violations]
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info_msg = error_details_pb2.ErrorInfo()
                    detail.Unpack(info_msg)
                    reason = info_msg.reason
    result = CallError(err.code(), err.details() or "", fields, reason)
    if code is not None:
        assert result.code == code, result
    return result
