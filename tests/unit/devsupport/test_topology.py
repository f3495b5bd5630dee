"""devsupport.topology: the one description of the local mesh, as tests (free ports) and
`make up` (fixed ports, scripts/mesh.py) allocate it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from devsupport import topology
from scripts import mesh as make_up


def counting(start: int) -> topology.Allocate:
    ports = itertools.count(start)
    return lambda module, pair: f"127.0.0.1:{next(ports)}"


def by_name(specs: list[topology.ProcessSpec]) -> dict[str, topology.ProcessSpec]:
    return {spec.name: spec for spec in specs}


def test_processes_in_start_order_and_who_points_at_whom() -> None:
    specs = topology.services(counting(20000), queue_pairs=2, direct_slots=3)
    assert [(s.name, s.module) for s in specs] == [
        ("transcriber-direct", "services.transcriber"),
        ("transcriber-q1", "services.transcriber"),
        ("worker-q1", "services.worker"),
        ("transcriber-q2", "services.transcriber"),
        ("worker-q2", "services.worker"),
        ("scheduler", "services.scheduler"),
        ("gateway", "services.gateway"),
    ]
    p = by_name(specs)
    assert p["worker-q1"].addr is None and p["worker-q2"].addr is None
    for name in ("transcriber-direct", "transcriber-q1", "transcriber-q2"):
        assert p[name].env["SAYIT_TRANSCRIBER_ADDR"] == p[name].addr
    assert p["worker-q1"].env["SAYIT_TRANSCRIBER_ADDR"] == p["transcriber-q1"].addr
    assert p["worker-q2"].env["SAYIT_TRANSCRIBER_ADDR"] == p["transcriber-q2"].addr
    assert p["scheduler"].env["SAYIT_TRANSCRIBER_ADDR"] == p["transcriber-direct"].addr
    assert p["scheduler"].env["SAYIT_SCHEDULER_ADDR"] == p["scheduler"].addr
    assert p["gateway"].env["SAYIT_SCHEDULER_ADDR"] == p["scheduler"].addr
    assert p["gateway"].env["SAYIT_GATEWAY_ADDR"] == p["gateway"].addr
    assert p["transcriber-direct"].env["SAYIT_TRANSCRIBER_SLOTS"] == "3"
    assert p["scheduler"].env["SAYIT_DIRECT_SLOTS"] == "3"
    assert p["transcriber-q1"].env["SAYIT_TRANSCRIBER_SLOTS"] == "1"
    assert len({s.addr for s in specs if s.addr}) == 5


def test_metrics_endpoints_only_when_allocated() -> None:
    silent = topology.services(counting(20000), queue_pairs=1)
    assert all(s.metrics_addr == "" for s in silent)
    assert not any(k.endswith("_METRICS_ADDR") for s in silent for k in s.env)
    served = by_name(topology.services(counting(20000), counting(21000), queue_pairs=1))
    assert served["worker-q1"].env["SAYIT_WORKER_METRICS_ADDR"] == served["worker-q1"].metrics_addr
    assert served["gateway"].env["SAYIT_GATEWAY_METRICS_ADDR"] == served["gateway"].metrics_addr
    off = topology.services(counting(20000), lambda module, pair: "", queue_pairs=1)
    assert all(s.metrics_addr == "" for s in off)
    assert by_name(off)["scheduler"].env["SAYIT_SCHEDULER_METRICS_ADDR"] == ""


def test_threads_worker_names_and_extra_env() -> None:
    p = by_name(
        topology.services(
            counting(20000),
            queue_pairs=1,
            direct_threads=4,
            queue_threads=2,
            name_workers=True,
            env={"gateway": {"SAYIT_API_KEYS_FILE": "/keys"}, "worker-q1": {"SAYIT_X": "y"}},
        )
    )
    assert p["transcriber-direct"].env["SAYIT_CPU_THREADS"] == "4"
    assert p["transcriber-q1"].env["SAYIT_CPU_THREADS"] == "2"
    assert p["worker-q1"].env["SAYIT_WORKER_NAME"] == "worker-q1"
    assert p["worker-q1"].env["SAYIT_X"] == "y"
    assert p["gateway"].env["SAYIT_API_KEYS_FILE"] == "/keys"
    unnamed = by_name(topology.services(counting(20000), queue_pairs=1))
    assert "SAYIT_WORKER_NAME" not in unnamed["worker-q1"].env


def test_redis_args() -> None:
    args = topology.redis_args(6390, Path("/data"), appendonly=False, aclfile=Path("/u/users.acl"))
    assert args[:6] == ["--port", "6390", "--bind", "127.0.0.1", "--dir", "/data"]
    assert args[args.index("--protected-mode") + 1] == "yes"
    assert args[args.index("--aclfile") + 1] == "/u/users.acl"
    assert "--aclfile" not in topology.redis_args(6390, Path("/data"))
    assert args[args.index("--appendonly") + 1] == "no"
    assert args[args.index("--save") + 1] == ""
    assert args[args.index("--maxmemory") + 1] == "1024mb"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"


def test_make_up_ports_and_metrics_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*topology.METRICS_VARS.values(), "SAYIT_MESH_QUEUE_TRANSCRIBERS"):
        monkeypatch.delenv(var, raising=False)
    for var in (
        "SAYIT_GATEWAY_ADDR",
        "SAYIT_SCHEDULER_ADDR",
        "SAYIT_TRANSCRIBER_ADDR",
        "SAYIT_HTTP_ADDR",
        "SAYIT_HTTP_METRICS_ADDR",
    ):
        monkeypatch.delenv(var, raising=False)
    passwords = {user: f"pw-{user}" for user in ("gateway", "scheduler", "worker", "admin")}
    procs = make_up.processes(make_up.RedisChoice(6390, passwords))
    assert procs[0].name == "redis" and procs[0].argv()[:3] == ["redis-server", "--port", "6390"]
    assert "--aclfile" in procs[0].argv()
    # Each service logs in as its own Redis user; transcribers get none.
    users = {p.name: p.env.get("SAYIT_REDIS_URL") for p in procs[1:]}
    assert users["gateway"] == "redis://gateway:pw-gateway@127.0.0.1:6390/0"
    assert users["scheduler"] == "redis://scheduler:pw-scheduler@127.0.0.1:6390/0"
    assert users["worker-q2"] == "redis://worker:pw-worker@127.0.0.1:6390/0"
    assert users["transcriber-q1"] is None
    layout = {
        p.name: (p.addr, next((v for k, v in p.env.items() if k.endswith("_METRICS_ADDR")), None))
        for p in procs[1:-1]
    }
    assert layout == {
        "transcriber-direct": ("127.0.0.1:50053", "127.0.0.1:9152"),
        "transcriber-q1": ("127.0.0.1:50054", "127.0.0.1:9153"),
        "worker-q1": (None, "127.0.0.1:9170"),
        "transcriber-q2": ("127.0.0.1:50055", "127.0.0.1:9154"),
        "worker-q2": (None, "127.0.0.1:9171"),
        "scheduler": ("127.0.0.1:50052", "127.0.0.1:9151"),
        "gateway": ("127.0.0.1:50051", "127.0.0.1:9150"),
    }
    # The HTTP edge last, in front of the gateway's public port, checked over HTTP.
    edge = procs[-1]
    assert (edge.name, edge.module, edge.addr) == ("http-edge", "services.http_edge", None)
    assert edge.env == {
        "SAYIT_HTTP_ADDR": "127.0.0.1:8080",
        "SAYIT_GATEWAY_ADDR": "127.0.0.1:50051",
        "SAYIT_HTTP_METRICS_ADDR": "127.0.0.1:9160",
    }
    assert edge.http_url == "http://127.0.0.1:8080"
    monkeypatch.setenv("SAYIT_GATEWAY_ADDR", "0.0.0.0:50061")
    monkeypatch.setenv("SAYIT_HTTP_ADDR", "0.0.0.0:8090")
    edge = make_up.processes(make_up.RedisChoice(6390, passwords))[-1]
    assert edge.env["SAYIT_GATEWAY_ADDR"] == "127.0.0.1:50061"
    assert (edge.env["SAYIT_HTTP_ADDR"], edge.http_url) == ("0.0.0.0:8090", "http://127.0.0.1:8090")
    monkeypatch.setenv("SAYIT_WORKER_METRICS_ADDR", "")
    monkeypatch.setenv("SAYIT_MESH_QUEUE_TRANSCRIBERS", "1")
    fewer = make_up.processes(make_up.RedisChoice(6390, passwords))
    assert [p.name for p in fewer] == [
        "redis",
        "transcriber-direct",
        "transcriber-q1",
        "worker-q1",
        "scheduler",
        "gateway",
        "http-edge",
    ]
    assert fewer[3].env["SAYIT_WORKER_METRICS_ADDR"] == ""
