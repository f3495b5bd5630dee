"""The worker's view of its transcriber (a health Check before each chunk, the health Watch
stream to wake it while it waits), against a real health server whose status the test sets, a
health server in a process the test SIGKILLs, and a real transcriber process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from devsupport import processes
from services.worker.transcriber_monitor import SERVING, TranscriberMonitor


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer, grpc.Server]]:
    server = grpc.server(futures.ThreadPoolExecutor(4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    addr = f"127.0.0.1:{processes.free_port()}"
    server.add_insecure_port(addr)
    server.start()
    yield addr, servicer, server
    server.stop(0)


def eventually(condition: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_status_changes_are_seen_at_once_and_a_dead_server_is_not_serving(
    health_server: tuple[str, health.HealthServicer, grpc.Server],
) -> None:
    addr, servicer, server = health_server
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    monitor = TranscriberMonitor(addr)
    try:
        assert eventually(lambda: monitor.status == "NOT_SERVING")
        assert not monitor.serving() and not monitor.wait_serving(0.3)
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        started = time.monotonic()
        assert monitor.wait_serving(2.0)
        assert time.monotonic() - started < 1.0  # pushed by the Watch stream, not polled
        assert monitor.status == SERVING and monitor.serving()
        server.stop(0)
        # The stream breaks with the server, and a fresh check finds nobody.
        assert eventually(lambda: monitor.status.startswith("UNREACHABLE"))
        assert not monitor.serving()
    finally:
        monitor.close()


def test_a_serving_transcriber_is_seen_serving(transcriber: processes.ServiceProcess) -> None:
    monitor = TranscriberMonitor(transcriber.addr or "")
    try:
        assert monitor.wait_serving(15.0)
        assert monitor.status == SERVING and monitor.serving()
    finally:
        monitor.close()


def test_nothing_listening_is_not_serving() -> None:
    addr = f"127.0.0.1:{processes.free_port()}"
    monitor = TranscriberMonitor(addr)
    try:
        assert not monitor.wait_serving(2.0)
        assert monitor.status.startswith("UNREACHABLE")
        assert not monitor.serving()
    finally:
        monitor.close()


HEALTH_SERVER = """
import sys, time
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
server = grpc.server(futures.ThreadPoolExecutor(2))
servicer = health.HealthServicer()
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port(sys.argv[1])
server.start()
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
server.wait_for_termination()
"""


def test_the_moment_a_transcriber_is_killed_it_is_not_serving() -> None:
    """No stale answer right after the transcriber died under a chunk: the worker's next
    question must not let it take the chunk's retry."""
    addr = f"127.0.0.1:{processes.free_port()}"
    server = subprocess.Popen([sys.executable, "-c", HEALTH_SERVER, addr])
    monitor = TranscriberMonitor(addr)
    try:
        assert monitor.wait_serving(15.0)
        for _ in range(20):  # the stream is busy with nothing: its last word is SERVING
            assert monitor.serving()
        server.kill()
        server.wait()
        assert not monitor.serving()  # at once, whatever the stream has said by now
    finally:
        monitor.close()
        server.kill()
