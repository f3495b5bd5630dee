"""The one server interceptor: request ids, error mapping, drain, RPC metrics and one log line
per RPC.

Domain errors become their status (with google.rpc details); a failed downstream call keeps its
code, and its message when a SayIt service wrote it (gRPC's own text, which names addresses, is
logged and replaced: services.common.errors). Messages never carry addresses
(services.common.redact) and UNAVAILABLE / INTERNAL name the request id. A request whose bytes
are not the method's message is INVALID_ARGUMENT; anything unexpected is INTERNAL with a generic
message and a logged traceback, so callers never see UNKNOWN. While the server drains (after
SIGTERM), new calls are refused with UNAVAILABLE and the calls in flight are counted so the
server can stop once they are done.

Request and job ids from metadata are checked before anything logs, stores or forwards them
(services.common.correlation); every response's trailing metadata names the request id used.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog

from services.common import correlation, logs, metrics
from services.common.errors import InvalidArgument, SayItError, Unavailable, from_rpc_error
from services.common.log_throttle import LogThrottle
from services.common.redact import has_address
from services.common.status import internal_status, to_status

REQUEST_ID_KEY = "x-request-id"
JOB_ID_KEY = "x-sayit-job-id"
# Initial metadata a transcriber sends once it holds a slot for a call, before it decodes the
# audio: a call cut off after it is one the transcriber was working on (see
# services.scheduler.poison).
ACCEPTED_KEY = "x-sayit-accepted"
# Calls that are probes rather than work: logged at debug level so they don't drown the logs.
_QUIET_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

log = logs.get_logger("sayit.rpc")
# A caller sending a bad id on every call gets one warning per interval, not one per call.
_bad_id_log = LogThrottle(10.0)


class Drain:
    """Calls in flight, and whether new ones are refused (the server is shutting down)."""

    def __init__(self) -> None:
        self.refusing = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def begin(self, method: str) -> bool:
        """Count a starting call; False when it must be refused. Probes are never counted (a
        health Watch stream would hold the drain open) and never refused (they say
        NOT_SERVING while draining)."""
        if method.startswith(_QUIET_PREFIXES):
            return True
        if self.refusing:
            return False
        self.in_flight += 1
        self._idle.clear()
        return True

    def end(self, method: str) -> None:
        if method.startswith(_QUIET_PREFIXES):
            return
        self.in_flight = max(0, self.in_flight - 1)
        if self.in_flight == 0:
            self._idle.set()

    def start(self) -> None:
        self.refusing = True

    async def wait_idle(self) -> None:
        await self._idle.wait()


class _Undecodable:
    """What the deserializer hands over when the request bytes are not the method's message
    (grpc would otherwise answer UNKNOWN)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception as error:
            return _Undecodable(error)

    return deserialize


def _check_decoded(request: Any) -> None:
    if isinstance(request, _Undecodable):
        reason = str(request.error).split(": ")[-1] or type(request.error).__name__
        raise InvalidArgument(
            f"the request is not a valid protobuf message for this method ({reason}); "
            "send it with the generated client of the published .proto files"
        )


