"""The OpenAI-compatible audio routes against the real mesh, called with the official openai SDK
(and curl): Korean and English clips in every response format, word and segment timestamps,
streaming, translation, a long file that becomes a job, the wait limit and the body limit.

Each real transcription costs 1-2 s here, so the formats are fetched once per module and shared.
"""

from __future__ import annotations

import io
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import srt
import webvtt

from devsupport import audio, evalset, scoring
from devsupport import http_edge as edge_process
from devsupport.http_edge import HttpEdge
from devsupport.mesh import Mesh
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support.client_clips import SHORT_EN, SHORT_KO

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
# Error-rate bounds against the eval references (base model, short clean clips).
MAX_RATE = 0.2
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def clock(text: str) -> float:
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def sdk(edge: HttpEdge, key: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=edge.base_url + "/v1", api_key=key, **options)


@dataclass
class Outputs:
    clip: evalset.Clip
    # format -> the SDK's answer (str for text/srt/vtt, a model for json/verbose_json)
    by_format: dict[str, Any]

    @property
    def text(self) -> str:
        text: str = self.by_format["json"].text
        return text


@pytest.fixture(scope="module")
def client(http_edge: HttpEdge, http_key: str) -> Iterator[openai.OpenAI]:
    with sdk(http_edge, http_key, timeout=300) as client:
        yield client


@pytest.fixture(scope="module", params=[SHORT_KO, SHORT_EN], ids=["ko", "en"])
def outputs(request: pytest.FixtureRequest, client: openai.OpenAI) -> Outputs:
    """The clip transcribed in each response format (verbose_json with words and segments),
    with SayIt's `preset` extra set to fast (greedy decoding: these are ten transcriptions)."""
    clip = evalset.clip(request.param)
    answers: dict[str, Any] = {}
    for fmt in FORMATS:
        extra: dict[str, Any] = {"extra_body": {"preset": "fast"}}
        if fmt == "verbose_json":
            extra["timestamp_granularities"] = ["word", "segment"]
        answers[fmt] = client.audio.transcriptions.create(
            file=(clip.path.name, clip.read()),
            model="whisper-1",
            response_format=fmt,  # type: ignore[arg-type]
            **extra,
        )
    return Outputs(clip, answers)


def test_json_and_text_say_what_the_clip_says(outputs: Outputs) -> None:
    clip = outputs.clip
    answer = outputs.by_format["json"]
    assert isinstance(answer, openai.types.audio.Transcription)
    assert scoring.score(clip.reference, answer.text, clip.language).rate < MAX_RATE, answer.text
    assert answer.usage is not None and answer.usage.type == "duration"
    assert abs(answer.usage.seconds - clip.duration_seconds) < 0.1
    assert outputs.by_format["text"] == answer.text + "\n"
    assert (HANGUL.search(answer.text) is not None) == (clip.language == "ko")


def test_srt_and_vtt_hold_the_transcript_in_timed_cues(outputs: Outputs) -> None:
    words = outputs.text.split()
    cues = list(srt.parse(outputs.by_format["srt"]))
    assert cues, outputs.by_format["srt"]
    assert " ".join(c.content.replace("\n", " ") for c in cues).split() == words
    starts = [c.start.total_seconds() for c in cues]
    assert starts == sorted(starts)
    assert cues[-1].end.total_seconds() <= outputs.clip.duration_seconds + 0.5
    document = outputs.by_format["vtt"]
    assert document.startswith("WEBVTT")
    captions = webvtt.from_buffer(io.StringIO(document)).captions
    assert [clock(c.start) for c in captions] == pytest.approx(starts, abs=0.002)
    assert " ".join(c.text.replace("\n", " ") for c in captions).split() == words


def test_verbose_json_words_and_segments_with_timestamps(outputs: Outputs) -> None:
    clip = outputs.clip
    verbose = outputs.by_format["verbose_json"]
    assert isinstance(verbose, openai.types.audio.TranscriptionVerbose)
    assert verbose.language == {"ko": "korean", "en": "english"}[clip.language]
    assert abs(verbose.duration - clip.duration_seconds) < 0.1
    assert verbose.text == outputs.text
    segments = verbose.segments or []
    assert segments and " ".join(s.text.strip() for s in segments) == verbose.text
    assert [s.id for s in segments] == list(range(len(segments)))
    for segment in segments:
        assert 0.0 <= segment.start < segment.end <= clip.duration_seconds + 0.5
        assert segment.avg_logprob < 0.0 and 0.0 <= segment.no_speech_prob <= 1.0
    ends = [s.end for s in segments]
    assert ends == sorted(ends)
    words = verbose.words or []
    assert len(words) >= len(outputs.text.split()) * 0.8
    joined = "".join(w.word for w in words)
    assert joined.replace(" ", "") == verbose.text.replace(" ", "")
    previous = 0.0
    for word in words:
        assert previous - 0.01 <= word.start <= word.end <= clip.duration_seconds + 0.5
        previous = word.start


