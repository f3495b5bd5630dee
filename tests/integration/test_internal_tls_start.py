"""The scheduler and a transcriber refuse to start without mutual TLS unless SAYIT_INTERNAL_TLS
is off, which they then say loudly in their logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devsupport.mesh import RedisServer
from devsupport.processes import ROOT, ServiceProcess, free_port, health_status

REFUSAL = "bad configuration: SAYIT_INTERNAL_TLS is on (the default): set SAYIT_TLS_CERT_FILE"


def plain_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYIT_")}
    return {**env, **extra}


@pytest.mark.parametrize("service", ["scheduler", "transcriber"])
def test_no_tls_no_start(service: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        env=plain_env(**{f"SAYIT_{service.upper()}_ADDR": f"127.0.0.1:{free_port()}"}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"{service}: {REFUSAL}"), result.stderr


def warnings_of(log: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "internal_tls_off"]


def test_a_scheduler_with_internal_tls_off_starts_and_says_so(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    addr = f"127.0.0.1:{free_port()}"
    scheduler = ServiceProcess(
        "services.scheduler",
        {
            "SAYIT_INTERNAL_TLS": "off",
            "SAYIT_SCHEDULER_ADDR": addr,
            "SAYIT_SCHEDULER_METRICS_ADDR": "",
            "SAYIT_REDIS_URL": redis_server.url,
            "SAYIT_REDIS_PREFIX": "tlsoff",
        },
        tmp_path / "scheduler.log",
        addr=addr,
    ).start()
    try:
        scheduler.wait_serving(60)
        assert health_status(addr) == 1  # plaintext, as asked
        [warning] = warnings_of(scheduler.log_path)
        assert warning["level"] == "warning"
        assert "accepts any caller" in str(warning["reason"])
    finally:
        assert scheduler.stop() == 0


def test_the_plaintext_test_transcriber_says_so(transcriber: ServiceProcess) -> None:
    # The session's standalone transcriber runs with SAYIT_INTERNAL_TLS=off (devsupport.processes).
    [warning] = warnings_of(transcriber.log_path)
    assert warning["level"] == "warning"