def _metadata_value(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for item in context.invocation_metadata() or ():
        if item.key == key:
            value = item.value
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return None


class _Call:
    """The bookkeeping for one RPC: context binding, outcome, and the final log line."""

    def __init__(
        self, method: str, context: grpc.aio.ServicerContext, kind: str, *, edge: bool
    ) -> None:
        self.method = method
        self.context = context
        self.kind = kind
        self.start = time.monotonic()
        metrics.rpc_started(kind, method)
        self.code = grpc.StatusCode.OK
        sent = _metadata_value(context, REQUEST_ID_KEY)
        self.request_id, replaced = correlation.request_id(sent)
        structlog.contextvars.clear_contextvars()
        bindings = {"request_id": self.request_id}
        # At the edge the header is a caller's claim: the job id is bound once it is known.
        job_id = None if edge else _metadata_value(context, JOB_ID_KEY)
        dropped = job_id is not None and not correlation.is_valid_id(job_id)
        if job_id and not dropped:
            bindings["job_id"] = job_id
        logs.bind(**bindings)
        if replaced or dropped:
            skipped = _bad_id_log.due()
            if skipped is not None:
                log.warning(
                    "metadata_id_refused",
                    method=method,
                    key=REQUEST_ID_KEY if replaced else JOB_ID_KEY,
                    reason=replaced or correlation.why_invalid(job_id or ""),
                    skipped=skipped,
                )
        self.trailing = ((REQUEST_ID_KEY, self.request_id),)
        context.set_trailing_metadata(self.trailing)

    async def fail(self, error: BaseException) -> None:
        """Abort the call with the status for `error` (raises grpc's AbortError)."""
        if isinstance(error, grpc.RpcError) and not isinstance(error, SayItError):
            error = from_rpc_error(error)
        if isinstance(error, SayItError):
            self.code = error.code
            if has_address(error.message):
                log.warning("error_message_redacted", method=self.method, message=error.message)
            status = to_status(error, self.request_id)
        else:
            self.code = grpc.StatusCode.INTERNAL
            log.error("rpc_crashed", method=self.method, exc_info=error)
            status = internal_status(self.request_id)
        await self.context.abort(
            status.code, status.details, (*status.trailing_metadata, *self.trailing)
        )

    def cancelled(self) -> None:
        remaining = self.context.time_remaining()
        # The client cancels when *its* deadline passes, which the server (whose clock started
        # when the request arrived) sees a little before its own: that is a deadline too.
        expired = remaining is not None and remaining <= _DEADLINE_SLACK_SECONDS
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
    """`edge`: the server takes calls from outside the mesh (the gateway), so caller metadata
    that only SayIt's services may set (the job id) is ignored."""

    def __init__(self, drain: Drain | None = None, *, edge: bool = False) -> None:
        self._drain = drain or Drain()
        self._edge = edge

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        drain, edge = self._drain, self._edge
        # Single-request handlers get a tolerant deserializer; request streams keep grpc's.
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(
                    method, handler.unary_unary, drain, metrics.UNARY, check=True, edge=edge
                ),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(
                    method,
                    handler.unary_stream,
                    drain,
                    metrics.SERVER_STREAM,
                    check=True,
                    edge=edge,
                ),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(
                    method,
                    handler.stream_unary,
                    drain,
                    metrics.CLIENT_STREAM,
                    check=False,
                    edge=edge,
                ),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream(
                method,
                handler.stream_stream,
                drain,
                metrics.BIDI_STREAM,
                check=False,
                edge=edge,
            ),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


_DEADLINE_SLACK_SECONDS = 0.25
_SHUTTING_DOWN = "the service is shutting down; retry (another replica will answer)"
_SHUTDOWN_RETRY_SECONDS = 0.5


def _wrap_unary(
    method: str,
    behavior: Callable[..., Any],
    drain: Drain,
    kind: str,
    *,
    check: bool,
    edge: bool = False,
) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        call = _Call(method, context, kind, edge=edge)
        counted = False
        try:
            counted = drain.begin(method)
            if not counted:
                raise Unavailable(_SHUTTING_DOWN, _SHUTDOWN_RETRY_SECONDS)
            if check:
                _check_decoded(request)
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
            if counted:
                drain.end(method)
            call.finish()

    return wrapper


def _wrap_stream(
    method: str,
    behavior: Callable[..., Any],
    drain: Drain,
    kind: str,
    *,
    check: bool,
    edge: bool = False,
) -> Callable[..., Any]:
    # Streaming handlers either yield responses or call `await context.write()` and return;
    # grpc.aio refuses a mix, so the wrapper takes the handler's own form.
    if not inspect.isasyncgenfunction(behavior):
        return _wrap_unary(method, behavior, drain, kind, check=check, edge=edge)

    async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        call = _Call(method, context, kind, edge=edge)
        counted = False
        try:
            counted = drain.begin(method)
            if not counted:
                raise Unavailable(_SHUTTING_DOWN, _SHUTDOWN_RETRY_SECONDS)
            if check:
                _check_decoded(request)
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
            if counted:
                drain.end(method)
            call.finish()

    return wrapper
