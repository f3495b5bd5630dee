"""The real transcriber process with the real bundled model, over real gRPC on loopback: the
service around the model (bad requests, reflection and health, start-up, huge pages, SIGTERM)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from devsupport import evalset, processes
from devsupport.kernel import thp_mode
from tests.support.transcriber_calls import assert_well_ordered, events, request, stub

pytestmark = pytest.mark.model

SERVICE = "sayit.transcriber.v1.TranscriberService"


def _model_loaded(service: processes.ServiceProcess) -> dict:  # type: ignore[type-arg]
    lines = service.log_path.read_text().splitlines()
    return next(json.loads(line) for line in lines if '"model_loaded"' in line)


def _thp_mode() -> str:
    return thp_mode(Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text())


@pytest.mark.skipif(_thp_mode() != "madvise", reason="needs the kernel's THP mode madvise")
def test_the_model_sits_on_huge_pages_unless_turned_off(run_dir: Path) -> None:
    # The transcriber starts itself again with glibc's tunable (same pid); with THP mode
    # madvise only that tunable puts malloc's memory on huge pages.
    found = {}
    for setting in ("true", "false"):
        service = processes.transcriber(
            run_dir, f"transcriber-huge-{setting}", SAYIT_HUGE_PAGES=setting
        ).start()
        try:
            service.wait_serving()
            environ = Path(f"/proc/{service.pid}/environ").read_bytes().split(b"\0")
            tunables = [v for v in environ if v.startswith(b"GLIBC_TUNABLES=")]
            found[setting] = (tunables, _model_loaded(service)["huge_pages_mib"])
        finally:
            service.stop()
    assert found["true"][0] == [b"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"]
    # How much of the ~400 MB of int8 weights the kernel backs with huge pages depends on the
    # machine (326 MiB on one, 38-128 MiB on another); without the tunable it is none.
    assert found["true"][1] >= 2  # at least one 2 MiB page
    assert found["false"] == ([], 0.0)


@pytest.mark.parametrize(
    ("content", "config", "field", "message"),
    [
        (b"", {}, "audio.content", "empty"),
        (b"\x00\x01garbage" * 100, {}, "audio.content", "not a recognised audio format"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", {}, "audio.content", "decode"),
        (None, {"language": "xx"}, "config.language_code", "unknown language code"),
        (None, {"model": "medium"}, "config.model", "not served here"),
        (None, {"preset": 42}, "config.preset", "unknown preset"),
        (None, {"initial_prompt": "가" * 1001}, "config.initial_prompt", "limit is 1000"),
    ],
    ids=[
        "empty",
        "random-bytes",
        "truncated-wav-header",
        "unknown-language",
        "other-model",
        "bad-preset",
        "prompt-too-long",
    ],
)
def test_bad_requests_are_invalid_argument(
    transcriber: processes.ServiceProcess,
    content: bytes | None,
    config: dict[str, object],
    field: str,
    message: str,
) -> None:
    audio = content if content is not None else evalset.clip("en_pv_cheetah_test").read()
    with pytest.raises(grpc.RpcError) as caught:
        events(transcriber.addr or "", request(audio, **config))
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert bad_request.field_violations[0].field == field


def test_reflection_and_health(transcriber: processes.ServiceProcess) -> None:
    channel = grpc.insecure_channel(transcriber.addr or "")
    database = ProtoReflectionDescriptorDatabase(channel)
    services = database.get_services()
    assert SERVICE in services and "grpc.health.v1.Health" in services
    descriptor = database.FindFileContainingSymbol(SERVICE)
    assert descriptor is not None
    for name in ("", SERVICE):
        assert processes.health_status(transcriber.addr or "", name) == (
            health_pb2.HealthCheckResponse.SERVING
        )


def test_health_is_serving_only_after_the_model_is_loaded(tmp_path: Path) -> None:
    # A cold model cache makes start-up slow enough to watch: the bundled model is assembled
    # and verified first.
    service = processes.transcriber(tmp_path, SAYIT_MODEL_CACHE_DIR=str(tmp_path / "cache"))
    service.start()
    seen: list[int | None] = []
    try:
        addr = service.addr or ""
        unavailable_while_loading = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = processes.health_status(addr, timeout=0.5)
            if status is not None and (not seen or seen[-1] != status):
                seen.append(status)
            if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                try:
                    events(addr, request(b"x"))
                except grpc.RpcError as error:
                    if error.code() == grpc.StatusCode.UNAVAILABLE:
                        assert "loading" in error.details()
                        unavailable_while_loading = True
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
            time.sleep(0.02)
        assert seen == [
            health_pb2.HealthCheckResponse.NOT_SERVING,
            health_pb2.HealthCheckResponse.SERVING,
        ]
        assert unavailable_while_loading
        log = service.log_path.read_text()
        assert log.index('"model_loaded"') < log.index('"serving"')
        assert (tmp_path / "cache").is_dir()
    finally:
        service.stop()


def test_a_model_that_cannot_be_found_stops_start_up(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    service = processes.transcriber(
        tmp_path,
        SAYIT_MODEL="medium",
        SAYIT_MODELS_DIR=str(models),
        HF_HUB_CACHE=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="1",
    ).start()
    assert service.process is not None
    assert service.process.wait(60) == 1
    log = service.log_path.read_text()
    assert "startup_failed" in log and str(models / "medium") in log


def test_sigterm_drains_in_flight_calls(tmp_path: Path) -> None:
    service = processes.transcriber(tmp_path, SAYIT_SHUTDOWN_GRACE_SECONDS="30").start()
    service.wait_serving()
    clip = evalset.clip("en_jfk")
    call = stub(service.addr or "").TranscribeStream(request(clip.read(), "en"), timeout=60)
    first = next(call)
    assert first.HasField("progress")
    service.signal(15)
    rest = list(call)
    transcript = assert_well_ordered([first, *rest])
    assert "ask not what your country" in transcript.text
    assert service.process is not None and service.process.wait(30) == 0
