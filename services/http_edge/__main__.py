"""python -m services.http_edge — serve SayIt's HTTP API (OpenAI-compatible audio, jobs)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import uvicorn

from services.common import logs, metrics
from services.common.errors import ConfigError
from services.http_edge.app import create_app
from services.http_edge.config import HttpEdgeSettings


def main() -> int:
    try:
        settings = HttpEdgeSettings.from_env(os.environ)
    except ConfigError as error:
        print(f"http edge: bad configuration: {error}", file=sys.stderr)
        return 2
    logs.configure("http_edge", settings.log)
    if settings.http_metrics_addr:
        try:
            metrics.serve(settings.http_metrics_addr)
        except RuntimeError as error:
            print(f"http edge: {error}", file=sys.stderr)
            return 1
    if settings.http_spool_dir:
        # Starlette spools multipart files past 1 MiB through `tempfile`: this is where.
        Path(settings.http_spool_dir).mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = settings.http_spool_dir
    host, _, port = settings.http_addr.rpartition(":")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=host.strip("[]"),
            port=int(port),
            limit_concurrency=settings.http_max_concurrent_requests,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=30,
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
        )
    )
    logs.get_logger("sayit.http_edge").info(
        "serving", addr=settings.http_addr, gateway=settings.gateway_addr
    )
    asyncio.run(server.serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
