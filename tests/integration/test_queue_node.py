"""`python -m services.worker.node` (Compose's transcriber + worker container): both children
come up, the worker registers with RQ, and SIGTERM stops both and the node exits 0."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from rq import Worker

from devsupport.mesh import RedisServer
from devsupport.processes import ServiceProcess, free_port
from services.common import pki

pytestmark = pytest.mark.model


def test_queue_node_runs_and_stops_both_children(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    addr = f"127.0.0.1:{free_port()}"
    certs = pki.ensure(tmp_path / "pki")
    node = ServiceProcess(
        "services.worker.node",
        {
            "SAYIT_REDIS_URL": redis.url_for("worker"),
            "SAYIT_TRANSCRIBER_ADDR": addr,
            "SAYIT_TRANSCRIBER_METRICS_ADDR": "",
            "SAYIT_WORKER_METRICS_ADDR": "",
            "SAYIT_WORKER_NAME": "node-worker",
            "SAYIT_CPU_THREADS": "1",
            "SAYIT_SHUTDOWN_GRACE_SECONDS": "5",
            # One environment for both children: the transcriber serves with its certificate,
            # the worker calls it with its own (SAYIT_TLS_CLIENT_*).
            **certs.server_env("transcriber"),
            **certs.client_env("worker"),
        },
        tmp_path / "node.log",
        addr=addr,
        tls=certs.client_tls("operator"),
    ).start()
    try:
        node.wait_serving()
        deadline = time.monotonic() + 60
        # Registered under its name plus a suffix of its own (a new one each start).
        while not any(
            w.name.startswith("node-worker.") for w in Worker.all(connection=redis.client())
        ):
            assert time.monotonic() < deadline, node.log_tail()
            time.sleep(0.2)
        node.signal(signal.SIGTERM)
        assert node.process is not None
        assert node.process.wait(60) == 0, node.log_tail()
        log = node.log_path.read_text()
        assert '"worker_stopped"' in log and '"shutdown_finished"' in log
        assert not {w.name for w in Worker.all(connection=redis.client())}
        assert redis.denials() == []  # its Redis user let it do all of that
    finally:
        node.kill()
        redis.stop()
