"""`make up` / `make down` / `make status`: the SayIt services in the background.

Pid files and logs go under .run/. `up` returns once every service reports SERVING, and is a
no-op for services already running. Addresses come from the same SAYIT_* variables the services
read, so `make up` and the services always agree.

Redis must keep queued jobs, job records and results across a restart, so it runs with
append-only persistence (`--appendonly yes --appendfsync everysec`, data in .run/redis/). It is
always `up`'s own, locked with SayIt's ACL users (services.common.redis_acl; passwords in
.run/redis-users/, made on first start): each service gets its user in SAYIT_REDIS_URL, and a
shared Redis would have none of them. It listens on SAYIT_REDIS_URL's port when that is on this
machine and free, else on SAYIT_MESH_REDIS_PORT. The admin's URL (for bench and tools) is kept
in .run/redis.url (0600).

Every internal hop is mutual TLS with service identities: `up` makes a CA and one certificate
per service in .run/pki/ on first start (services.common.pki; reused while valid) and gives each
process its own. The gateway's public port stays plaintext unless SAYIT_TLS_CERT_FILE is set;
health checks of the internal services present the `operator` certificate.

The HTTP edge (services.http_edge, on SAYIT_HTTP_ADDR) starts last, in front of the gateway: it
calls the gateway's public port as any caller does (plaintext, or TLS with SAYIT_TLS_CA_FILE...
when the gateway serves TLS), and is ready when its /readyz answers 200.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import redis

from devsupport import dev_keys, http_edge, topology
from devsupport.settings import MeshSettings
from services.common import pki, redis_acl
from services.common.errors import ConfigError
from services.common.healthcheck import check
from services.common.redact import hide_password
from services.common.tls import ClientTLS

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"
START_TIMEOUT = 180.0
PKI = pki.Pki(RUN / "pki")
# Addresses and Prometheus endpoints come from MeshSettings (devsupport/settings.py): queue
# transcriber n serves on the transcriber ports + n, queue worker n on the worker's + n - 1; an
# empty SAYIT_*_METRICS_ADDR turns that endpoint off. Health checks speak TLS when the services
# do (SAYIT_TLS_CA_FILE, SAYIT_TLS_CLIENT_CERT_FILE...).


@dataclass(frozen=True)
class Proc:
    name: str
    module: str  # python -m <module>; empty when `command` is given
    addr: str | None = None  # gRPC address to health-check; None for non-gRPC processes
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    http_url: str | None = None  # an HTTP server's base URL, ready when its /readyz answers 200

    def argv(self) -> list[str]:
        return list(self.command) if self.command else [sys.executable, "-m", self.module]


def settings() -> MeshSettings:
    """The settings in this process's environment (ConfigError names a bad variable)."""
    return MeshSettings.from_env(os.environ)


def _port_plus(addr: str, offset: int) -> str:
    host, port = addr.rsplit(":", 1)
    return f"{host}:{int(port) + offset}"


def _grpc_addr(mesh: MeshSettings, module: str, pair: int) -> str:
    """A service's fixed address from its SAYIT_* variable (queue pair n: the port + n)."""
    addr = mesh.listen_addr(module)
    return _port_plus(addr, pair) if pair else addr


def _metrics_addr(mesh: MeshSettings, module: str, pair: int) -> str:
    """A process's metrics endpoint: its variable's address + the queue pair's offset ("" = off)."""
    addr = mesh.metrics_addr(module)
    if not addr:
        return ""
    return _port_plus(addr, pair - 1 if module == topology.WORKER else pair)


REDIS_URL_FILE = RUN / "redis.url"
REDIS_USERS_DIR = RUN / "redis-users"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class RedisChoice:
    """`make up`'s own Redis: where it listens, and each user's SAYIT_REDIS_URL for it."""

    port: int
    passwords: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    note: str = ""

    def url_for(self, user: str) -> str:
        return redis_acl.url(user, self.passwords[user], port=self.port)

    @property
    def url(self) -> str:
        """The admin's URL: bench and tools read everything."""
        return self.url_for("admin")


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.exceptions.RedisError:
        return False


