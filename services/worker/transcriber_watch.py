"""Whether the transcriber beside a queue worker is serving, known at every moment.

A worker whose transcriber is dead must not take chunks off the queue: each would fail as
"transcriber unavailable" and burn one of its retries, and a whole fleet's worth of retries
goes that way in seconds. The worker process itself may not create gRPC channels (it forks
work horses), so a small child process (`python -m services.worker.transcriber_watch ADDR`)
polls the transcriber's gRPC health and prints the status of each poll on a line;
`TranscriberMonitor` reads those lines without blocking. Between two polls, a transcriber that
died is caught by a plain TCP connect to its port (refused at once), which needs no gRPC.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import time

from services.common.config import Env
from services.common.tls import ClientTLS, load_client_tls

SERVING = "SERVING"
UNKNOWN = "UNKNOWN"
POLL_SECONDS = 0.5


def watch(addr: str, interval: float = POLL_SECONDS, tls: ClientTLS | None = None) -> None:
    """Print the transcriber's status after every poll, until the parent goes away (its parent
    id changes, or printing fails)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    parent = os.getppid()
    channel_ = (
        grpc.insecure_channel(addr) if tls is None else grpc.secure_channel(addr, tls.credentials())
    )
    with channel_ as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while os.getppid() == parent:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=max(interval, 1.0))
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as error:
                status = f"UNREACHABLE ({error.code().name})"
            try:
                print(status, flush=True)
            except BrokenPipeError:
                return
            time.sleep(interval)


class TranscriberMonitor:
    """The latest status the watch process reported (it is restarted if it dies)."""

    def __init__(self, addr: str) -> None:
        self._addr = addr
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self.status = UNKNOWN

    def _ensure_running(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "services.worker.transcriber_watch", self._addr],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            assert self._process.stdout is not None
            os.set_blocking(self._process.stdout.fileno(), False)
            self._buffer = b""
            self.status = UNKNOWN
        return self._process

    def poll(self, timeout: float = 0.0) -> str:
        """Read what the watcher reported, waiting up to `timeout` for news; the status."""
        self._read(timeout)
        return self.status

    def _read(self, timeout: float) -> int:
        """Take in the watcher's reports (waiting up to `timeout` for one); how many came."""
        process = self._ensure_running()
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, timeout))
        if not ready:
            return 0
        chunk = process.stdout.read() or b""
        if not chunk and process.poll() is not None:
            self.status = UNKNOWN  # the watcher died; restarted on the next poll
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        if lines:
            self.status = lines[-1].decode(errors="replace").strip()
        return len(lines)

    def refresh(self, timeout: float = 2.0) -> str:
        """The status from polls made from now on (two, so neither began before now): after a
        job failed, whether the transcriber is still there must not be an older answer."""
        self._read(0.0)
        deadline = time.monotonic() + timeout
        fresh = 0
        while fresh < 2 and (remaining := deadline - time.monotonic()) > 0:
            fresh += self._read(remaining)
        return self.status

    def listening(self) -> bool:
        """Whether anything accepts connections on the transcriber's port right now."""
        host, _, port = self._addr.rpartition(":")
        if not host or not port.isdigit():
            return True  # not host:port (a DNS name...): rely on the health checks alone
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=0.5):
                return True
        except OSError:
            return False

    def serving(self) -> bool:
        return self.poll() == SERVING and self.listening()

    def wait_serving(self, timeout: float) -> bool:
        """True as soon as the transcriber is serving; False if it is not within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if self.poll(timeout=min(max(remaining, 0.0), 1.0)) == SERVING and self.listening():
                return True
            if remaining <= 0:
                return False

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m services.worker.transcriber_watch ADDR")
    with contextlib.suppress(KeyboardInterrupt):
        # The worker's own environment: TLS to its transcriber when the services serve TLS.
        watch(sys.argv[1], tls=load_client_tls(Env(os.environ)))
