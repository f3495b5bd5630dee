"""The edge serves its OpenAPI document and health, and passes the caller's request id."""

from __future__ import annotations

from pathlib import Path

import httpx

from devsupport import http_edge as edge_process
from devsupport.http_edge import HttpEdge
from devsupport.processes import free_port


def test_health_openapi_and_request_id(http_edge: HttpEdge) -> None:
    with httpx.Client(base_url=http_edge.base_url) as http:
        assert http.get("/healthz").text == "ok\n"
        assert http.get("/readyz").status_code == 200
        document = http.get("/openapi.json").json()
        assert document["info"]["title"] == "SayIt HTTP API"
        reply = http.get("/healthz", headers={"X-Request-Id": "req-abc123"})
        assert reply.headers["x-request-id"] == "req-abc123"


def test_a_gateway_that_does_not_answer_is_503_with_retry_after(
    tmp_path: Path, http_key: str
) -> None:
    # An edge whose gateway is gone: it serves (healthz), is not ready, and answers every call
    # 503 in OpenAI's shape with a retry hint and no internal address.
    dead = f"127.0.0.1:{free_port()}"
    edge = edge_process.start(tmp_path, dead, ready_path="/healthz")
    try:
        with httpx.Client(base_url=edge.base_url, timeout=30) as http:
            assert http.get("/readyz").status_code == 503
            reply = http.get("/v1/jobs", headers={"Authorization": f"Bearer {http_key}"})
            assert reply.status_code == 503, reply.text
            assert int(reply.headers["retry-after"]) >= 1
            error = reply.json()["error"]
            assert error["type"] == "service_unavailable"
            assert error["code"] == "unavailable"
            assert dead not in error["message"] and dead.split(":")[1] not in error["message"]
    finally:
        edge.stop()
