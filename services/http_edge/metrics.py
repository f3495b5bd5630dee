"""The HTTP edge's Prometheus metrics: requests by route and status, time to the response's
first byte, open event streams. Served on SAYIT_HTTP_METRICS_ADDR, never on the public port."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "sayit_http_requests_total",
    "HTTP requests answered by the edge, by route template, method and HTTP status.",
    ["route", "method", "status"],
)
FIRST_BYTE_SECONDS = Histogram(
    "sayit_http_request_seconds",
    "Seconds from a request's arrival to its response's first byte (an event stream's headers; "
    "a transcription's whole answer), by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
OPEN_STREAMS = Gauge(
    "sayit_http_open_event_streams",
    "Server-sent event streams open on this edge (SAYIT_HTTP_MAX_OPEN_STREAMS caps them).",
)
UNMATCHED = "unmatched"  # a path no route serves: one series, whatever the path


class RequestMetrics:
    """ASGI middleware recording every HTTP request under its route template (never the raw
    path, whose job ids would make a series each)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500  # an exception before any response is answered 500 by the server

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                FIRST_BYTE_SECONDS.labels(_route(scope), scope["method"]).observe(
                    time.monotonic() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            REQUESTS.labels(_route(scope), scope["method"], str(status)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else UNMATCHED
