"""Outbound channels: message limits, keepalive, and request/job ids carried in metadata.

Every outbound call must pass a timeout; `call_timeout` derives it from the caller's remaining
deadline so a deadline flows through every hop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from services.common import logs
from services.common.interceptors import JOB_ID_KEY, REQUEST_ID_KEY
from services.common.reloading_channel import ReloadingChannel, ReloadingSyncChannel
from services.common.server import transport_limit
from services.common.tls import ClientTLS


def channel_options(max_message_bytes: int, target: str = "") -> list[tuple[str, Any]]:
    limit = transport_limit(max_message_bytes)
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # After a peer restarts, calls fail fast with UNAVAILABLE until the channel reconnects;
        # gRPC's default backoff grows to 120 s, which would keep a restarted scheduler
        # unreachable from the gateway for minutes. Retry the connection within seconds.
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.min_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]
    if spreads_calls(target):
        # A name that resolves to several servers (`dns:///transcriber-direct...`, a Kubernetes
        # headless Service) spreads calls over all of them; pick_first would send everything
        # to one pod.
        options.append(("grpc.lb_policy_name", "round_robin"))
    return options


def spreads_calls(target: str) -> bool:
    """Whether calls to `target` are balanced round-robin: names resolved by DNS and address
    lists. A plain host:port keeps pick_first, which reconnects at once after a restart."""
    return target.startswith("dns:") or (target.startswith(("ipv4:", "ipv6:")) and "," in target)


def _correlation_metadata() -> list[tuple[str, str]]:
    bound = logs.current()
    pairs = [(REQUEST_ID_KEY, bound.get("request_id")), (JOB_ID_KEY, bound.get("job_id"))]
    return [(key, str(value)) for key, value in pairs if value]


def _with_correlation(details: Any) -> Any:
    extra = _correlation_metadata()
    if not extra:
        return details
    present = {key for key, _ in details.metadata or ()}
    metadata = [*(details.metadata or ()), *((k, v) for k, v in extra if k not in present)]
    return details._replace(metadata=metadata)


class _CorrelationInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor
):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(_with_correlation(client_call_details), request)

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(_with_correlation(client_call_details), request)


def aio_channel(
    target: str, max_message_bytes: int, tls: ClientTLS | None = None
) -> grpc.aio.Channel:
    """An asyncio channel to another SayIt service (TLS when `tls` is given; one that follows
    rotations of the certificate files when `tls` names them)."""
    options = channel_options(max_message_bytes, target)
    interceptors = [_CorrelationInterceptor()]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)

    def make(tls: ClientTLS) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(
            target, tls.credentials(), options=options, interceptors=interceptors
        )

    return make(tls) if tls.files is None else ReloadingChannel(tls, make)


def sync_channel(target: str, max_message_bytes: int, tls: ClientTLS | None = None) -> grpc.Channel:
    """A blocking channel, for code that runs outside an event loop (a queue worker's thread),
    following rotations of the certificate files when `tls` names them."""
    options = channel_options(max_message_bytes, target)
    if tls is None:
        return grpc.insecure_channel(target, options=options)

    def make(tls: ClientTLS) -> grpc.Channel:
        return grpc.secure_channel(target, tls.credentials(), options=options)

    return make(tls) if tls.files is None else ReloadingSyncChannel(tls, make)


def call_timeout(context: grpc.aio.ServicerContext | None, default: float) -> float:
    """Seconds an outbound call may take: the caller's remaining deadline, else `default`."""
    remaining = context.time_remaining() if context is not None else None
    return default if remaining is None else max(0.001, remaining)
