"""The real transcriber process with the real bundled model, over real gRPC on loopback: live
sessions (StreamTranscribe) fed the shared clips, faster than real time except where pace is
the point."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from devsupport import evalset, processes, scoring
from sayit.common.v1 import streaming_pb2 as spb
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc
from services.common.audio import encode_wav
from services.common.errors import retry_delay_seconds
from services.common.interceptors import ACCEPTED_KEY
from tests.support import live_calls
from tests.support.live_calls import assert_well_ordered, join, linear16, setup, stream
from tests.support.transcriber_calls import assert_well_ordered as assert_file_ordered
from tests.support.transcriber_calls import events, request

pytestmark = pytest.mark.model

PLACES = 2


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[processes.ServiceProcess]:
    """A transcriber as deployed on two cores (one slot of two threads), two session places."""
    service = processes.transcriber(
        tmp_path_factory.mktemp("live"),
        "transcriber-live",
        SAYIT_TRANSCRIBER_SLOTS="1",
        SAYIT_CPU_THREADS="2",
        SAYIT_TRANSCRIBER_STREAM_SESSIONS=str(PLACES),
    ).start()
    service.wait_serving()
    yield service
    service.stop()


def _stub(service: processes.ServiceProcess) -> pb_grpc.TranscriberServiceStub:
    return pb_grpc.TranscriberServiceStub(grpc.insecure_channel(service.addr or ""))


def _info(service: processes.ServiceProcess) -> pb.GetInfoResponse:
    return _stub(service).GetInfo(pb.GetInfoRequest(), timeout=5)


def _clip_texts(call: live_calls.Call, joined: live_calls.Joined) -> list[str]:
    """Each clip's final texts (a final belongs to the clip its middle falls in)."""
    texts: list[list[str]] = [[] for _ in joined.clips]
    for final in call.finals():
        middle = (final.start_seconds + final.end_seconds) / 2
        distance = [
            0.0 if start <= middle <= end else min(abs(middle - start), abs(middle - end))
            for start, end in joined.spans
        ]
        texts[int(np.argmin(distance))].append(final.text)
    return [" ".join(t) for t in texts]


def test_finals_match_the_reference_as_well_as_transcribe_does(
    live: processes.ServiceProcess,
) -> None:
    chosen = {
        "ko": [c.id for c in evalset.clips("ko")[:7]],  # 33 s, ~190 characters
        "en": ["en_pv_leopard_test", "en_fleurs_004", "en_fleurs_003"],
    }

    def run(language: str) -> tuple[str, float, float, int]:
        clips = [evalset.clip(c) for c in chosen[language]]
        joined = join(clips, gap_seconds=1.2)
        call = stream(live.addr or "", setup(language), linear16(joined.samples))
        assert_well_ordered(call)
        finals = call.finals()
        assert all(f.language_code == language for f in finals)
        live_rate = scoring.pooled(
            scoring.score(c.reference, text, language)
            for c, text in zip(clips, _clip_texts(call, joined), strict=True)
        ).rate
        # Transcribe of the same audio (each clip at the level the session heard it).
        file_rate = scoring.pooled(
            scoring.score(
                c.reference,
                assert_file_ordered(
                    events(live.addr or "", request(encode_wav(join([c], 0, 0).samples), language))
                ).text,
                language,
            )
            for c in clips
        ).rate
        summary = call.responses[-1][1].summary
        assert summary.language_code == language and summary.model == "base"
        assert summary.audio_seconds == pytest.approx(len(joined.samples) / 16_000, abs=0.05)
        return language, live_rate, file_rate, len(finals)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, chosen))
    for language, live_rate, file_rate, finals in results:
        print(f"{language}: live {live_rate:.3f} vs Transcribe {file_rate:.3f} ({finals} finals)")
        # The goal is 1.5 points over the whole shared set (measured there, live minus
        # Transcribe: leveled clips Korean +0.5, English -1.8; at their own levels Korean +0.9,
        # English -1.7); on these few clips one character or word is already
        # 0.5-1.5 points, so the bound here only catches a real regression (a lost clause).
        assert live_rate <= file_rate + 0.03, (language, live_rate, file_rate)
        assert finals >= len(chosen[language])  # one utterance per clip at least


def test_a_soft_korean_ending_after_earlier_speech_is_kept_at_its_own_level(
    live: processes.ServiceProcess,
) -> None:
    # After ko_pv_leopard_test, the VAD scores the soft ending "꼭 떨어지네" of the next clip
    # 0.2-0.44: with speech ending below 0.35 the utterance ended 1 s before the clip did and
    # its final lost "꼭 떨어지네" ("... 면접만 보면", or garbled: "... 면접만 꼬만 꼬끗"); this
    # clip made most of Korean CER 11.9 % live vs 8.7 % Transcribe on the shared clips at their
    # own levels.
    clips = [evalset.clip("ko_pv_leopard_test"), evalset.clip("ko_deeply_sub100110a00036")]
    joined = join(clips, gap_seconds=1.2, level=False)
    call = stream(live.addr or "", setup("ko"), linear16(joined.samples))
    assert_well_ordered(call)
    last = _clip_texts(call, joined)[-1]
    assert "떨어지" in last.replace(" ", ""), last
    ended = [
        r.speech_event.time_seconds
        for _, r in call.responses
        if r.HasField("speech_event") and r.speech_event.type == spb.SPEECH_EVENT_TYPE_SPEECH_ENDED
    ]
    assert ended[-1] >= joined.spans[-1][1] - 0.3, (ended, joined.spans)


