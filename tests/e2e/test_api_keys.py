"""Keys on by default: the gateway's keys file is reloaded while it serves (on change and on
SIGHUP), so a key is revoked or added without a restart; a bad new file keeps the old keys;
SAYIT_AUTH=off is explicit, logged, and GetInfo says so; health and reflection need no key.

Each test runs a gateway of its own, with its own keys file, in front of the shared mesh's
scheduler (with the mesh gateway's environment, so it reaches the scheduler as that one does).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from devsupport.mesh import Mesh
from devsupport.processes import ServiceProcess, channel, free_port, health_status
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.gateway.keys import keys_entry
from tests.support.speech import rpc_error

RELOAD_SECONDS = 0.5
# Time for the poll, the read and the first failing call on a loaded 2-core machine.
SLACK_SECONDS = 5.0


def write_keys(path: Path, *keys: str) -> None:
    """One key per tenant: key "k-acme" belongs to tenant "acme"."""
    path.write_text("".join(keys_entry(k, k.removeprefix("k-"), k, ["all"]) for k in keys))


@contextmanager
def own_gateway(mesh: Mesh, directory: Path, **env: str) -> Iterator[ServiceProcess]:
    addr = f"127.0.0.1:{free_port()}"
    mesh_gateway = mesh.processes["gateway"]
    process = ServiceProcess(
        "services.gateway",
        {
            **mesh_gateway.env,
            "SAYIT_GATEWAY_ADDR": addr,
            "SAYIT_GATEWAY_METRICS_ADDR": "",
            "SAYIT_API_KEYS_RELOAD_SECONDS": str(RELOAD_SECONDS),
            **env,
        },
        directory / "gateway.log",
        addr=addr,
        tls=mesh_gateway.tls,
    ).start()
    try:
        process.wait_serving(60)
        yield process
    finally:
        process.stop()


def stub_of(gateway: ServiceProcess) -> pb_grpc.SpeechServiceStub:
    return pb_grpc.SpeechServiceStub(channel(gateway.addr or "", gateway.tls))


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def code_of(stub: pb_grpc.SpeechServiceStub, key: str) -> grpc.StatusCode:
    try:
        stub.ListJobs(pb.ListJobsRequest(page_size=1), metadata=bearer(key), timeout=10)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def wait_for(what: str, condition: object, timeout: float) -> float:
    """Seconds until `condition()` holds; fails after `timeout`."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, f"{what} not within {timeout:.1f} s"
        time.sleep(0.05)
    return time.monotonic() - started


def log_events(gateway: ServiceProcess, event: str) -> list[dict[str, object]]:
    lines = gateway.log_path.read_text(errors="replace").splitlines()
    found = [json.loads(line) for line in lines if line.startswith("{")]
    return [e for e in found if e.get("event") == event]