def _port_taken(port: int) -> bool:
    try:
        redis.Redis(port=port, socket_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return False
    except redis.exceptions.RedisError:
        return True  # something answered (and wanted a password)
    return True


def choose_redis(mesh: MeshSettings) -> RedisChoice:
    passwords = redis_acl.ensure(REDIS_USERS_DIR, mesh.redis_prefix)
    if REDIS_URL_FILE.exists() and (RUN / "redis.pid").exists():
        port = urlparse(REDIS_URL_FILE.read_text().strip()).port or 6379
        return RedisChoice(port, passwords)
    parsed = urlparse(mesh.redis_url)
    port = parsed.port or 6379
    if parsed.hostname in LOCAL_HOSTS and not _port_taken(port):
        return RedisChoice(port, passwords)
    note = (
        f"make up runs its own Redis (with SayIt's ACL users), on port {mesh.mesh_redis_port}: "
        f"{hide_password(mesh.redis_url)} is taken or not on this machine"
    )
    return RedisChoice(mesh.mesh_redis_port, passwords, note)


def processes(choice: RedisChoice | None = None, mesh: MeshSettings | None = None) -> list[Proc]:
    """The whole mesh on one machine (devsupport.topology) on make up's fixed ports: Redis, a
    direct transcriber, queue transcribers each with a worker beside it, scheduler, gateway."""
    mesh = mesh or settings()
    choice = choice or choose_redis(mesh)
    procs = []
    args = topology.redis_args(
        choice.port,
        RUN / "redis",
        maxmemory_mb=mesh.mesh_redis_maxmemory_mb,
        aclfile=REDIS_USERS_DIR / redis_acl.ACL_FILE,
    )
    procs.append(Proc("redis", "", command=("redis-server", *args)))
    services = topology.services(
        lambda module, pair: _grpc_addr(mesh, module, pair),
        lambda module, pair: _metrics_addr(mesh, module, pair),
        queue_pairs=mesh.mesh_queue_transcribers,
        direct_slots=2,
        pki=PKI,
    )
    for s in services:
        # Each service logs in to Redis as its own user (services.common.redis_acl).
        user = topology.REDIS_USERS.get(s.module)
        own = {"SAYIT_REDIS_URL": choice.url_for(user)} if user else {}
        procs.append(Proc(s.name, s.module, s.addr, {**s.env, **own}))
    procs.append(_http_edge(mesh))
    return procs


def _http_edge(mesh: MeshSettings) -> Proc:
    """The HTTP edge in front of the gateway's public port (it inherits SAYIT_TLS_CA_FILE...
    from this environment, as `make status` does to check the gateway)."""
    gateway = http_edge.dial_addr(_grpc_addr(mesh, topology.GATEWAY, 0))
    env = {
        **http_edge.own_env(mesh.http_addr, gateway),
        "SAYIT_HTTP_METRICS_ADDR": mesh.http_metrics_addr,
    }
    url = f"http://{http_edge.dial_addr(mesh.http_addr)}"
    return Proc(http_edge.NAME, http_edge.MODULE, env=env, http_url=url)


def _state(proc: Proc, mesh: MeshSettings) -> str:
    """A running process's health: SERVING... from its gRPC health check, its /readyz for the
    HTTP edge, "running" for a process with neither."""
    if proc.http_url:
        return "SERVING" if http_edge.ready(proc.http_url, timeout=1.0) else "NOT_SERVING"
    if proc.addr:
        return check(proc.addr, timeout=1.0, tls=_health_tls(proc, mesh))
    return "running"


def _health_tls(proc: Proc, mesh: MeshSettings) -> ClientTLS | None:
    """How to health-check a process: the gateway as a public caller (SAYIT_TLS_CA_FILE...),
    the internal services as an operator."""
    if proc.module == topology.GATEWAY or not PKI.ca_cert.exists():
        return mesh.client_tls
    return PKI.client_tls("operator")


def _pid(proc: Proc) -> int | None:
    try:
        pid = int((RUN / f"{proc.name}.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def gateway_keys(mesh: MeshSettings) -> dict[str, str]:
    """The gateway requires API keys: the dev tenant's (made in .run/ on first start, reused
    after), unless SAYIT_API_KEYS_FILE names other keys or SAYIT_AUTH=off (both inherited)."""
    if mesh.api_keys_file is not None or mesh.auth == "off":
        return {}
    keys = dev_keys.ensure(RUN)
    if keys.key:
        print(f"API key of tenant {dev_keys.TENANT!r}: .run/{dev_keys.KEY_FILE}")
    return {"SAYIT_API_KEYS_FILE": str(keys.keys_file)}


def up(mesh: MeshSettings) -> int:
    (RUN / "redis").mkdir(parents=True, exist_ok=True)
    choice = choose_redis(mesh)
    own_env = {"gateway": gateway_keys(mesh)}
    if choice.note:
        print(choice.note)
    redis_acl.write_secret(REDIS_URL_FILE, choice.url)
    pki.ensure(PKI.directory)
    started = []
    procs = processes(choice, mesh)
    for proc in procs:
        if _pid(proc):
            continue
        log = open(RUN / f"{proc.name}.log", "ab")  # noqa: SIM115 (the child keeps it)
        child = subprocess.Popen(
            proc.argv(),
            cwd=ROOT,
            env={**os.environ, **proc.env, **own_env.get(proc.name, {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        (RUN / f"{proc.name}.pid").write_text(str(child.pid))
        started.append(proc.name)
    if started:
        print(f"started: {', '.join(started)} (logs in .run/)")
    deadline = time.monotonic() + START_TIMEOUT
    for proc in procs:
        while proc.name == "redis" and not _redis_answers(choice.url):
            if not _pid(proc) or time.monotonic() > deadline:
                print("redis did not start; last lines of .run/redis.log:", file=sys.stderr)
                print(_tail(RUN / "redis.log"), file=sys.stderr)
                return 1
            time.sleep(0.1)
        while (proc.addr or proc.http_url) and _state(proc, mesh) != "SERVING":
            if not _pid(proc):
                print(f"{proc.name} exited; last lines of .run/{proc.name}.log:", file=sys.stderr)
                print(_tail(RUN / f"{proc.name}.log"), file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                print(f"{proc.name} not SERVING after {START_TIMEOUT:.0f}s", file=sys.stderr)
                return 1
            time.sleep(0.2)
    return status(mesh)


def down(mesh: MeshSettings) -> int:
    """SIGTERM each service (its main process only, as an orchestrator does: a queue worker
    then finishes its current job before exiting), SIGKILL what outlives the grace period."""
    procs = [p for p in reversed(processes(mesh=mesh)) if _pid(p)]
    for proc in procs:
        pid = _pid(proc)
        if pid:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + mesh.shutdown_grace_seconds + 15
    for proc in procs:
        while _pid(proc) and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = _pid(proc)
        if pid:
            os.killpg(pid, signal.SIGKILL)
        (RUN / f"{proc.name}.pid").unlink(missing_ok=True)
        print(f"stopped {proc.name}")
    REDIS_URL_FILE.unlink(missing_ok=True)
    return 0


def status(mesh: MeshSettings) -> int:
    worst = 0
    choice = choose_redis(mesh)
    users = f"ACL users in {REDIS_USERS_DIR.relative_to(ROOT)}/"
    print(f"  redis: {hide_password(choice.url)} (run by make up, AOF, {users})")
    for proc in processes(choice, mesh):
        pid = _pid(proc)
        state = "stopped"
        if pid:
            state = _state(proc, mesh)
        where = f" on {proc.addr or proc.http_url}" if proc.addr or proc.http_url else ""
        scrape = next((v for k, v in proc.env.items() if k.endswith("_METRICS_ADDR") and v), "")
        where += f", metrics http://{scrape}/metrics" if scrape else ""
        print(f"  {proc.name:<20} {state:<12} pid {pid or '-'}{where}")
        worst = worst or int(state not in ("SERVING", "running"))
    return worst


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "status"
    actions = {"up": up, "down": down, "status": status}
    if command not in actions:
        sys.exit(f"usage: python -m scripts.mesh {{{'|'.join(actions)}}}")
    try:
        mesh = settings()
    except ConfigError as error:
        print(f"make {command}: bad configuration: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(actions[command](mesh))
