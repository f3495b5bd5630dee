"""Caps on the calls a server runs at once: all its RPCs, its open streams, and (at the gateway,
where the tenant is known) each tenant's open streams.

A call over a cap is refused at once with RESOURCE_EXHAUSTED, a google.rpc.RetryInfo and a
message naming the cap, so that a crowd of streams from one caller costs that caller, not every
tenant. grpc's own `maximum_concurrent_rpcs` is kept as a backstop a little above ours: it
refuses without RetryInfo, and counts health probes too.

Streams are the server-streaming and bidirectional RPCs (WatchJob, TranscribeWithProgress,
StreamingRecognize, a transcriber's TranscribeStream); health and reflection are never counted.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from services.common.errors import QuotaViolation, ResourceExhausted
from services.common.handlers import rewrap

# Probes and tooling, never capped (a health Watch stream is a probe, not work).
_EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# grpc's own cap sits this far above ours, so that ours (with RetryInfo) answers first.
GRPC_BACKSTOP_ROOM = 64
RPC_RETRY_SECONDS = 1.0
STREAM_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class CallCaps:
    """0 means no cap."""

    max_rpcs: int = 0
    max_streams: int = 0
    max_streams_per_tenant: int = 0


class _Counts:
    def __init__(self) -> None:
        self.rpcs = 0
        self.streams = 0
        self.tenant_streams: dict[str, int] = {}


class CallLimits(grpc.aio.ServerInterceptor):
    """Counts calls in flight and refuses those over a cap. `tenant_of()` names the caller's
    tenant (at the gateway, after authentication); without it, no per-tenant cap applies."""

    def __init__(self, caps: CallCaps, tenant_of: Callable[[], str] | None = None) -> None:
        self.caps = caps
        self._tenant_of = tenant_of
        self.counts = _Counts()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_EXEMPT_PREFIXES):
            return handler
        return rewrap(
            handler, lambda behavior: self._unary(behavior, stream=False), self._streaming
        )

    def _streaming(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        # grpc.aio refuses a handler that both yields and writes: keep the handler's own form.
        if not inspect.isasyncgenfunction(behavior):
            return self._unary(behavior, stream=True)

        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            release = self._admit(stream=True)
            try:
                async for response in behavior(request, context):
                    yield response
            finally:
                release()

        return wrapper

    def _unary(self, behavior: Callable[..., Any], *, stream: bool) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            release = self._admit(stream=stream)
            try:
                result = behavior(request, context)
                return await result if inspect.isawaitable(result) else result
            finally:
                release()

        return wrapper

    def _admit(self, *, stream: bool) -> Callable[[], None]:
        """Count the call (raising ResourceExhausted if it is over a cap); the function that
        uncounts it."""
        caps, counts = self.caps, self.counts
        if caps.max_rpcs and counts.rpcs >= caps.max_rpcs:
            raise ResourceExhausted(
                f"this server is already running {caps.max_rpcs} calls, its limit; "
                f"retry in {RPC_RETRY_SECONDS:g} s",
                retry_after_seconds=RPC_RETRY_SECONDS,
                violations=[QuotaViolation("server:concurrent-calls", "concurrent calls")],
            )
        tenant = self._tenant_of() if stream and self._tenant_of else None
        if stream:
            if caps.max_streams and counts.streams >= caps.max_streams:
                raise ResourceExhausted(
                    f"this server already has {caps.max_streams} open streams, its limit; "
                    f"retry in {STREAM_RETRY_SECONDS:g} s",
                    retry_after_seconds=STREAM_RETRY_SECONDS,
                    violations=[QuotaViolation("server:open-streams", "open streams")],
                )
            cap = caps.max_streams_per_tenant
            if tenant is not None and cap and counts.tenant_streams.get(tenant, 0) >= cap:
                raise ResourceExhausted(
                    f"tenant {tenant!r} already has {cap} open streams, the most allowed per "
                    f"tenant; close one or retry in {STREAM_RETRY_SECONDS:g} s",
                    retry_after_seconds=STREAM_RETRY_SECONDS,
                    violations=[QuotaViolation(f"tenant:{tenant}", "open streams per tenant")],
                )
        counts.rpcs += 1
        if stream:
            counts.streams += 1
            if tenant is not None:
                counts.tenant_streams[tenant] = counts.tenant_streams.get(tenant, 0) + 1

        def release() -> None:
            counts.rpcs -= 1
            if stream:
                counts.streams -= 1
                if tenant is not None:
                    left = counts.tenant_streams.get(tenant, 1) - 1
                    if left:
                        counts.tenant_streams[tenant] = left
                    else:
                        counts.tenant_streams.pop(tenant, None)

        return release
