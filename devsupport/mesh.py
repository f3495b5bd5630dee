"""The whole SayIt mesh on free ports, for end-to-end tests and bench: a private Redis, the
scheduler, a direct transcriber, queue transcribers each with a worker beside it, the gateway."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import redis

from devsupport import dev_keys, topology
from devsupport.processes import ServiceProcess, channel, free_port
from services.common import pki as mesh_pki
from services.common import redis_acl
from services.common.tls import ClientTLS


@dataclass
class RedisServer:
    """A redis-server of the test's own on a free port (so tests may kill or restart it).

    With `acl` (the default) it has SayIt's Redis users (services.common.redis_acl), their
    passwords in `directory`/users: `url` and `client()` are the admin's, `url_for(user)` a
    service's."""

    directory: Path
    port: int = field(default_factory=free_port)
    appendonly: bool = False
    maxmemory_mb: int = topology.REDIS_MAXMEMORY_MB
    acl: bool = True
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_for("admin")

    def url_for(self, user: str) -> str:
        if not self.acl:
            return f"redis://127.0.0.1:{self.port}/0"
        return redis_acl.url(user, self.passwords[user], port=self.port)

    @property
    def users_dir(self) -> Path:
        return self.directory / "users"

    @functools.cached_property
    def passwords(self) -> dict[str, str]:
        """user -> password, made on first use and kept in `users_dir` across restarts."""
        return redis_acl.ensure(self.users_dir)

    def denials(self) -> list[dict[str, Any]]:
        """What Redis refused a user (ACL LOG), newest first; [] without ACL or Redis."""
        if not self.acl:
            return []
        try:
            entries: list[dict[str, Any]] = self.client().acl_log()
        except redis.exceptions.RedisError:
            return []
        return entries

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        aclfile = None
        if self.acl:
            assert self.passwords  # written with the ACL file
            aclfile = self.users_dir / redis_acl.ACL_FILE
        self.process = subprocess.Popen(
            [
                binary,
                *topology.redis_args(
                    self.port,
                    self.directory,
                    appendonly=self.appendonly,
                    maxmemory_mb=self.maxmemory_mb,
                    aclfile=aclfile,
                ),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.exceptions.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        """Stop (Redis writes its append-only file on the way down) and start again on the same
        port and data directory."""
        self.stop()
        self.start()


@dataclass
class Mesh:
    directory: Path
    redis: RedisServer
    queue_transcribers: int = 2
    direct_slots: int = 2
    # SAYIT_CPU_THREADS of the direct transcriber and of each queue transcriber.
    direct_threads: int = 1
    queue_threads: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    # Give every process a Prometheus endpoint on a free port (see `metrics_addrs`).
    metrics: bool = False
    # Extra environment of one service only, by process name ("gateway", "scheduler", ...).
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # How the tests reach the gateway's public port when it serves TLS.
    tls: ClientTLS | None = None
    # The gateway requires API keys: a dev tenant's key made in `directory` (`api_key`), unless
    # service_env gives the gateway a keys file of its own. False: SAYIT_AUTH=off.
    api_keys: bool = True
    api_key: str | None = None
    # Mutual TLS with service identities on every internal hop, from a PKI made (or reused) in
    # `directory`/pki; False runs them plaintext with SAYIT_INTERNAL_TLS=off.
    pki: bool = True
    certificates: mesh_pki.Pki | None = None
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    metrics_addrs: dict[str, str] = field(default_factory=dict)

    @property
    def gateway_addr(self) -> str:
        return self.processes["gateway"].addr or ""

    @property
    def scheduler_addr(self) -> str:
        return self.processes["scheduler"].addr or ""

    @property
    def metadata(self) -> list[tuple[str, str]]:
        """Call metadata carrying the dev key (empty when the mesh has none)."""
        return dev_keys.metadata(self.api_key)

    def gateway_channel(self, **options: int) -> grpc.Channel:
        """A channel to the gateway that sends the dev key with every call."""
        return dev_keys.keyed(channel(self.gateway_addr, self.tls, **options), self.api_key)

    def _gateway_auth_env(self) -> dict[str, str]:
        if not self.api_keys:
            return {"SAYIT_AUTH": "off", "SAYIT_API_KEYS_FILE": ""}
        if "SAYIT_API_KEYS_FILE" in {**self.extra_env, **self.service_env.get("gateway", {})}:
            return {"SAYIT_AUTH": "on"}
        keys = dev_keys.ensure(self.directory)
        self.api_key = keys.key
        return {"SAYIT_AUTH": "on", "SAYIT_API_KEYS_FILE": str(keys.keys_file)}

    def tls_as(self, service: str | None) -> ClientTLS | None:
        """How to call an internal service as `service` (a name of services.common.pki; None:
        TLS without a certificate); None when the mesh runs without internal TLS."""
        if self.certificates is None:
            return None
        return self.certificates.client_tls(service)

    def build(self) -> Mesh:
        """The processes of the local mesh (devsupport.topology) on free ports, not started."""
        if self.pki:
            self.certificates = mesh_pki.ensure(self.directory / "pki")

        def free_addr(module: str, pair: int) -> str:
            return f"127.0.0.1:{free_port()}"

        specs = topology.services(
            free_addr,
            free_addr if self.metrics else None,
            queue_pairs=self.queue_transcribers,
            direct_slots=self.direct_slots,
            direct_threads=self.direct_threads,
            queue_threads=self.queue_threads,
            name_workers=True,
            env={
                **self.service_env,
                "gateway": {**self._gateway_auth_env(), **self.service_env.get("gateway", {})},
            },
            pki=self.certificates,
        )
        base = {
            # Metrics endpoints are off unless asked for (never inherited from the shell).
            **dict.fromkeys(topology.METRICS_VARS.values(), ""),
            "SAYIT_WORKER_HEARTBEAT_SECONDS": "2",
            "SAYIT_WORKER_MAINTENANCE_SECONDS": "3",
            "SAYIT_RECONCILE_SECONDS": "2",
            "SAYIT_SHUTDOWN_GRACE_SECONDS": "10",
            # Tests send the same clips again and again: no result cache or in-flight sharing
            # unless a test is about them (it sets the TTL in extra_env).
            "SAYIT_RESULT_CACHE_TTL_SECONDS": "0",
            **self.extra_env,
        }
        for spec in specs:
            if spec.metrics_addr:
                self.metrics_addrs[spec.name] = spec.metrics_addr
            # Each service its own Redis user (redis_acl), unless the test points it elsewhere.
            user = topology.REDIS_USERS.get(spec.module)
            own = {"SAYIT_REDIS_URL": self.redis.url_for(user)} if user else {}
            self.processes[spec.name] = ServiceProcess(
                spec.module,
                {**own, **base, **spec.env},
                self.directory / f"{spec.name}.log",
                addr=spec.addr,
                # Health checks: the gateway as a public caller, the rest as an operator.
                tls=self.tls if spec.module == topology.GATEWAY else self.tls_as("operator"),
            )
        return self

    def start(self) -> Mesh:
        for process in self.processes.values():
            process.start()
        for process in self.processes.values():
            if process.addr:
                process.wait_serving()
        self.wait_workers()
        self.wait_metrics()
        return self

    def wait_metrics(self, *names: str, timeout: float = 30.0) -> None:
        """Until the metrics endpoints of `names` (default: every live process that has one)
        answer: a worker, started or restarted, registers with RQ before its endpoint is up, and
        a test that scrapes right after a restart would find nobody there."""
        wanted = names or tuple(n for n in self.metrics_addrs if self.processes[n].alive())
        deadline = time.monotonic() + timeout
        for name in wanted:
            url = f"http://{self.metrics_addrs[name]}/metrics"
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=2):
                        break
                except (urllib.error.URLError, OSError) as error:
                    if time.monotonic() > deadline:
                        message = f"{name}'s metrics endpoint {url} never answered"
                        raise TimeoutError(message) from error
                    time.sleep(0.1)

    def wait_workers(self, timeout: float = 60.0) -> None:
        """Until every live worker process has registered with RQ (as `<process name>.<suffix>`,
        a new name each time it starts)."""
        names = {
            name for name, p in self.processes.items() if name.startswith("worker") and p.alive()
        }
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.rq_worker(name) for name in names):
                return
            time.sleep(0.1)
        raise TimeoutError(f"workers {names} did not register with RQ")

    def rq_worker(self, name: str) -> str | None:
        """The RQ name of worker process `name`'s current registration (None if none)."""
        from rq import Worker

        pid = self.processes[name].pid
        for worker in Worker.all(connection=self.redis.client()):
            if worker.name.startswith(f"{name}.") and worker.pid == pid:
                return str(worker.name)
        return None

    def queue_of(self, job_name: str) -> str:
        """The RQ queue a job went to, from its record (the public API does not name queues)."""
        value = self.redis.client().hget(f"sayit:job:{job_name.removeprefix('jobs/')}", "queue")
        return value.decode() if isinstance(value, bytes) else str(value or "")

    @staticmethod
    def process_of(rq_worker_name: str) -> str:
        """The worker process an RQ worker name belongs to ("worker-q1.3fa2c1" -> "worker-q1")."""
        return rq_worker_name.split(".", 1)[0]

    def restart(self, name: str) -> None:
        process = self.processes[name]
        process.kill()
        process.start()
        if process.addr:
            process.wait_serving()
        if name.startswith("worker"):
            self.wait_workers()
        if name in self.metrics_addrs:
            self.wait_metrics(name)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop(timeout=20)

    def logs(self, name: str) -> str:
        return self.processes[name].log_path.read_text(errors="replace")

    def log_events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines of a process (others skipped)."""
        events = []
        for line in self.logs(name).splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return events


@contextmanager
def running(directory: Path, **mesh_options: Any) -> Iterator[Mesh]:
    """A private Redis in `directory` and a mesh on it (`Mesh` options), started; both are
    stopped on the way out, also when starting fails half-way. A mesh whose services Redis
    refused a command or key (ACL LOG) fails on the way out: their users' rules miss something."""
    redis_server = RedisServer(directory / "redis").start()
    mesh = Mesh(directory, redis_server, **mesh_options)
    try:
        yield mesh.build().start()
    finally:
        denied = stop(mesh, redis_server)
    if denied:
        raise AssertionError(f"Redis refused the services (ACL LOG): {denied}")


def stop(mesh: Mesh, redis_server: RedisServer) -> list[dict[str, Any]]:
    """Stop the mesh, then its Redis; what Redis refused the services meanwhile (ACL LOG), so
    a caller can fail a mesh whose users' rules miss a command or key its code needs."""
    mesh.stop()
    denied = redis_server.denials()
    redis_server.stop()
    return denied
