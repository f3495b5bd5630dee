"""Serving a SayIt service: grpc.aio server, health, reflection, limits and graceful drain.

Health starts NOT_SERVING, turns SERVING once `startup` (e.g. loading the model) has finished,
and turns NOT_SERVING again on SIGTERM/SIGINT, before the server stops taking new calls and
gives in-flight calls the grace period to finish.
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
from services.common.config import ServerConfig
from services.common.interceptors import ServiceInterceptor

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


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
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


async def serve(config: ServerConfig, services: Sequence[Service], lifecycle: Lifecycle) -> int:
    """Serve until SIGTERM/SIGINT, then drain; the process exit code (0, or 1 if start-up
    failed). Raises if the address cannot be bound."""
    server = grpc.aio.server(
        interceptors=[ServiceInterceptor()], options=server_options(config.max_message_bytes)
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [s.full_name for s in services]
    for service in services:
        service.register(server)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    await _set_health(health_servicer, names, health_pb2.HealthCheckResponse.NOT_SERVING)

    try:
        port = server.add_insecure_port(config.addr)
    except RuntimeError as error:
        raise RuntimeError(f"could not listen on {config.addr}: {error}") from error
    await server.start()
    log.info("server_started", addr=config.addr, port=port, services=names)

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
    if lifecycle.draining:
        await lifecycle.draining()
    await server.stop(config.shutdown_grace_seconds)
    if lifecycle.shutdown:
        await lifecycle.shutdown()
    log.info("shutdown_finished", exit_code=exit_code)
    return exit_code


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