def test_interim_then_final_results_at_real_time_pace(live: processes.ServiceProcess) -> None:
    clip = evalset.clip("en_pv_cheetah_test")
    joined = join([clip], gap_seconds=1.0)
    call = stream(
        live.addr or "", setup("en", interim=True), linear16(joined.samples), realtime=True
    )
    assert_well_ordered(call)
    interims = call.interims()
    # 4.5 s of speech: an interim result at least every second of it.
    assert len(interims) >= 4, [i.text for i in interims]
    assert all(0.0 <= i.stability <= 1.0 and i.utterance == 1 for i in interims)
    assert any(i.stability > 0.0 for i in interims)
    ends = [i.end_seconds for i in interims]
    assert ends == sorted(ends)
    final = call.finals()[0]
    assert final.stability == 1.0 and final.language_code == "en"
    # "one and three" comes out as "1 and 3" (Transcribe writes the same): 2 of 8 words.
    assert scoring.score(clip.reference, final.text, "en").rate <= 0.25, final.text
    latencies = call.endpoint_latencies()
    print(f"endpoint latency {latencies}, interims {[(i.text, i.stability) for i in interims]}")
    # The goal (median 1.2 s) is measured by the bench; here: nothing queues it behind.
    assert statistics.median(latencies) < 2.5


def test_half_close_mid_speech_flushes_the_last_utterance_float32_48k_stereo(
    live: processes.ServiceProcess,
) -> None:
    clip = evalset.clip("ko_deeply_sub100120a00042")
    joined = join([clip], gap_seconds=0.0, lead_seconds=0.3)
    samples = joined.samples[: int(len(joined.samples) * 0.85)]  # cut off before its end
    t16 = np.arange(len(samples)) / 16_000
    t48 = np.arange(len(samples) * 3) / 48_000
    up = np.interp(t48, t16, samples).astype(np.float32)
    stereo = np.stack([up, up * 0.5], axis=1).reshape(-1).astype("<f4").tobytes()
    call = stream(
        live.addr or "",
        setup(
            "ko",
            encoding=spb.AUDIO_ENCODING_FLOAT32,
            rate=48_000,
            channels=2,
            word_timestamps=True,
        ),
        stereo,
        bytes_per_second=48_000 * 2 * 4,
    )
    assert_well_ordered(call)
    kinds = call.kinds()
    assert kinds[-4:] == ["speech_event", "result", "segment", "summary"], kinds
    final = call.finals()[-1]
    assert final.text and final.end_seconds <= len(samples) / 16_000 + 0.05
    # The clip's first words are there (the cut-off tail may be lost with the audio).
    assert scoring.normalize(final.text).startswith(scoring.normalize(clip.reference)[:4])
    summary = call.responses[-1][1].summary
    assert summary.audio_seconds == pytest.approx(len(samples) / 16_000, abs=0.05)
    # Word timestamps, asked for, on the session's clock inside the final result.
    assert final.words
    for word in final.words:
        assert final.start_seconds - 0.01 <= word.start_seconds <= word.end_seconds
        assert word.end_seconds <= final.end_seconds + 0.01
    segment = call.responses[-2][1].segment
    assert segment.id == final.utterance and list(segment.words) == list(final.words)


def test_speech_longer_than_30_seconds_is_cut_into_finals_and_nothing_is_lost(
    live: processes.ServiceProcess,
) -> None:
    clips = evalset.clips("ko")[:8]  # 36 s of speech
    joined = join(clips, gap_seconds=0.2)
    first = setup("ko")
    # Pauses between the clips (their own silences plus the gap) stay under the endpoint.
    first.setup.streaming_config.endpointing.silence_seconds = 2.0
    call = stream(live.addr or "", first, linear16(joined.samples))
    assert_well_ordered(call)
    finals = call.finals()
    assert len(finals) >= 2, [f.text for f in finals]
    assert all(f.end_seconds - f.start_seconds <= 30.0 for f in finals)
    cuts = [e.speech_event for _, e in call.responses if e.HasField("speech_event")]
    assert any(e.time_seconds > 20.0 for e in cuts if e.type == spb.SPEECH_EVENT_TYPE_SPEECH_ENDED)
    rate = scoring.score(joined.reference, " ".join(f.text for f in finals), "ko").rate
    print(f"{len(finals)} finals, CER {rate:.3f}: {[f.text for f in finals]}")
    # About 10 % where every word is decoded; one clip lost would add 8-15 points.
    assert rate <= 0.16


