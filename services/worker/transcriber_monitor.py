"""Whether the transcriber beside a queue worker is serving, known at every moment.

A worker whose transcriber is dead must not take chunks off the queue: each would fail as
"transcriber unavailable" and burn one of its retries, and a whole fleet's worth of retries
goes that way in seconds. Before it takes a chunk, the worker asks the transcriber's gRPC health
afresh (`serving`): what a stream said a moment ago can be stale exactly when it matters, just
after the transcriber died under the chunk before. While it waits for the transcriber, a thread
following the health `Watch` stream wakes it on every change, instead of polling.

The worker runs work horses with RQ's SpawnWorker (a fresh process each), never by forking
itself, so this process may hold gRPC channels.
"""

from __future__ import annotations

import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.channels import sync_channel
from services.common.tls import ClientTLS

SERVING = "SERVING"
UNKNOWN = "UNKNOWN"
RECONNECT_SECONDS = 0.5
CHECK_TIMEOUT_SECONDS = 1.0


class TranscriberMonitor:
    def __init__(self, addr: str, tls: ClientTLS | None = None) -> None:
        # Reconnects within seconds of a restart (not after gRPC's default backoff of minutes),
        # and with the worker's renewed certificate after a rotation.
        self._channel = sync_channel(addr, 0, tls)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._changed = threading.Condition()
        self._closed = threading.Event()
        self._call: grpc.Future | None = None
        self.status = UNKNOWN
        self._thread = threading.Thread(target=self._follow, name="transcriber-health", daemon=True)
        self._thread.start()

    def _set(self, status: str) -> None:
        with self._changed:
            self.status = status
            self._changed.notify_all()

    def _follow(self) -> None:
        while not self._closed.is_set():
            try:
                self._call = self._health.Watch(health_pb2.HealthCheckRequest())
                for reply in self._call:
                    self._set(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
                self._set(UNKNOWN)
            except grpc.RpcError as error:
                if self._closed.is_set():
                    return
                self._set(f"UNREACHABLE ({error.code().name})")
            self._closed.wait(RECONNECT_SECONDS)

    def serving(self) -> bool:
        """Whether the transcriber serves right now, asked afresh (a health Check)."""
        try:
            reply = self._health.Check(
                health_pb2.HealthCheckRequest(), timeout=CHECK_TIMEOUT_SECONDS
            )
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as error:
            status = f"UNREACHABLE ({error.code().name})"
        self._set(status)
        return status == SERVING

    def wait_serving(self, timeout: float) -> bool:
        """True as soon as the transcriber is serving; False if it is not within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.serving():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:  # woken by the Watch stream's next news, or after a second
                self._changed.wait(min(remaining, 1.0))
        return True

    def close(self) -> None:
        self._closed.set()
        if self._call is not None:
            self._call.cancel()
        self._channel.close()
        self._thread.join(timeout=2.0)
