"""What the mesh `make up` runs is holding: memory per service and Redis connections.

Memory is VmRSS of each process in .run/*.pid plus its children (a queue worker's work horse).
Redis connections come from Redis itself (INFO clients, CLIENT LIST grouped by client name) and
are matched to services through the sockets each process has open (/proc/<pid>/fd against
/proc/net/tcp), since the services do not name their connections. Linux only.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis

from bench import procmem

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"


def service_pids(run: Path = RUN) -> dict[str, int]:
    """Service name -> pid for every live process `make up` recorded (Redis included)."""
    pids: dict[str, int] = {}
    for pid_file in sorted(run.glob("*.pid")):
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, 0)
        except (ValueError, OSError):
            continue
        pids[pid_file.stem] = pid
    return pids


def family(pid: int) -> list[int]:
    """The process and its children (one level: a worker's work horse)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return pids


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, in MiB (0 for a process gone)."""
    total = 0.0
    for one in family(pid):
        try:
            total += procmem.read(one).rss_mib
        except (OSError, ValueError):
            continue
    return total


def memory_by_service(run: Path = RUN) -> dict[str, float]:
    return {name: rss_mib(pid) for name, pid in service_pids(run).items()}


def redis_url(run: Path = RUN) -> str:
    """The admin's URL of `make up`'s Redis (.run/redis.url), else SAYIT_REDIS_URL."""
    chosen = run / "redis.url"
    if chosen.exists():
        return chosen.read_text().strip()
    return os.environ.get("SAYIT_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class RedisConnections:
    connected_clients: int  # INFO clients, this probe's own connection included
    by_name: Counter[str]  # CLIENT LIST grouped by client name ("(unnamed)" when unset)
    by_service: Counter[str]  # matched through /proc; "(other)" for the rest


def socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    for one in family(pid):
        try:
            links = os.listdir(f"/proc/{one}/fd")
        except OSError:
            continue
        for fd in links:
            try:
                target = os.readlink(f"/proc/{one}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def local_ports_to_inodes(redis_port: int) -> dict[int, str]:
    """Local port -> socket inode of every TCP connection to `redis_port` on this machine."""
    found: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(remote.rsplit(":", 1)[1], 16) == redis_port:
                found[int(local.rsplit(":", 1)[1], 16)] = inode
    return found


def redis_connections(url: str, pids: dict[str, int]) -> RedisConnections:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        connected = int(client.info("clients")["connected_clients"])
        listed = client.client_list()
    finally:
        client.close()
    by_name = Counter(entry.get("name") or "(unnamed)" for entry in listed)
    port = urlparse(url).port or 6379
    inode_of_port = local_ports_to_inodes(port)
    owner = {inode: name for name, pid in pids.items() for inode in socket_inodes(pid)}
    by_service: Counter[str] = Counter()
    for entry in listed:
        local_port = int(str(entry.get("addr", ":0")).rsplit(":", 1)[1])
        by_service[owner.get(inode_of_port.get(local_port, ""), "(other)")] += 1
    return RedisConnections(connected, by_name, by_service)


def print_memory(title: str, run: Path = RUN) -> None:
    print(title)
    memory = memory_by_service(run)
    if not memory:
        print("  (no live services in .run/: is `make up` running?)")
    for name, mib in memory.items():
        print(f"  {name:<20} {mib:8.0f} MiB")
