"""Serving a SayIt service: grpc.aio server, health, reflection, limits, TLS and graceful drain.

Every server caps the calls and open streams it runs at once (services.common.call_limits).

Health starts NOT_SERVING and turns SERVING once `startup` (e.g. loading the model) has finished.
On SIGTERM/SIGINT: health turns NOT_SERVING (and keeps answering, so probes and load balancers
see it), new calls are refused with UNAVAILABLE, and the calls in flight (and the `draining`
hook) get SAYIT_SHUTDOWN_GRACE_SECONDS to finish; then the server stops and the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import logs
from services.common.call_limits import GRPC_BACKSTOP_ROOM, CallCaps, CallLimits
from services.common.config import ServerConfig
from services.common.interceptors import Drain, ServiceInterceptor
from services.common.peers import PeerCheck

log = logs.get_logger("sayit.server")

Hook = Callable[[], Awaitable[None]]


@dataclass
class Service:
    """One gRPC service to serve: its full name and how to add its servicer to a server."""

    full_name: str
    register: Callable[[grpc.aio.Server], None]


@dataclass
class Lifecycle:
    """Hooks around serving. `startup` runs after the port is bound and before SERVING;
    `draining` runs when shutdown begins; `shutdown` after the server has stopped."""

    startup: Hook | None = None
    draining: Hook | None = None
    shutdown: Hook | None = None


# Room for the rest of a message (config, names, framing) beyond the largest audio allowed, so
# that audio of exactly SAYIT_MAX_REQUEST_BYTES passes every hop and the gateway can refuse
# larger audio with a message naming the limit (grpc's own says only "larger than max").
ENVELOPE_BYTES = 1 << 20
_INT32_MAX = 2**31 - 1


def transport_limit(max_message_bytes: int) -> int:
    """The largest gRPC message accepted for audio of at most `max_message_bytes`."""
    return min(_INT32_MAX, max_message_bytes + ENVELOPE_BYTES)


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    limit = transport_limit(max_message_bytes)
    return [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        # Without this, two processes could bind the same port and share its calls silently.
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        # Clients balancing round-robin over a DNS name re-resolve it only when a connection
        # ends; closing connections after a while (streams in flight carry on) lets them find
        # pods added since.
        ("grpc.max_connection_age_ms", 300_000),
    ]


async def serve(
    config: ServerConfig,
    services: Sequence[Service],
    lifecycle: Lifecycle,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    *,
    edge: bool = False,
) -> int:
    """Serve until SIGTERM/SIGINT, then drain; the process exit code (0, or 1 if start-up
    failed). Raises if the address cannot be bound. `interceptors` (e.g. the gateway's
    authentication) run inside the common one, so their errors are mapped and logged by it.
    `edge`: public callers reach this server (services.common.correlation)."""
    drain = Drain()
    caps = CallCaps(config.max_concurrent_rpcs, config.max_open_streams)
    names = [s.full_name for s in services]
    # A caller of the wrong service is refused before it counts against the caps.
    peers = (
        []
        if config.allowed_peers is None
        else [PeerCheck(config.allowed_peers, " and ".join(names))]
    )
    server = grpc.aio.server(
        # The caps come before a service's own interceptors: refusing costs no authentication.
        interceptors=[
            ServiceInterceptor(drain, edge=edge),
            *peers,
            CallLimits(caps),
            *interceptors,
        ],
        options=server_options(config.max_message_bytes),
        maximum_concurrent_rpcs=(
            config.max_concurrent_rpcs + GRPC_BACKSTOP_ROOM if config.max_concurrent_rpcs else None
        ),
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in services:
        service.register(server)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    await _set_health(health_servicer, names, health_pb2.HealthCheckResponse.NOT_SERVING)

    try:
        if config.tls is None:
            port = server.add_insecure_port(config.addr)
        else:
            port = server.add_secure_port(config.addr, config.tls.credentials())
    except RuntimeError as error:
        raise RuntimeError(f"could not listen on {config.addr}: {error}") from error
    await server.start()
    tls = "off" if config.tls is None else "mutual" if config.tls.mutual else "on"
    log.info(
        "server_started",
        addr=config.addr,
        port=port,
        services=names,
        tls=tls,
        allowed_peers=sorted(config.allowed_peers or ()) or "any",
    )
    if config.internal_tls_off:
        log.warning(
            "internal_tls_off",
            reason="SAYIT_INTERNAL_TLS=off: this internal server accepts any caller, in "
            "plaintext, with no check of which service is calling; never run it so where "
            "anything else can reach its port",
        )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    startup_task = asyncio.create_task(_start(lifecycle, health_servicer, names))
    # A failed start-up (e.g. no model) ends the process instead of staying NOT_SERVING forever.
    startup_task.add_done_callback(
        lambda task: None if task.cancelled() or task.exception() is None else stop.set()
    )
    await stop.wait()
    exit_code = 0
    if startup_task.done() and not startup_task.cancelled() and startup_task.exception():
        log.error("startup_failed", exc_info=startup_task.exception())
        exit_code = 1
    log.info("shutdown_started", grace_seconds=config.shutdown_grace_seconds)
    startup_task.cancel()
    await health_servicer.enter_graceful_shutdown()
    drain.start()
    started = loop.time()
    await _drain(drain, lifecycle, config.shutdown_grace_seconds)
    remaining = max(0.0, config.shutdown_grace_seconds - (loop.time() - started))
    # Calls still running now have outlived the grace period (e.g. hour-long event streams,
    # which callers re-attach elsewhere): grpc cancels them after what is left of it.
    await server.stop(remaining)
    if lifecycle.shutdown:
        await lifecycle.shutdown()
    log.info("shutdown_finished", exit_code=exit_code, in_flight_left=drain.in_flight)
    return exit_code


async def _drain(drain: Drain, lifecycle: Lifecycle, grace_seconds: float) -> None:
    """Wait, at most the grace period, for the calls in flight and the `draining` hook."""
    waits = [asyncio.ensure_future(drain.wait_idle())]
    if lifecycle.draining:
        waits.append(asyncio.ensure_future(lifecycle.draining()))
    done, pending = await asyncio.wait(waits, timeout=grace_seconds)
    for task in pending:
        task.cancel()
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("drain_failed", exc_info=task.exception())
    log.info("drain_finished", in_flight=drain.in_flight, timed_out=bool(pending))


async def _start(
    lifecycle: Lifecycle, health_servicer: health.aio.HealthServicer, names: list[str]
) -> None:
    if lifecycle.startup:
        await lifecycle.startup()
    await _set_health(health_servicer, names, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving")


async def _set_health(servicer: health.aio.HealthServicer, names: list[str], status: int) -> None:
    for name in ["", *names]:
        await servicer.set(name, status)
