"""An HTTP edge process (services.http_edge) in front of a gateway, for tests, bench and
`make up`: started on a free port (or a given address), ready when /readyz answers."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devsupport.processes import ServiceProcess, free_port

MODULE = "services.http_edge"
NAME = "http-edge"


def own_env(addr: str, gateway_addr: str) -> dict[str, str]:
    """The edge's own variables: where it listens and the gateway it calls. TLS to the gateway
    (SAYIT_TLS_CA_FILE...) is the caller's: a gateway serving plaintext needs none."""
    return {"SAYIT_HTTP_ADDR": addr, "SAYIT_GATEWAY_ADDR": gateway_addr}


def dial_addr(listen_addr: str) -> str:
    """Where a process on this machine reaches a server listening on `listen_addr` (a wildcard
    host is dialled on loopback)."""
    host, port = listen_addr.rsplit(":", 1)
    if host in ("0.0.0.0", ""):
        return f"127.0.0.1:{port}"
    if host in ("[::]", "::"):
        return f"[::1]:{port}"
    return listen_addr


def ready(base_url: str, timeout: float = 2.0, path: str = "/readyz") -> bool:
    """True when the edge at `base_url` answers /readyz with 200 (it reaches the gateway), or
    `path` (/healthz: it serves)."""
    try:
        with urllib.request.urlopen(f"{base_url}{path}", timeout=timeout) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class HttpEdge:
    process: ServiceProcess
    addr: str

    @property
    def base_url(self) -> str:
        return f"http://{self.addr}"

    def wait_ready(self, timeout: float = 60.0, path: str = "/readyz") -> float:
        """Block until /readyz (or `path`) answers 200 (the edge serves and reaches the
        gateway)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.process.alive():
                raise RuntimeError(f"{MODULE} exited early:\n{self.process.log_tail()}")
            if ready(self.base_url, path=path):
                return time.monotonic() - start
            time.sleep(0.1)
        raise TimeoutError(f"{MODULE} not ready after {timeout}s:\n{self.process.log_tail()}")

    def stop(self) -> int | None:
        return self.process.stop()


def start(
    log_dir: Path,
    gateway_addr: str,
    env: Mapping[str, str] | None = None,
    *,
    addr: str | None = None,
    name: str = NAME,
    ready_path: str = "/readyz",
) -> HttpEdge:
    """Start an edge calling `gateway_addr`; `env` adds SAYIT_* (TLS to the gateway, limits)."""
    addr = addr or f"127.0.0.1:{free_port()}"
    process = ServiceProcess(
        MODULE,
        {**own_env(addr, gateway_addr), **(env or {})},
        log_dir / f"{name}.log",
    ).start()
    edge = HttpEdge(process, addr)
    try:
        edge.wait_ready(path=ready_path)
    except BaseException:
        edge.stop()
        raise
    return edge