def test_stream_sends_deltas_in_order_then_the_text(client: openai.OpenAI) -> None:
    clip = evalset.clip(SHORT_KO)
    served = [m.id for m in client.models.list().data]
    assert "whisper-1" in served and len(served) == 2
    model = next(m for m in served if m != "whisper-1")
    stream = client.audio.transcriptions.create(
        file=(clip.path.name, clip.read()), model=model, stream=True, language="ko"
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and kinds.count("transcript.text.done") == 1
    deltas = events[:-1]
    assert deltas and all(k == "transcript.text.delta" for k in kinds[:-1])
    done = events[-1]
    assert done.text == "".join(d.delta for d in deltas)  # type: ignore[union-attr]
    assert scoring.score(clip.reference, done.text, "ko").rate < MAX_RATE  # type: ignore[union-attr]
    segments = [d.segment for d in deltas]  # type: ignore[union-attr]
    ids = [s["id"] for s in segments]
    assert ids == sorted(set(ids))
    assert [s["start"] for s in segments] == sorted(s["start"] for s in segments)


def test_translation_of_korean_is_english(client: openai.OpenAI) -> None:
    clip = evalset.clip(SHORT_KO)
    # SayIt's extra `preset`: greedy decoding (the accurate preset's fallbacks make translating
    # with the small test model slow).
    response = client.audio.translations.with_raw_response.create(
        file=(clip.path.name, clip.read()), model="whisper-1", extra_body={"preset": "fast"}
    )
    assert response.headers["x-sayit-job"].startswith("jobs/")
    translation = response.parse()
    assert isinstance(translation, openai.types.audio.Translation)
    assert len(re.findall(r"[A-Za-z]+", translation.text)) >= 5, translation.text
    assert not HANGUL.search(translation.text), translation.text


def test_curl_multipart(http_edge: HttpEdge, http_key: str, tmp_path: Path) -> None:
    clip = evalset.clip(SHORT_EN)
    headers = tmp_path / "headers.txt"
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail-with-body",
            "-D",
            str(headers),
            f"{http_edge.base_url}/v1/audio/transcriptions",
            "-H",
            f"Authorization: Bearer {http_key}",
            "-F",
            f"file=@{clip.path}",
            "-F",
            "model=whisper-1",
            "-F",
            "language=en",
            "-F",
            "response_format=text",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    head, text = headers.read_text(), result.stdout
    assert re.search(r"^content-type: text/plain", head, re.MULTILINE | re.IGNORECASE), head
    assert re.search(r"^x-sayit-job: jobs/[0-9a-f]{32}", head, re.MULTILINE | re.IGNORECASE)
    assert text.endswith("\n") and "\n" not in text.rstrip("\n")
    assert scoring.score(clip.reference, text, "en").rate < MAX_RATE, text


@pytest.fixture(scope="module")
def long_audio(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, float]:
    content, reference, seconds = audio.korean_long(min_seconds=34.0)
    path = tmp_path_factory.mktemp("long") / "long_ko.wav"
    path.write_bytes(content)
    return path, reference, seconds


def test_long_file_becomes_a_job_and_is_waited_for(
    client: openai.OpenAI, long_audio: tuple[Path, str, float], speech: pb_grpc.SpeechServiceStub
) -> None:
    path, reference, seconds = long_audio
    response = client.audio.transcriptions.with_raw_response.create(
        file=path, model="whisper-1", response_format="verbose_json", language="ko"
    )
    name = response.headers["x-sayit-job"]
    verbose = response.parse()
    assert isinstance(verbose, openai.types.audio.TranscriptionVerbose)
    assert verbose.duration > 30.0 and abs(verbose.duration - seconds) < 1.5
    assert scoring.score(reference, verbose.text, "ko").rate < 0.3, verbose.text
    assert (verbose.segments or [])[-1].end > 25.0
    job = speech.GetJob(pb.GetJobRequest(name=name)).job
    assert job.routing == job_pb2.ROUTING_QUEUED and job.state == job_pb2.JOB_STATE_SUCCEEDED
    assert job.transcript.text == verbose.text


@pytest.fixture(scope="module")
def small_edge(mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpEdge]:
    """An edge with a 4 MiB body limit, a 1 s wait for jobs, files over 64 KiB uploaded in
    chunks (UploadJob) and one event stream open at most."""
    edge = edge_process.start(
        tmp_path_factory.mktemp("small-edge"),
        mesh.gateway_addr,
        {
            "SAYIT_HTTP_MAX_BODY_BYTES": str(4 << 20),
            "SAYIT_HTTP_TRANSCRIPTION_WAIT_SECONDS": "1",
            "SAYIT_HTTP_INLINE_BYTES": str(64 << 10),
            "SAYIT_HTTP_MAX_OPEN_STREAMS": "1",
        },
        name="small-edge",
    )
    try:
        yield edge
    finally:
        edge.stop()


def test_a_job_still_running_after_the_wait_is_504_and_goes_on(
    small_edge: HttpEdge,
    http_key: str,
    long_audio: tuple[Path, str, float],
    speech: pb_grpc.SpeechServiceStub,
) -> None:
    path, _, _ = long_audio
    filename = "long_ko_wait.wav"
    client = sdk(small_edge, http_key, max_retries=2)
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(file=(filename, path.read_bytes()), model="whisper-1")
    error = caught.value
    assert error.status_code == 504
    assert error.code == "job_still_running"
    name = error.response.headers["x-sayit-job"]
    assert error.response.headers["location"] == f"/v1/jobs/{name.removeprefix('jobs/')}"
    assert error.response.headers["x-should-retry"] == "false"
    assert name in error.message
    # The job goes on after the edge stopped waiting (then this test cancels it).
    job = speech.GetJob(pb.GetJobRequest(name=name)).job
    assert job.state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING)
    assert job.filename == filename and job.routing == job_pb2.ROUTING_QUEUED
    speech.CancelJob(pb.CancelJobRequest(name=name))
    # x-should-retry: false kept the SDK (2 retries allowed) from submitting the file again.
    recent = speech.ListJobs(pb.ListJobsRequest(page_size=20)).jobs
    assert [j.name for j in recent if j.filename == filename] == [name]


