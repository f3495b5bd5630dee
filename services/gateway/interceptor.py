"""The gateway's own interceptor, inside the common one: authenticate each SpeechService call,
make its principal current, and take one request from the tenant's rate limit. All of it from
metadata, before the handler reads a request message (for UploadJob, before any audio).

Health and reflection are not SpeechService calls, so they stay reachable without a key; nor
does GetInfo need one (a key it is sent must be valid, and tells it the caller's tenant).
Errors raised here are mapped to statuses and logged by the common interceptor around it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from services.common import logs
from services.gateway import auth
from services.gateway.auth import Authenticator
from services.gateway.quotas import Limiter

SERVICE_PREFIX = "/sayit.speech.v1.SpeechService/"
# SpeechService RPCs open to callers without a key.
OPEN_RPCS = frozenset({"GetInfo"})


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator | None, limiter: Limiter | None) -> None:
        self._authenticator = authenticator
        self._limiter = limiter

    async def _admit(self, rpc: str, context: grpc.aio.ServicerContext) -> None:
        principal = auth.ANONYMOUS
        if self._authenticator is not None:
            metadata = context.invocation_metadata() or ()
            if rpc in OPEN_RPCS:
                principal = self._authenticator.identify_if_sent(metadata)
            else:
                principal = self._authenticator.authenticate(metadata, rpc)
        auth.set_current(principal)
        if not principal.tenant:
            return  # an open RPC called without a key: no tenant to log or charge
        logs.bind(
            tenant=principal.tenant,
            **({"api_key": principal.key_name} if principal.key_name else {}),
        )
        if self._limiter is not None:
            await self._limiter.take_request(principal.tenant)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(SERVICE_PREFIX):
            return handler
        rpc = method.removeprefix(SERVICE_PREFIX)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(rpc, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream and inspect.isasyncgenfunction(handler.unary_stream):
            return grpc.unary_stream_rpc_method_handler(
                self._stream(rpc, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream and inspect.isasyncgenfunction(handler.stream_stream):
            # Live sessions: the key is checked from metadata before the first message is read.
            return grpc.stream_stream_rpc_method_handler(
                self._stream(rpc, handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            # The key is checked from metadata before the handler reads the first message.
            return grpc.stream_unary_rpc_method_handler(
                self._unary(rpc, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        raise TypeError(
            f"{method}: the gateway serves only unary, client-streaming and async-generator RPCs"
        )

    def _unary(self, rpc: str, behavior: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await self._admit(rpc, context)
            return await behavior(request, context)

        return wrapper

    def _stream(self, rpc: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await self._admit(rpc, context)
            async for response in behavior(request, context):
                yield response

        return wrapper
