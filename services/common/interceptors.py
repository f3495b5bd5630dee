"""The one server interceptor: request ids, error mapping, RPC metrics and one log line per RPC.

Domain errors become their status (with google.rpc details); a failed downstream call keeps its
code; anything unexpected is INTERNAL with a generic message and a logged traceback, so callers
never see UNKNOWN.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog

from services.common import logs, metrics
from services.common.errors import SayItError, from_rpc_error
from services.common.status import internal_status, to_status

REQUEST_ID_KEY = "x-request-id"
JOB_ID_KEY = "x-sayit-job-id"
# Calls that are probes rather than work: logged at debug level so they don't drown the logs.
_QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

log = logs.get_logger("sayit.rpc")


def _metadata_value(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for item in context.invocation_metadata() or ():
        if item.key == key:
            value = item.value
            return value.decode() if isinstance(value, bytes) else value
    return None


class _Call:
    """The bookkeeping for one RPC: context binding, outcome, and the final log line."""

    def __init__(self, method: str, context: grpc.aio.ServicerContext, kind: str) -> None:
        self.method = method
        self.context = context
        self.kind = kind
        self.start = time.monotonic()
        metrics.rpc_started(kind, method)
        self.code = grpc.StatusCode.OK
        self.request_id = _metadata_value(context, REQUEST_ID_KEY) or uuid.uuid4().hex[:16]
        structlog.contextvars.clear_contextvars()
        bindings = {"request_id": self.request_id}
        job_id = _metadata_value(context, JOB_ID_KEY)
        if job_id:
            bindings["job_id"] = job_id
        logs.bind(**bindings)

    async def fail(self, error: BaseException) -> None:
        """Abort the call with the status for `error` (raises grpc's AbortError)."""
        if isinstance(error, grpc.RpcError) and not isinstance(error, SayItError):
            error = from_rpc_error(error, "a downstream service")
        if isinstance(error, SayItError):
            self.code = error.code
            status = to_status(error)
        else:
            self.code = grpc.StatusCode.INTERNAL
            log.error("rpc_crashed", method=self.method, exc_info=error)
            status = internal_status(self.request_id)
        await self.context.abort(status.code, status.details, status.trailing_metadata)

    def cancelled(self) -> None:
        remaining = self.context.time_remaining()
        expired = remaining is not None and remaining <= 0
        self.code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED

    def finish(self) -> None:
        code = self.context.code() if self.code == grpc.StatusCode.OK else self.code
        if isinstance(code, grpc.StatusCode):
            self.code = code
        seconds = time.monotonic() - self.start
        metrics.rpc_finished(self.kind, self.method, self.code.name, seconds)
        quiet = self.method.startswith(_QUIET_PREFIXES) and self.code == grpc.StatusCode.OK
        (log.debug if quiet else log.info)(
            "rpc_finished",
            method=self.method,
            code=self.code.name,
            duration_ms=round(seconds * 1000, 1),
        )


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(method, handler.unary_unary, metrics.UNARY),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(method, handler.unary_stream, metrics.SERVER_STREAM),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(method, handler.stream_unary, metrics.CLIENT_STREAM),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream(method, handler.stream_stream, metrics.BIDI_STREAM),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _wrap_unary(
    method: str, behavior: Callable[..., Any], kind: str
) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        call = _Call(method, context, kind)
        try:
            result = behavior(request, context)
            return await result if asyncio.iscoroutine(result) else result
        except asyncio.CancelledError:
            call.cancelled()
            raise
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await call.fail(error)
        finally:
            call.finish()

    return wrapper


def _wrap_stream(method: str, behavior: Callable[..., Any], kind: str) -> Callable[..., Any]:
    # Streaming handlers either yield responses or call `await context.write()` and return;
    # grpc.aio refuses a mix, so the wrapper takes the handler's own form.
    if not inspect.isasyncgenfunction(behavior):
        return _wrap_unary(method, behavior, kind)

    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        call = _Call(method, context, kind)
        try:
            async for response in behavior(request, context):
                yield response
        except asyncio.CancelledError:
            call.cancelled()
            raise
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await call.fail(error)
        finally:
            call.finish()

    return wrapper
