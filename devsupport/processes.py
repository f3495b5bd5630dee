"""Real SayIt services as subprocesses on free loopback ports, for tests and bench."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.tls import ClientTLS

ROOT = Path(__file__).resolve().parents[1]


# Below Linux's ephemeral range (32768-60999): a port the kernel handed out with bind(0) is
# free only until someone binds it, and every outgoing connection takes ports from that same
# range, so under load a service could find "its" port taken ("Address already in use").
_PORTS = (20000, 32000)


def free_port() -> int:
    for _ in range(200):
        port = random.randrange(*_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def channel(addr: str, tls: ClientTLS | None = None, **options: int) -> grpc.Channel:
    """A blocking channel to a service, over TLS when `tls` is given."""
    opts = list(options.items())
    if tls is None:
        return grpc.insecure_channel(addr, options=opts)
    return grpc.secure_channel(addr, tls.credentials(), options=opts)


def health_status(
    addr: str, service: str = "", timeout: float = 2.0, tls: ClientTLS | None = None
) -> int | None:
    """The health status of `service` at `addr`, or None if it does not answer."""
    with channel(addr, tls) as chan:
        try:
            reply = health_pb2_grpc.HealthStub(chan).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return None
    return int(reply.status)


@dataclass
class ServiceProcess:
    """One `python -m <module>` process with its own log file."""

    module: str
    env: Mapping[str, str]
    log_path: Path
    addr: str | None = None
    # How to reach it for health checks when it serves TLS.
    tls: ClientTLS | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            cwd=ROOT,
            env={**os.environ, "SAYIT_LOG_FORMAT": "json", **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_serving(self, timeout: float = 120.0) -> float:
        """Block until health says SERVING; the seconds it took. Fails with the log's tail."""
        assert self.addr, "only gRPC services have a health check"
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.alive():
                raise RuntimeError(f"{self.module} exited early:\n{self.log_tail()}")
            status = health_status(self.addr, timeout=1.0, tls=self.tls)
            if status == health_pb2.HealthCheckResponse.SERVING:
                return time.monotonic() - start
            time.sleep(0.1)
        raise TimeoutError(f"{self.module} not SERVING after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def signal(self, signum: int) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; the exit code."""
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def transcriber(tmp: Path, name: str = "transcriber", **env: str) -> ServiceProcess:
    """A transcriber on its own, plaintext: the tests that use it are about transcribing, and
    call it directly; the mesh's (devsupport.mesh) run mutual TLS with identity checks."""
    port = free_port()
    addr = f"127.0.0.1:{port}"
    return ServiceProcess(
        "services.transcriber",
        {
            "SAYIT_TRANSCRIBER_ADDR": addr,
            "SAYIT_TRANSCRIBER_METRICS_ADDR": "",
            "SAYIT_INTERNAL_TLS": "off",
            **env,
        },
        tmp / f"{name}.log",
        addr=addr,
    )
