"""The real transcriber process with the real bundled model, over real gRPC on loopback."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from devsupport import audio, evalset, processes, scoring
from devsupport.kernel import thp_mode
from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.model

SERVICE = "sayit.transcriber.v1.TranscriberService"


def stub(addr: str) -> pb_grpc.TranscriberServiceStub:
    return pb_grpc.TranscriberServiceStub(grpc.insecure_channel(addr))


def request(content: bytes, language: str = "", **config: object) -> pb.TranscribeStreamRequest:
    return pb.TranscribeStreamRequest(
        audio=audio_pb2.Audio(content=content),
        config=tpb.TranscriptionConfig(language_code=language, **config),  # type: ignore[arg-type]
    )


def events(addr: str, req: pb.TranscribeStreamRequest) -> list[pb.TranscribeStreamResponse]:
    return list(stub(addr).TranscribeStream(req, timeout=300))


def assert_well_ordered(responses: list[pb.TranscribeStreamResponse]) -> tpb.Transcript:
    """Progress never decreases, segments come before the transcript, which comes last."""
    kinds = [r.WhichOneof("event") for r in responses]
    assert kinds[-1] == "transcript" and kinds.count("transcript") == 1, kinds
    fractions = [r.progress.fraction for r in responses if r.HasField("progress")]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0), fractions
    segments = [r.segment for r in responses if r.HasField("segment")]
    transcript = responses[-1].transcript
    assert [s.text for s in segments] == [s.text for s in transcript.segments]
    starts = [s.start_seconds for s in segments]
    assert starts == sorted(starts)
    return transcript


def test_korean_and_english_accuracy(transcriber: processes.ServiceProcess) -> None:
    clips = evalset.clips(max_seconds=30)
    assert {c.language for c in clips} == {"ko", "en"}

    def run(clip: evalset.Clip) -> tuple[evalset.Clip, tpb.Transcript]:
        responses = events(transcriber.addr or "", request(clip.read(), clip.language))
        return clip, assert_well_ordered(responses)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, clips))
    for language, bound in (("ko", 0.10), ("en", 0.08)):
        scores = [
            scoring.score(c.reference, t.text, language)
            for c, t in results
            if c.language == language
        ]
        rate = scoring.pooled(scores).rate
        print(f"{language}: pooled error rate {rate:.3f} over {len(scores)} clips")
        assert rate <= bound, f"{language} error rate {rate:.3f} above {bound}"
    for clip, transcript in results:
        assert transcript.language_code == clip.language
        assert transcript.audio_duration_seconds == pytest.approx(clip.duration_seconds, abs=0.1)
        assert transcript.model == "base" and transcript.processing_seconds > 0


def test_detects_the_language_when_none_is_given(transcriber: processes.ServiceProcess) -> None:
    for clip_id, language in (("ko_deeply_sub100111a00054", "ko"), ("en_jfk", "en")):
        responses = events(transcriber.addr or "", request(evalset.clip(clip_id).read()))
        transcript = assert_well_ordered(responses)
        assert transcript.language_code == language
        assert 0.5 < transcript.language_probability <= 1.0


def test_word_timestamps_on_request(transcriber: processes.ServiceProcess) -> None:
    clip = evalset.clip("en_jfk")
    transcript = assert_well_ordered(
        events(transcriber.addr or "", request(clip.read(), "en", word_timestamps=True))
    )
    words = [w for s in transcript.segments for w in s.words]
    assert "".join(w.word for w in words).strip().startswith("And so")
    for segment in transcript.segments:
        for word in segment.words:
            assert segment.start_seconds - 0.01 <= word.start_seconds <= word.end_seconds
            assert word.end_seconds <= segment.end_seconds + 0.01
            assert 0.0 <= word.probability <= 1.0
    plain = assert_well_ordered(events(transcriber.addr or "", request(clip.read(), "en")))
    assert all(not s.words for s in plain.segments)


def test_segments_of_joined_speech_never_overlap(transcriber: processes.ServiceProcess) -> None:
    # Each speech region is its own window, started early (regions.lead_in); Whisper stamped one
    # segment's end 0.4 s past its window, into the next one's first segment, and the overlap
    # made the queue's replay guard drop that segment from a job's events.
    content, reference, _ = audio.korean_long(60.0)
    transcript = assert_well_ordered(
        events(transcriber.addr or "", request(content, "ko", word_timestamps=True))
    )
    segments = list(transcript.segments)
    assert len(segments) >= 10
    for before, after in itertools.pairwise(segments):
        assert before.end_seconds <= after.start_seconds + 1e-3, (before, after)
    assert all(s.end_seconds - s.start_seconds > 0.2 for s in segments), segments
    for segment in segments:
        assert all(w.end_seconds <= segment.end_seconds + 1e-3 for w in segment.words)
    assert scoring.score(reference, transcript.text, "ko").rate < 0.2


def test_speech_a_segment_skipped_is_decoded_again(transcriber: processes.ServiceProcess) -> None:
    # 14.9 s of three joined Korean clips: Whisper wrote the first sentence, stamped its end at
    # 9.1 s and never wrote the second (CER 0.38) until skips.py had that speech decoded again.
    content, reference, _ = audio.korean_long(12.0)
    transcript = assert_well_ordered(events(transcriber.addr or "", request(content, "ko")))
    assert "면접만 보면" in transcript.text, transcript.text
    assert scoring.score(reference, transcript.text, "ko").rate < 0.2, transcript.text
    segments = list(transcript.segments)
    assert [s.id for s in segments] == list(range(1, len(segments) + 1))
    for before, after in itertools.pairwise(segments):
        assert before.end_seconds <= after.start_seconds + 1e-3, (before, after)


def test_batched_decoding_only_for_its_languages(run_dir: Path) -> None:
    # SAYIT_BATCH_LANGUAGES defaults to English: Korean lost 5-13 CER points batched.
    service = processes.transcriber(
        run_dir, "transcriber-batched", SAYIT_BATCH_SIZE="4", SAYIT_BATCH_MIN_SECONDS="20"
    ).start()
    try:
        service.wait_serving()
        english_clips = [c for c in evalset.clips("en") if c.duration_seconds < 30]
        english, english_reference = audio.joined(english_clips)
        korean, _, _ = audio.korean_long(25.0)
        short = evalset.clip("en_jfk")
        calls = [(english, "en"), (korean, "ko"), (english, ""), (short.read(), "en")]
        transcripts = [
            assert_well_ordered(events(service.addr or "", request(content, language)))
            for content, language in calls
        ]
        started = [
            json.loads(line)
            for line in service.log_path.read_text().splitlines()
            if '"transcription_started"' in line
        ]
    finally:
        service.stop()
    # Only the long English file with its language given: Korean is not in the list, a
    # detected language is not known in time, the short clip is under the 20 s minimum.
    assert [e["batched"] for e in started] == [True, False, False, False]
    assert [e["language"] for e in started] == ["en", "ko", "en", "en"]
    batched = transcripts[0]
    assert scoring.score(english_reference, batched.text, "en").rate < 0.15
    # A batched segment is a whole speech region: no more segments than the sequential run.
    assert 0 < len(batched.segments) <= len(transcripts[2].segments)


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


@pytest.fixture
def single_slot(run_dir: Path) -> processes.ServiceProcess:
    service = processes.transcriber(
        run_dir, "transcriber-1slot", SAYIT_TRANSCRIBER_SLOTS="1", SAYIT_CPU_THREADS="2"
    ).start()
    service.wait_serving()
    yield service  # type: ignore[misc]
    service.stop()


def _start_long_call(addr: str) -> tuple[grpc.Future, threading.Event, list[str]]:
    """Start transcribing the long clip; returns the call, an event set at the first segment,
    and the list of response kinds received so far."""
    long_clip = evalset.clip("en_long_ljspeech_LJ001").read()
    call = stub(addr).TranscribeStream(request(long_clip, "en"), timeout=300)
    first_segment = threading.Event()
    kinds: list[str] = []

    def consume() -> None:
        try:
            for response in call:
                kinds.append(response.WhichOneof("event"))
                if response.HasField("segment"):
                    first_segment.set()
        except grpc.RpcError:
            pass

    threading.Thread(target=consume, daemon=True).start()
    return call, first_segment, kinds


def _wait_info(addr: str, done: Callable[[pb.GetInfoResponse], bool]) -> pb.GetInfoResponse:
    deadline = time.monotonic() + 10
    info = stub(addr).GetInfo(pb.GetInfoRequest())
    while not done(info) and time.monotonic() < deadline:
        time.sleep(0.05)
        info = stub(addr).GetInfo(pb.GetInfoRequest())
    return info


def _cheetah() -> pb.TranscribeStreamRequest:
    return request(evalset.clip("en_pv_cheetah_test").read(), "en")


def test_cancel_stops_decoding_and_frees_the_slot(single_slot: processes.ServiceProcess) -> None:
    addr = single_slot.addr or ""
    info = stub(addr).GetInfo(pb.GetInfoRequest())
    assert (info.slots_total, info.slots_busy, info.calls_waiting) == (1, 0, 0)
    call, first_segment, _ = _start_long_call(addr)
    assert first_segment.wait(120)

    # While the long call holds the only slot, one call may wait for it
    # (SAYIT_TRANSCRIBER_WAITING defaults to the slots) ...
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(events, addr, _cheetah())
        assert _wait_info(addr, lambda i: i.calls_waiting == 1).calls_waiting == 1
        # ... and the next is refused at once.
        with pytest.raises(grpc.RpcError) as caught:
            events(addr, _cheetah())
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "slots" in caught.value.details() and "busy" in caught.value.details()
        assert not waiting.done()

        call.cancel()
        stopped = _wait_info(addr, lambda i: i.calls_cancelled_total == 1)
        assert stopped.calls_cancelled_total == 1
        # The waiting call took the freed slot and is served.
        transcript = assert_well_ordered(waiting.result(timeout=120))
    assert "platforms" in transcript.text.lower()
    done = _wait_info(addr, lambda i: i.slots_busy == 0)
    assert (done.slots_busy, done.calls_waiting) == (0, 0), "the slot was not freed"
    assert done.calls_completed_total == 1
    time.sleep(2.0)
    later = stub(addr).GetInfo(pb.GetInfoRequest())
    assert later.segments_decoded_total == done.segments_decoded_total, "still decoding"
    # The long clip has ~40 segments; cancelling after the first leaves most undecoded.
    assert later.segments_decoded_total < 20


def test_a_call_cancelled_while_it_waits_leaves_the_line(
    single_slot: processes.ServiceProcess,
) -> None:
    addr = single_slot.addr or ""
    call, first_segment, _ = _start_long_call(addr)
    assert first_segment.wait(120)
    given_up = stub(addr).TranscribeStream(_cheetah(), timeout=300)
    assert _wait_info(addr, lambda i: i.calls_waiting == 1).calls_waiting == 1
    given_up.cancel()
    assert _wait_info(addr, lambda i: i.calls_waiting == 0).calls_waiting == 0
    with ThreadPoolExecutor(1) as pool:
        # Its place in line is free again, and the slot was not handed to it.
        waiting = pool.submit(events, addr, _cheetah())
        assert _wait_info(addr, lambda i: i.calls_waiting == 1).calls_waiting == 1
        call.cancel()
        transcript = assert_well_ordered(waiting.result(timeout=120))
    assert "platforms" in transcript.text.lower()
    info = _wait_info(addr, lambda i: i.slots_busy == 0)
    assert (info.slots_busy, info.calls_waiting, info.calls_completed_total) == (0, 0, 1)


def test_deadline_stops_decoding(single_slot: processes.ServiceProcess) -> None:
    addr = single_slot.addr or ""
    long_clip = evalset.clip("en_long_ljspeech_LJ001").read()
    with pytest.raises(grpc.RpcError) as caught:
        list(stub(addr).TranscribeStream(request(long_clip, "en"), timeout=3.0))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 10
    while stub(addr).GetInfo(pb.GetInfoRequest()).slots_busy and time.monotonic() < deadline:
        time.sleep(0.05)
    info = stub(addr).GetInfo(pb.GetInfoRequest())
    assert info.slots_busy == 0 and info.calls_cancelled_total >= 1


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
