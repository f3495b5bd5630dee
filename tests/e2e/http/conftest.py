"""HTTP edges (services.http_edge) in front of the session's meshes: `http_edge` before the
main mesh (its dev key), `http_edge_limits` before the edge mesh (tenants with tight limits,
a read-only key, a mutual-TLS gateway)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devsupport import http_edge as edge_process
from devsupport.http_edge import HttpEdge
from devsupport.mesh import Mesh
from devsupport.processes import free_port
from tests.support.edge import EdgeMesh


@pytest.fixture(scope="package")
def http_edge(mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpEdge]:
    # The main mesh's gateway serves plaintext on loopback; the edge serves its metrics.
    edge = edge_process.start(
        tmp_path_factory.mktemp("http-edge"),
        mesh.gateway_addr,
        {"SAYIT_HTTP_METRICS_ADDR": f"127.0.0.1:{free_port()}"},
    )
    try:
        yield edge
    finally:
        edge.stop()


@pytest.fixture(scope="package")
def http_key(mesh: Mesh) -> str:
    assert mesh.api_key
    return mesh.api_key


@pytest.fixture(scope="package")
def http_edge_limits(
    edge: EdgeMesh, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpEdge]:
    # The edge mesh's gateway requires a client certificate of the mesh's CA on its public port.
    process = edge_process.start(
        tmp_path_factory.mktemp("http-edge-limits"),
        edge.gateway_addr,
        edge.certs.client_env("operator"),
    )
    try:
        yield process
    finally:
        process.stop()
