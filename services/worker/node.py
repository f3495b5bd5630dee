"""python -m services.worker.node — a transcriber and its queue worker in one container.

Kubernetes runs the pair as two containers of one pod (deploy/kubernetes). Docker Compose
cannot scale a pair of services that must share a network namespace, so for Compose one
container runs both as children of this process: SIGTERM/SIGINT go to both (the worker finishes
its current job, the transcriber drains), and when either child exits the other is stopped and
the node exits with the first one's code, so the container restarts as a whole.

Both children read the same environment: SAYIT_TRANSCRIBER_ADDR is where the transcriber
listens and where the worker calls it (keep it on loopback, e.g. 127.0.0.1:50053).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

CHILDREN = ("services.transcriber", "services.worker")
STOP_WAIT_SECONDS = 3600.0  # the container runtime's own grace period ends it sooner


def main() -> int:
    children = [subprocess.Popen([sys.executable, "-m", module]) for module in CHILDREN]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        for child in children:
            code = child.poll()
            if code is not None:
                return _stop_rest(children, code)
        time.sleep(0.5)


def _stop_rest(children: list[subprocess.Popen[bytes]], code: int) -> int:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