@dataclass
class Caller:
    """A caller using one key without a pause, in a thread: every call's code, in order."""

    stub: pb_grpc.SpeechServiceStub
    key: str
    codes: list[tuple[float, grpc.StatusCode, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.stub.ListJobs(
                    pb.ListJobsRequest(page_size=1), metadata=bearer(self.key), timeout=10
                )
                self.codes.append((time.monotonic(), grpc.StatusCode.OK, ""))
            except grpc.RpcError as error:
                self.codes.append((time.monotonic(), error.code(), error.details() or ""))
            time.sleep(0.02)


def test_a_key_revoked_in_the_file_fails_while_in_use_and_others_keep_working(
    mesh: Mesh, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.toml"
    write_keys(keys_file, "k-acme", "k-globex")
    with own_gateway(mesh, tmp_path, SAYIT_API_KEYS_FILE=str(keys_file)) as gateway:
        stub = stub_of(gateway)
        revoked, kept = Caller(stub, "k-acme"), Caller(stub, "k-globex")
        threads = [threading.Thread(target=c.run) for c in (revoked, kept)]
        for thread in threads:
            thread.start()
        try:
            wait_for("calls with both keys", lambda: revoked.codes and kept.codes, 30)
            edited = time.monotonic()
            write_keys(keys_file, "k-globex")  # acme's key is gone
            took = wait_for(
                "the revoked key refused",
                lambda: any(c[1] == grpc.StatusCode.UNAUTHENTICATED for c in revoked.codes),
                RELOAD_SECONDS + SLACK_SECONDS,
            )
            time.sleep(1.0)  # and it stays refused, while globex goes on
        finally:
            for c in (revoked, kept):
                c.stop.set()
            for thread in threads:
                thread.join()
    before = [code for t, code, _ in revoked.codes if t < edited]
    assert before and set(before) == {grpc.StatusCode.OK}
    first_refused = next(
        i for i, c in enumerate(revoked.codes) if c[1] == grpc.StatusCode.UNAUTHENTICATED
    )
    after = revoked.codes[first_refused:]
    assert {code for _, code, _ in after} == {grpc.StatusCode.UNAUTHENTICATED}, after
    assert "API key not recognised" in after[0][2]
    assert {code for _, code, _ in kept.codes} == {grpc.StatusCode.OK}
    assert took <= RELOAD_SECONDS + SLACK_SECONDS
    [reloaded] = log_events(gateway, "api_keys_reloaded")
    assert reloaded["removed"] == ["k-acme"] and reloaded["reason"] == "changed"


def test_a_key_added_to_the_file_works_without_a_restart(mesh: Mesh, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.toml"
    write_keys(keys_file, "k-acme")
    with own_gateway(mesh, tmp_path, SAYIT_API_KEYS_FILE=str(keys_file)) as gateway:
        stub = stub_of(gateway)
        assert code_of(stub, "k-initech") == grpc.StatusCode.UNAUTHENTICATED
        pid = gateway.pid
        write_keys(keys_file, "k-acme", "k-initech")
        wait_for(
            "the new key accepted",
            lambda: code_of(stub, "k-initech") == grpc.StatusCode.OK,
            RELOAD_SECONDS + SLACK_SECONDS,
        )
        info = stub.GetInfo(pb.GetInfoRequest(), metadata=bearer("k-initech"), timeout=10)
        assert info.tenant == "initech"
        assert code_of(stub, "k-acme") == grpc.StatusCode.OK
        assert gateway.pid == pid and gateway.alive()


def test_sighup_reloads_at_once(mesh: Mesh, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.toml"
    write_keys(keys_file, "k-acme")
    # Polled once an hour: only the signal can make the gateway read the file in time.
    with own_gateway(
        mesh,
        tmp_path,
        SAYIT_API_KEYS_FILE=str(keys_file),
        SAYIT_API_KEYS_RELOAD_SECONDS="3600",
    ) as gateway:
        stub = stub_of(gateway)
        write_keys(keys_file, "k-hooli")
        time.sleep(1.0)
        assert code_of(stub, "k-hooli") == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(stub, "k-acme") == grpc.StatusCode.OK
        gateway.signal(signal.SIGHUP)
        wait_for("SIGHUP's reload", lambda: code_of(stub, "k-hooli") == grpc.StatusCode.OK, 10)
        assert code_of(stub, "k-acme") == grpc.StatusCode.UNAUTHENTICATED
        assert gateway.alive()
    [reloaded] = log_events(gateway, "api_keys_reloaded")
    assert reloaded["reason"] == "SIGHUP" and reloaded["added"] == ["k-hooli"]


@pytest.mark.parametrize(
    "bad",
    ['[[keys]]\nname = "half-writ', '[[keys]]\nname = "x"\nsha256 = "nope"\ntenant = "acme"\n'],
    ids=["bad-toml", "bad-entry"],
)
def test_a_bad_new_file_is_refused_and_the_old_keys_stay(
    mesh: Mesh, tmp_path: Path, bad: str
) -> None:
    keys_file = tmp_path / "keys.toml"
    write_keys(keys_file, "k-acme")
    with own_gateway(mesh, tmp_path, SAYIT_API_KEYS_FILE=str(keys_file)) as gateway:
        stub = stub_of(gateway)
        keys_file.write_text(bad)
        wait_for(
            "the refusal logged",
            lambda: log_events(gateway, "api_keys_reload_refused"),
            RELOAD_SECONDS + SLACK_SECONDS,
        )
        assert code_of(stub, "k-acme") == grpc.StatusCode.OK
        gateway.signal(signal.SIGHUP)  # asked again, the answer is the same
        wait_for(
            "the second refusal",
            lambda: len(log_events(gateway, "api_keys_reload_refused")) == 2,
            10,
        )
        assert code_of(stub, "k-acme") == grpc.StatusCode.OK
        assert gateway.alive()
    refused = log_events(gateway, "api_keys_reload_refused")
    assert [e["level"] for e in refused] == ["error", "error"]
    assert all(str(keys_file) in str(e["error"]) and e["keys_in_force"] == 1 for e in refused)
    assert not log_events(gateway, "api_keys_reloaded")


def test_get_info_needs_no_key_and_tells_the_tenant_of_a_valid_one(
    mesh: Mesh, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.toml"
    write_keys(keys_file, "k-acme")
    keys_file.write_text(
        keys_file.read_text() + "[tenants.acme]\nrequests_per_second = 7\nrequest_burst = 9\n"
    )
    with own_gateway(mesh, tmp_path, SAYIT_API_KEYS_FILE=str(keys_file)) as gateway:
        stub = stub_of(gateway)
        anonymous = stub.GetInfo(pb.GetInfoRequest(), timeout=10)
        acme = stub.GetInfo(pb.GetInfoRequest(), metadata=bearer("k-acme"), timeout=10)
        error = rpc_error(stub.GetInfo, pb.GetInfoRequest(), metadata=bearer("k-nope"), timeout=10)
        # Health and reflection answer without a key.
        assert health_status(gateway.addr or "", tls=gateway.tls) == (
            health_pb2.HealthCheckResponse.SERVING
        )
        with channel(gateway.addr or "", gateway.tls) as chan:
            replies = reflection_pb2_grpc.ServerReflectionStub(chan).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
            )
            services = [s.name for r in replies for s in r.list_services_response.service]
        assert "sayit.speech.v1.SpeechService" in services
    assert anonymous.auth_mode == pb.AUTH_MODE_API_KEYS and anonymous.tenant == ""
    assert anonymous.version and anonymous.max_audio_seconds == 4 * 3600
    assert anonymous.max_request_bytes == 100 * 1024 * 1024
    assert anonymous.tenant_requests_per_second == 50 and anonymous.tenant_request_burst == 100
    assert acme.tenant == "acme" and acme.auth_mode == pb.AUTH_MODE_API_KEYS
    assert (acme.tenant_requests_per_second, acme.tenant_request_burst) == (7, 9)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "not recognised" in (error.details() or "")
    # What GetInfo tells is public: no internal address.
    assert mesh.scheduler_addr not in str(anonymous) and "127.0.0.1" not in str(anonymous)


def test_auth_off_is_explicit_logged_and_told_by_get_info(mesh: Mesh, tmp_path: Path) -> None:
    with own_gateway(mesh, tmp_path, SAYIT_AUTH="off", SAYIT_API_KEYS_FILE="") as gateway:
        stub = stub_of(gateway)
        info = stub.GetInfo(pb.GetInfoRequest(), timeout=10)
        listed = stub.ListJobs(pb.ListJobsRequest(page_size=1), timeout=10)
    assert info.auth_mode == pb.AUTH_MODE_OFF and info.tenant == "default"
    assert listed is not None  # no key needed
    [warning] = log_events(gateway, "auth_disabled")
    assert warning["level"] == "warning" and "SAYIT_AUTH=off" in str(warning["reason"])
