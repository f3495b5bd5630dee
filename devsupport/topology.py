"""The local SayIt mesh, described once for `make up` (fixed ports, scripts/mesh.py) and for tests
and bench (free ports, devsupport/mesh.py): a private Redis; a direct transcriber with N slots;
queue transcribers of one slot, each with a queue worker beside it; the scheduler pointing at the
direct transcriber; the gateway pointing at the scheduler.

Where the processes listen is the caller's: it hands in how to allocate an address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.pki import Pki

GATEWAY = "services.gateway"
SCHEDULER = "services.scheduler"
TRANSCRIBER = "services.transcriber"
WORKER = "services.worker"  # the RQ queue worker beside each queue transcriber

# The variable each service reads its Prometheus endpoint from ("" turns the endpoint off).
METRICS_VARS = {
    GATEWAY: "SAYIT_GATEWAY_METRICS_ADDR",
    SCHEDULER: "SAYIT_SCHEDULER_METRICS_ADDR",
    TRANSCRIBER: "SAYIT_TRANSCRIBER_METRICS_ADDR",
    WORKER: "SAYIT_WORKER_METRICS_ADDR",
}

# The certificate (services.common.pki) each module's processes present.
IDENTITIES = {
    GATEWAY: "gateway",
    SCHEDULER: "scheduler",
    TRANSCRIBER: "transcriber",
    WORKER: "worker",
}
# The servers only other services call: mutual TLS with an identity check.
INTERNAL_SERVERS = (SCHEDULER, TRANSCRIBER)


def tls_env(pki: Pki | None, module: str) -> dict[str, str]:
    """The SAYIT_TLS_* of a module's processes: the internal servers serve mutual TLS with
    their service's certificate; the gateway (whose public port stays as configured) and the
    workers call with theirs. No PKI: internal TLS explicitly off."""
    if pki is None:
        return {"SAYIT_INTERNAL_TLS": "off"} if module in INTERNAL_SERVERS else {}
    service = IDENTITIES[module]
    if module in INTERNAL_SERVERS:
        return pki.server_env(service)
    return pki.client_env(service)


# An address for the process of a module (GATEWAY ...) in queue pair `pair`: 1..queue_pairs for
# the queue transcribers and their workers, 0 for the direct transcriber, scheduler and gateway.
Allocate = Callable[[str, int], str]


@dataclass(frozen=True)
class ProcessSpec:
    """One process of the mesh: `python -m <module>` with `env` on top of what it inherits."""

    name: str  # "transcriber-direct", "transcriber-q1", "worker-q1", "scheduler", "gateway"
    module: str
    addr: str | None  # its gRPC address (to health-check); None for the queue workers
    env: dict[str, str]
    metrics_addr: str = ""  # its Prometheus endpoint; "" when off or not allocated


def services(
    address: Allocate,
    metrics: Allocate | None = None,
    *,
    queue_pairs: int = 2,
    direct_slots: int = 2,
    direct_threads: int = 1,
    queue_threads: int = 1,
    name_workers: bool = False,
    env: Mapping[str, Mapping[str, str]] | None = None,
    pki: Pki | None = None,
) -> list[ProcessSpec]:
    """The mesh's service processes in start order (Redis is `redis_args`).

    `metrics` gives each process its Prometheus endpoint ("" = off); None says nothing about
    endpoints (the process inherits its setting). `name_workers` names each queue worker after
    its process (tests find them in RQ by name; otherwise RQ picks the name). `env` adds
    environment by process name, over the topology's own. `pki` gives every process its
    certificate (`tls_env`); None runs the mesh without internal TLS.
    """
    extra = env or {}
    specs: list[ProcessSpec] = []

    def add(name: str, module: str, pair: int, addr: str | None, own: dict[str, str]) -> None:
        metrics_addr = ""
        if metrics is not None:
            metrics_addr = metrics(module, pair)
            own[METRICS_VARS[module]] = metrics_addr
        own = {**tls_env(pki, module), **own, **extra.get(name, {})}
        specs.append(ProcessSpec(name, module, addr, own, metrics_addr))

    direct = address(TRANSCRIBER, 0)
    add(
        "transcriber-direct",
        TRANSCRIBER,
        0,
        direct,
        {
            "SAYIT_TRANSCRIBER_ADDR": direct,
            "SAYIT_TRANSCRIBER_SLOTS": str(direct_slots),
            "SAYIT_CPU_THREADS": str(direct_threads),
        },
    )
    for n in range(1, queue_pairs + 1):
        queued = address(TRANSCRIBER, n)
        add(
            f"transcriber-q{n}",
            TRANSCRIBER,
            n,
            queued,
            {
                "SAYIT_TRANSCRIBER_ADDR": queued,
                "SAYIT_TRANSCRIBER_SLOTS": "1",
                "SAYIT_CPU_THREADS": str(queue_threads),
            },
        )
        worker = {"SAYIT_TRANSCRIBER_ADDR": queued}
        if name_workers:
            worker["SAYIT_WORKER_NAME"] = f"worker-q{n}"
        add(f"worker-q{n}", WORKER, n, None, worker)
    scheduler = address(SCHEDULER, 0)
    add(
        "scheduler",
        SCHEDULER,
        0,
        scheduler,
        {
            "SAYIT_SCHEDULER_ADDR": scheduler,
            "SAYIT_TRANSCRIBER_ADDR": direct,
            "SAYIT_DIRECT_SLOTS": str(direct_slots),
        },
    )
    gateway = address(GATEWAY, 0)
    add(
        "gateway",
        GATEWAY,
        0,
        gateway,
        {"SAYIT_GATEWAY_ADDR": gateway, "SAYIT_SCHEDULER_ADDR": scheduler},
    )
    return specs


# The Redis user of each service that talks to Redis (services.common.redis_acl).
REDIS_USERS = {GATEWAY: "gateway", SCHEDULER: "scheduler", WORKER: "worker"}

# Redis holds every queued file until it is transcribed; bounded, it refuses writes when full
# (noeviction: evicting a job's record or audio would lose it silently) and the scheduler turns
# that into RESOURCE_EXHAUSTED. The tests' and bench's private Redis get this much.
REDIS_MAXMEMORY_MB = 1024


def redis_args(
    port: int,
    directory: Path,
    *,
    appendonly: bool = True,
    maxmemory_mb: int = REDIS_MAXMEMORY_MB,
    aclfile: Path | None = None,
) -> list[str]:
    """The arguments of a private redis-server on loopback with its data in `directory`: no RDB
    snapshots, an append-only file written every second when `appendonly`, and at most
    `maxmemory_mb` MiB of data, never evicted (a full Redis refuses writes instead); with
    `aclfile`, only its users get in (services.common.redis_acl)."""
    return [
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--maxmemory",
        f"{maxmemory_mb}mb",
        "--maxmemory-policy",
        "noeviction",
        "--protected-mode",
        "yes",
        *(["--aclfile", str(aclfile)] if aclfile else []),
    ]
