"""Typed gRPC method handles over one grpc.aio channel, with failures as CohortError.

The methods are built from the generated messages and the method paths (the contract
in protos/cohort/v1), not from the untyped *_pb2_grpc stubs, so that mypy sees request
and response types."""

from __future__ import annotations

from typing import Any, AsyncIterator, Generic, TypeVar

import grpc

from cohort._retry import NO_RETRY, RetryPolicy, retrying
from cohort.errors import rpc_error

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


class Unary(Generic[Req, Resp]):
    """One unary RPC. Calling it returns the response or raises CohortError; with a
    retry policy, an UNAVAILABLE call is made again as the policy says (give one only
    for a call that is safe to make twice, see cohort._retry)."""

    def __init__(self, channel: grpc.aio.Channel, service: str, method: str, response: type[Resp]) -> None:
        self.name = method
        self._call = channel.unary_unary(f"/cohort.v1.{service}/{method}", request_serializer=_serialize,
                                         response_deserializer=getattr(response, "FromString"))

    async def __call__(self, request: Req, timeout: float | None, retry: RetryPolicy = NO_RETRY) -> Resp:
        return await retrying(retry, lambda: self._once(request, timeout))

    async def _once(self, request: Req, timeout: float | None) -> Resp:
        try:
            response: Resp = await self._call(request, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            raise rpc_error(self.name, e) from e
        return response


class ServerStream(Generic[Req, Resp]):
    """One server-streaming RPC. Iterating yields responses; a failure raises
    CohortError; leaving the iteration early cancels the call."""

    def __init__(self, channel: grpc.aio.Channel, service: str, method: str, response: type[Resp]) -> None:
        self.name = method
        self._call = channel.unary_stream(f"/cohort.v1.{service}/{method}", request_serializer=_serialize,
                                          response_deserializer=getattr(response, "FromString"))

    async def __call__(self, request: Req, timeout: float | None) -> AsyncIterator[Resp]:
        call = self._call(request, timeout=timeout)
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as e:
            raise rpc_error(self.name, e) from e
        finally:
            call.cancel()
