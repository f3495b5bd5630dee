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


@dataclass
class HttpEdge:
    process: ServiceProcess
    addr: str

    @property
    def base_url(self) -> str:
        return f"http://{self.addr}"

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until /readyz answers 200 (the edge serves and reaches the gateway)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.process.alive():
                raise RuntimeError(f"{MODULE} exited early:\n{self.process.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=2.0) as reply:
                    if reply.status == 200:
                        return time.monotonic() - start
            except (urllib.error.URLError, OSError):
                pass
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
    name: str = "http-edge",
) -> HttpEdge:
    """Start an edge calling `gateway_addr`; `env` adds SAYIT_* (TLS to the gateway, limits)."""
    addr = addr or f"127.0.0.1:{free_port()}"
    process = ServiceProcess(
        MODULE,
        {"SAYIT_HTTP_ADDR": addr, "SAYIT_GATEWAY_ADDR": gateway_addr, **(env or {})},
        log_dir / f"{name}.log",
    ).start()
    edge = HttpEdge(process, addr)
    try:
        edge.wait_ready()
    except BaseException:
        edge.stop()
        raise
    return edge
