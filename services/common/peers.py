"""Which service is calling: every RPC of an internal server is checked against the identities
allowed to call it (SAYIT_TLS_ALLOWED_PEERS).

Mutual TLS proves the caller holds a certificate of the mesh CA; this says which service it is,
from the certificate's SPIFFE ID (`spiffe://sayit/<service>`, services.common.pki), read from the
call's TLS auth context. A call with no identity is UNAUTHENTICATED, one from a service not in
the list PERMISSION_DENIED, before the handler reads a request. Health and reflection stay open
to any certificate of the CA (probes, make status, grpcurl). Errors raised here are mapped and
logged by the common interceptor around it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from services.common import logs
from services.common.errors import PermissionDenied, Unauthenticated
from services.common.handlers import rewrap
from services.common.pki import IDENTITY_PREFIX

_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_SPIFFE_ID = "peer_spiffe_id"


def peer_service(context: grpc.aio.ServicerContext) -> str | None:
    """The SayIt service named by the caller's certificate; None without one."""
    values = (context.auth_context() or {}).get(_SPIFFE_ID) or []
    for raw in values:
        value = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        if value.startswith(IDENTITY_PREFIX):
            return value.removeprefix(IDENTITY_PREFIX)
    return None


class PeerCheck(grpc.aio.ServerInterceptor):
    """Lets through only calls from the services in `allowed`."""

    def __init__(self, allowed: frozenset[str], callee: str) -> None:
        self.allowed = allowed
        self._callee = callee

    def check(self, context: grpc.aio.ServicerContext) -> None:
        caller = peer_service(context)
        if caller is None:
            raise Unauthenticated(
                f"the {self._callee} accepts only calls from SayIt services presenting their "
                "mesh certificate (spiffe://sayit/<service>); this call presented none"
            )
        logs.bind(peer=caller)
        if caller not in self.allowed:
            raise PermissionDenied(
                f"service {caller!r} may not call the {self._callee}; it accepts calls from "
                f"{', '.join(sorted(self.allowed))} only"
            )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_OPEN_PREFIXES):
            return handler
        return rewrap(handler, self._unary, self._streaming)

    def _unary(self, behavior: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self.check(context)
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result

        return wrapper

    def _streaming(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        # grpc.aio refuses a handler that both yields and writes: keep the handler's own form.
        if not inspect.isasyncgenfunction(behavior):
            return self._unary(behavior)

        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            self.check(context)
            async for response in behavior(request, context):
                yield response

        return wrapper
