"""The edge serves its OpenAPI document and health, and passes the caller's request id."""

from __future__ import annotations

from pathlib import Path

import httpx

from devsupport import http_edge as edge_process
from devsupport.http_edge import HttpEdge
from devsupport.processes import free_port
from tests.support import prometheus


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


def test_metrics_count_requests_by_route_template_not_by_path(
    http_edge: HttpEdge, http_key: str
) -> None:
    metrics_addr = http_edge.process.env["SAYIT_HTTP_METRICS_ADDR"]
    missing = "0123456789abcdef0123456789abcdef"
    before = prometheus.scrape(metrics_addr)
    with httpx.Client(base_url=http_edge.base_url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {http_key}"}
        for _ in range(2):
            assert http.get(f"/v1/jobs/{missing}", headers=auth).status_code == 404
        assert http.get("/v1/jobs/x", headers={}).status_code == 401
        assert http.get("/no/such/path").status_code == 404
    after = prometheus.scrape(metrics_addr)

    def added(**labels: str) -> float:
        name = "sayit_http_requests_total"
        return prometheus.value(after, name, **labels) - prometheus.value(before, name, **labels)

    assert added(route="/v1/jobs/{id}", method="GET", status="404") == 2
    assert added(route="/v1/jobs/{id}", method="GET", status="401") == 1
    assert added(route="unmatched", method="GET", status="404") == 1
    # Job ids never become label values (a series per job would grow without bound).
    assert not any(missing in value for _, labels in after for _, value in labels)
    assert prometheus.value(after, "sayit_http_request_seconds_count", route="/v1/jobs/{id}") >= 3
    assert ("sayit_http_open_event_streams", frozenset()) in after
