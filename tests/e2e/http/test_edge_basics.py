"""The edge serves its OpenAPI document and health, and passes the caller's request id."""

from __future__ import annotations

import httpx

from devsupport.http_edge import HttpEdge


def test_health_openapi_and_request_id(http_edge: HttpEdge) -> None:
    with httpx.Client(base_url=http_edge.base_url) as http:
        assert http.get("/healthz").text == "ok\n"
        assert http.get("/readyz").status_code == 200
        document = http.get("/openapi.json").json()
        assert document["info"]["title"] == "SayIt HTTP API"
        reply = http.get("/healthz", headers={"X-Request-Id": "req-abc123"})
        assert reply.headers["x-request-id"] == "req-abc123"
