"""The worker's view of its transcriber (a watcher subprocess polling gRPC health, and a TCP
connect), against a real transcriber process."""

from __future__ import annotations

import time

from devsupport import processes
from services.worker.transcriber_watch import SERVING, TranscriberMonitor


def test_a_serving_transcriber_is_seen_serving(transcriber: processes.ServiceProcess) -> None:
    monitor = TranscriberMonitor(transcriber.addr or "")
    try:
        assert monitor.wait_serving(15.0)
        assert monitor.status == SERVING and monitor.listening() and monitor.serving()
        started = time.monotonic()
        assert monitor.refresh() == SERVING
        assert time.monotonic() - started < 3.0  # two fresh polls, not a long wait
    finally:
        monitor.close()


def test_nothing_listening_is_not_serving() -> None:
    addr = f"127.0.0.1:{processes.free_port()}"
    monitor = TranscriberMonitor(addr)
    try:
        assert not monitor.listening()
        assert not monitor.wait_serving(2.0)
        assert monitor.status.startswith("UNREACHABLE")
        assert not monitor.serving()
    finally:
        monitor.close()
