"""Whether the transcriber beside a queue worker is serving, known at every moment.

A worker whose transcriber is dead must not take chunks off the queue: each would fail as
"transcriber unavailable" and burn one of its retries, and a whole fleet's worth of retries
goes that way in seconds. A thread follows the transcriber's gRPC health with a `Watch` stream,
which the transcriber answers at once on every change and which breaks the moment its process
dies; between two of its messages, a transcriber that died is also caught by a plain TCP
connect to its port (refused at once).

The worker runs work horses with RQ's SpawnWorker (a fresh process each), never by forking
itself, so this process may hold gRPC channels.
"""

from __future__ import annotations

import socket
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.tls import ClientTLS

SERVING = "SERVING"
UNKNOWN = "UNKNOWN"
RECONNECT_SECONDS = 0.5


class TranscriberMonitor:
    def __init__(self, addr: str, tls: ClientTLS | None = None) -> None:
        self._addr = addr
        self._channel = (
            grpc.insecure_channel(addr)
            if tls is None
            else grpc.secure_channel(addr, tls.credentials())
        )
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
        stub = health_pb2_grpc.HealthStub(self._channel)
        while not self._closed.is_set():
            try:
                self._call = stub.Watch(health_pb2.HealthCheckRequest())
                for reply in self._call:
                    self._set(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
                self._set(UNKNOWN)
            except grpc.RpcError as error:
                if self._closed.is_set():
                    return
                self._set(f"UNREACHABLE ({error.code().name})")
            self._closed.wait(RECONNECT_SECONDS)

    def listening(self) -> bool:
        """Whether anything accepts connections on the transcriber's port right now."""
        host, _, port = self._addr.rpartition(":")
        if not host or not port.isdigit():
            return True  # not host:port (a DNS name...): rely on the health stream alone
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=0.5):
                return True
        except OSError:
            return False

    def serving(self) -> bool:
        return self.status == SERVING and self.listening()

    def wait_serving(self, timeout: float) -> bool:
        """True as soon as the transcriber is serving; False if it is not within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.serving():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                if self.status == SERVING:  # serving, but its port not (yet, or any more)
                    self._changed.wait(min(remaining, 0.1))
                else:
                    self._changed.wait(min(remaining, 1.0))
        return True

    def close(self) -> None:
        self._closed.set()
        if self._call is not None:
            self._call.cancel()
        self._channel.close()
        self._thread.join(timeout=2.0)