def test_a_body_over_the_limit_is_413(small_edge: HttpEdge, http_key: str) -> None:
    big = b"\0" * (5 << 20)
    client = sdk(small_edge, http_key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(file=("big.wav", big), model="whisper-1")
    assert caught.value.status_code == 413
    assert caught.value.code == "body_too_large"
    # A chunked body (no Content-Length) is cut off once it passes the limit.
    boundary = "sayit-boundary"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        for _ in range(6):
            yield b"\0" * (1 << 20)
        yield f"\r\n--{boundary}--\r\n".encode()

    reply = httpx.post(
        f"{small_edge.base_url}/v1/audio/transcriptions",
        content=body(),
        headers={
            "Authorization": f"Bearer {http_key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        timeout=60,
    )
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"]["type"] == "invalid_request_error"


def test_a_caller_who_leaves_a_stream_ends_the_edges_call_not_the_job(
    small_edge: HttpEdge,
    http_key: str,
    long_audio: tuple[Path, str, float],
    speech: pb_grpc.SpeechServiceStub,
) -> None:
    path, _, _ = long_audio
    auth = {"Authorization": f"Bearer {http_key}"}
    with httpx.Client(base_url=small_edge.base_url, headers=auth, timeout=60) as http:
        with http.stream(
            "POST",
            "/v1/audio/transcriptions",
            files={"file": ("long_ko_leave.wav", path.read_bytes())},
            data={"model": "whisper-1", "stream": "true"},
        ) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            name = reply.headers["x-sayit-job"]
        # The caller has gone. The edge's only stream slot comes free (its WatchJob call ended):
        # another stream is served (this one answers 400, a text file is no audio), not 429.
        deadline = time.monotonic() + 30
        while True:
            again = http.post(
                "/v1/audio/transcriptions",
                files={"file": ("notes.wav", b"not audio at all\n" * 50)},
                data={"model": "whisper-1", "stream": "true"},
            )
            if again.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert again.status_code == 400, again.text
        assert again.json()["error"]["param"] == "file"
    # The job itself goes on (then this test cancels it).
    job = speech.GetJob(pb.GetJobRequest(name=name)).job
    assert job.state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING)
    speech.CancelJob(pb.CancelJobRequest(name=name))
