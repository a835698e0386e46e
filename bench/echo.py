"""The baseline: a bare grpc.aio server answering one unary echo method.

No protobuf, no interceptor, no database: the handler is registered with
grpc's generic handler API and (de)serialises raw bytes, so what it costs is
the gRPC stack itself. Run as `python -m bench.echo --port PORT`; SIGTERM or
SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc

SERVICE = "bench.Echo"
METHOD_NAME = "Echo"
METHOD = f"/{SERVICE}/{METHOD_NAME}"


def raw(data: bytes) -> bytes:
    """The (de)serialiser of the echo method: messages are the bytes themselves."""
    return data


async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
    return request


def generic_handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {METHOD_NAME: grpc.unary_unary_rpc_method_handler(echo, request_deserializer=raw, response_serializer=raw)},
    )


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((generic_handler(),))
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise SystemExit(f"cannot listen on {host}:{port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    await stop.wait()
    await server.stop(grace=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