def _held_session(
    service: processes.ServiceProcess, release: threading.Event
) -> tuple[grpc.Future, list[str]]:
    """A session that sends its setup and a little silence, then waits for `release`."""

    def requests() -> Iterator[pb.StreamTranscribeRequest]:
        yield setup("en")
        yield pb.StreamTranscribeRequest(audio_content=bytes(3200))
        release.wait(30)

    call = _stub(service).StreamTranscribe(requests(), timeout=60)
    kinds: list[str] = []

    def consume() -> None:
        try:
            for response in call:
                kinds.append(response.WhichOneof("event") or "")
        except grpc.RpcError:
            pass

    threading.Thread(target=consume, daemon=True).start()
    return call, kinds


def test_no_free_place_is_resource_exhausted_and_a_cancel_frees_one(
    live: processes.ServiceProcess,
) -> None:
    release = threading.Event()
    held = [_held_session(live, release) for _ in range(PLACES)]
    try:
        for call, _ in held:
            assert (ACCEPTED_KEY, "1") in tuple(call.initial_metadata())
        info = _info(live)
        assert info.sessions_total == PLACES and info.sessions_active == PLACES
        with pytest.raises(grpc.RpcError) as refused:
            list(_stub(live).StreamTranscribe(iter([setup("en")]), timeout=10))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "live session places" in (refused.value.details() or "")
        status = rpc_status.from_call(refused.value)  # type: ignore[arg-type]
        assert status is not None and retry_delay_seconds(status.details) == 2.0
        # The caller cancels one session: its place is free at once (nothing was decoding).
        held[0][0].cancel()
        deadline = time.monotonic() + 5
        while _info(live).sessions_active != PLACES - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _info(live).sessions_active == PLACES - 1
        clip = evalset.clip("en_fleurs_004")
        call = stream(live.addr or "", setup("en"), linear16(join([clip], 0.8).samples))
        assert_well_ordered(call)
    finally:
        release.set()
    # The other held session half-closed: it ends OK with only its summary (silence).
    deadline = time.monotonic() + 10
    while held[1][1][-1:] != ["summary"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert held[1][1] == ["summary"]


def _refusal(*messages: pb.StreamTranscribeRequest, addr: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        list(
            pb_grpc.TranscriberServiceStub(grpc.insecure_channel(addr)).StreamTranscribe(
                iter(messages), timeout=10
            )
        )
    return caught.value


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([pb.StreamTranscribeRequest(audio_content=b"\0\0")], "setup"),
        ([], "setup"),
        ([setup("en", encoding=spb.AUDIO_ENCODING_UNSPECIFIED)], "streaming_config.encoding"),
        ([setup("en", encoding=7)], "streaming_config.encoding"),
        ([setup("en", rate=0)], "streaming_config.sample_rate_hertz"),
        ([setup("en", rate=96_000)], "streaming_config.sample_rate_hertz"),
        ([setup("en", channels=3)], "streaming_config.audio_channel_count"),
        ([setup("xx")], "config.language_code"),
        ([setup("en"), setup("en")], "setup"),
    ],
)
def test_a_bad_setup_is_invalid_argument(
    live: processes.ServiceProcess, messages: list[pb.StreamTranscribeRequest], field: str
) -> None:
    error = _refusal(*messages, addr=live.addr or "")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    fields = []
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    assert any(f.endswith(field) for f in fields), (fields, error.details())
    assert _info(live).sessions_active == 0


def test_endpointing_out_of_range_is_invalid_argument(live: processes.ServiceProcess) -> None:
    first = setup("en")
    first.setup.streaming_config.endpointing.silence_seconds = 10.0
    error = _refusal(first, addr=live.addr or "")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "silence_seconds" in (error.details() or "")


def test_shutdown_flushes_open_sessions_then_ends_them_unavailable(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    service = processes.transcriber(
        tmp_path_factory.mktemp("live-drain"), "transcriber-drain", SAYIT_CPU_THREADS="2"
    ).start()
    try:
        service.wait_serving()
        clip = evalset.clip("en_fleurs_004")
        samples = join([clip], gap_seconds=0.0, lead_seconds=0.3).samples
        speech = linear16(samples[: int(len(samples) * 0.8)])  # stops mid-speech
        release = threading.Event()

        def requests() -> Iterator[pb.StreamTranscribeRequest]:
            yield setup("en")
            for offset in range(0, len(speech), 3200):
                yield pb.StreamTranscribeRequest(audio_content=speech[offset : offset + 3200])
            release.wait(30)  # the caller goes on, silently

        call = _stub(service).StreamTranscribe(requests(), timeout=60)
        kinds: list[str] = []
        finals: list[str] = []
        with pytest.raises(grpc.RpcError) as ended:
            for response in call:
                kinds.append(response.WhichOneof("event") or "")
                if kinds == ["speech_event"]:
                    time.sleep(0.5)  # the rest of the audio is in
                    service.signal(15)
                if response.HasField("result"):
                    finals.append(response.result.text)
        release.set()
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, ended.value.details()
        assert "shutting down" in (ended.value.details() or "")
        assert kinds == ["speech_event", "speech_event", "result", "segment"], kinds
        assert (
            scoring.normalize(finals[0]).split()[:2]
            == scoring.normalize(clip.reference).split()[:2]
        )
        assert service.stop(timeout=20) == 0
    finally:
        service.kill()
