"""Long audio at scale, end to end: one file cut into chunks across several workers and merged;
bounded recovery when a worker or its transcriber is SIGKILLed mid-chunk; a poison chunk that
fails its job after bounded attempts; a Redis restart (AOF) that loses nothing; and repeated
submissions served from the result cache, shared while in flight, or named by an idempotency
key. One mesh for the module: a private Redis with AOF, three queue workers, the real model."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import grpc
import numpy as np
import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from devsupport import audio, evalset, scoring
from devsupport.mesh import Mesh, RedisServer
from sayit.common.v1 import audio_pb2, event_pb2, job_pb2, transcription_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as spb
from sayit.scheduler.v1 import scheduler_service_pb2_grpc as spb_grpc
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from services.common.audio import SAMPLE_RATE, decode, probe
from tests.support.speech import audio_request, create_job, get, kinds, rpc_error, wait_state, watch

pytestmark = [pytest.mark.model, pytest.mark.redis]

ENDED = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}
CHUNK_TARGET_SECONDS = 60
RETRIES = 2  # attempts = 3
RECOVERY_BOUND_SECONDS = 60.0
QUEUE_PAIRS = ("q1", "q2", "q3")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    directory: Path = tmp_path_factory.mktemp("long-audio")
    redis_server = RedisServer(directory / "redis", appendonly=True).start()
    mesh = Mesh(
        directory,
        redis_server,
        queue_transcribers=len(QUEUE_PAIRS),
        direct_slots=1,
        extra_env={
            "SAYIT_CHUNK_TARGET_SECONDS": str(CHUNK_TARGET_SECONDS),
            "SAYIT_CHUNK_MIN_SECONDS": "90",
            "SAYIT_JOB_RETRIES": str(RETRIES),
            "SAYIT_RESULT_CACHE_TTL_SECONDS": "3600",
        },
    )
    mesh.build().start()
    try:
        yield mesh
    finally:
        mesh.stop()
        redis_server.stop()


@pytest.fixture(scope="module")
def speech(mesh: Mesh) -> pb_grpc.SpeechServiceStub:
    return pb_grpc.SpeechServiceStub(
        grpc.insecure_channel(
            mesh.gateway_addr, options=[("grpc.max_send_message_length", 64 << 20)]
        )
    )


# --- helpers -------------------------------------------------------------------------------


def job_id(name: str) -> str:
    return name.removeprefix("jobs/")


def rq_job(mesh: Mesh, name: str, index: int) -> Job:
    return Job.fetch(
        f"{job_id(name)}-{index}", connection=mesh.redis.client(), serializer=JSONSerializer
    )


def rq_status(mesh: Mesh, name: str, index: int, timeout: float = 30) -> str:
    """The chunk's RQ status, once it is enqueued (the plan is recorded just before)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(rq_job(mesh, name, index).get_status().value)
        except NoSuchJobError:
            assert time.monotonic() < deadline, f"chunk {index} of {name} was never enqueued"
            time.sleep(0.1)


def plan(mesh: Mesh, name: str) -> list[tuple[float, float]]:
    """The job's chunks as recorded in Redis: (offset, duration) each."""
    chunks = mesh.redis.client().hgetall(f"sayit:job:{job_id(name)}:chunks")
    count = sum(1 for key in chunks if key.startswith(b"off:"))
    return [
        (float(chunks[f"off:{i}".encode()]), float(chunks[f"dur:{i}".encode()]))
        for i in range(count)
    ]


def wait_planned(mesh: Mesh, name: str, timeout: float = 60) -> list[tuple[float, float]]:
    deadline = time.monotonic() + timeout
    while not (pieces := plan(mesh, name)):
        assert time.monotonic() < deadline, "the job was never cut into chunks"
        time.sleep(0.1)
    return pieces


def log_time(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def chunk_starts(mesh: Mesh, name: str, index: int) -> list[tuple[str, float]]:
    """(worker, time) of every start of a chunk, from the workers' logs."""
    starts = []
    for pair in QUEUE_PAIRS:
        for event in mesh.log_events(f"worker-{pair}"):
            if (
                event.get("event") == "chunk_started"
                and event.get("job_id") == job_id(name)
                and event.get("chunk") == index
            ):
                starts.append((f"worker-{pair}", log_time(event)))
    return sorted(starts, key=lambda s: s[1])


def wait_chunk_running(mesh: Mesh, name: str, index: int, timeout: float = 120) -> str:
    """The worker transcribing the chunk, once its transcriber has produced a segment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            worker = rq_job(mesh, name, index).worker_name if plan(mesh, name) else None
        except NoSuchJobError:  # planned, not yet enqueued
            worker = None
        if worker:
            holder = mesh.process_of(worker)
            pair = holder.removeprefix("worker-")
            segments = [
                e
                for e in mesh.log_events(f"transcriber-{pair}")
                if e.get("event") == "transcription_started" and e.get("job_id") == job_id(name)
            ]
            if segments and rq_status(mesh, name, index) == "started":
                return holder
        time.sleep(0.2)
    raise AssertionError(f"chunk {index} of {name} never started")


def transcriber_calls(mesh: Mesh) -> int:
    """Transcriptions finished or stopped by every transcriber, once none is busy."""
    deadline = time.monotonic() + 120
    while _busy(mesh) and time.monotonic() < deadline:
        time.sleep(0.2)
    total = 0
    for name, process in mesh.processes.items():
        if name.startswith("transcriber") and process.alive():
            with grpc.insecure_channel(process.addr or "") as channel:
                info = tpb_grpc.TranscriberServiceStub(channel).GetInfo(
                    tpb.GetInfoRequest(), timeout=5
                )
            total += info.calls_completed_total + info.calls_cancelled_total
    return total


def _busy(mesh: Mesh) -> bool:
    """Some job has not ended, or some transcriber is still winding down."""
    client = mesh.redis.client()
    for member in client.smembers("sayit:active"):
        if client.hget(f"sayit:job:{member.decode()}", "state") in (b"QUEUED", b"RUNNING"):
            return True
    for name, process in mesh.processes.items():
        if name.startswith("transcriber") and process.alive():
            with grpc.insecure_channel(process.addr or "") as channel:
                info = tpb_grpc.TranscriberServiceStub(channel).GetInfo(
                    tpb.GetInfoRequest(), timeout=5
                )
            if info.slots_busy:
                return True
    return False


def whole_file_text(mesh: Mesh, content: bytes, language: str) -> str:
    """The file transcribed in one piece (on the direct transcriber), for comparison."""
    with grpc.insecure_channel(
        mesh.processes["transcriber-direct"].addr or "",
        options=[("grpc.max_send_message_length", 64 << 20)],
    ) as channel:
        stub = tpb_grpc.TranscriberServiceStub(channel)
        request = tpb.TranscribeStreamRequest(
            audio=audio_pb2.Audio(content=content),
            config=transcription_pb2.TranscriptionConfig(language_code=language),
        )
        for response in stub.TranscribeStream(request, timeout=600):
            if response.HasField("transcript"):
                return response.transcript.text
    raise AssertionError("no transcript")


def check_history(events: list[event_pb2.JobEvent]) -> None:
    """One clean history: contiguous sequences, progress never backwards, one terminal event,
    no segment twice."""
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    names = kinds(events)
    assert names[0] == "accepted"
    assert sum(n in ("completed", "failed", "cancelled") for n in names) == 1
    assert names[-1] in ("completed", "failed", "cancelled")
    progress = [e.progress for e in events if e.HasField("progress")]
    assert [p.fraction for p in progress] == sorted(p.fraction for p in progress)
    assert [p.chunks_done for p in progress] == sorted(p.chunks_done for p in progress)
    starts = [(e.segment.start_seconds, e.segment.text) for e in events if e.HasField("segment")]
    assert len(starts) == len(set(starts)), "a segment was sent twice"


# --- chunk-parallel transcription ------------------------------------------------------------


def test_long_file_is_cut_at_pauses_spread_over_workers_and_merged(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    content, reference, seconds = audio.korean_long(185.0)
    assert seconds >= 180
    with ThreadPoolExecutor(1) as pool:
        whole = pool.submit(whole_file_text, mesh, content, "ko")
        job = create_job(speech, content, "ko")
        events = watch(speech, job.name)
        whole_text = whole.result()
    check_history(events)
    assert kinds(events)[-1] == "completed"
    final = get(speech, job.name)
    transcript = final.transcript
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED and not transcript.from_cache

    # Cut into chunks near the target length, each cut in a pause: the 100 ms around it is
    # background noise, far below the speech level (devsupport.audio.TARGET_RMS).
    pieces = plan(mesh, job.name)
    assert len(pieces) >= 3 and final.progress.chunks_total == len(pieces)
    assert final.progress.chunks_done == len(pieces)
    assert sum(d for _, d in pieces) == pytest.approx(seconds, abs=0.5)
    samples = decode(content)
    for offset, _ in pieces[1:]:
        at = int(offset * SAMPLE_RATE)
        around = samples[at - SAMPLE_RATE // 20 : at + SAMPLE_RATE // 20]
        level = float(np.sqrt(np.mean(around**2)))
        assert level < audio.TARGET_RMS / 3, f"cut at {offset:.2f} s is in speech ({level:.4f})"

    # Several workers transcribed it.
    holders = {
        mesh.process_of(rq_job(mesh, job.name, i).worker_name or "") for i in range(len(pieces))
    }
    print(f"chunks {[(round(o, 1), round(d, 1)) for o, d in pieces]} on workers {sorted(holders)}")
    assert len(holders) >= 2

    # Segments streamed while chunks ran, on the whole file's clock; the transcript is the
    # segments in order, renumbered, with increasing timestamps.
    streamed = [e.segment for e in events if e.HasField("segment")]
    assert kinds(events).index("segment") < kinds(events).index("completed")
    assert max(s.start_seconds for s in streamed) > pieces[-1][0]
    segments = list(transcript.segments)
    assert [s.id for s in segments] == list(range(len(segments)))
    assert all(s.end_seconds >= s.start_seconds for s in segments)
    assert [s.start_seconds for s in segments] == sorted(s.start_seconds for s in segments)
    assert segments[-1].end_seconds <= seconds + 0.5
    assert sorted(s.text for s in streamed) == sorted(s.text for s in segments)
    assert transcript.audio_duration_seconds == pytest.approx(seconds, abs=0.5)
    assert transcript.language_code == "ko"

    # No words lost or doubled at the cuts: within a point of transcribing it whole.
    merged = scoring.score(reference, transcript.text, "ko").rate
    one_piece = scoring.score(reference, whole_text, "ko").rate
    print(f"CER merged {merged:.4f}, whole {one_piece:.4f}")
    assert merged <= one_piece + 0.01


def test_cancelling_a_chunked_job_stops_every_chunk(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    lj = evalset.clip("en_long_ljspeech_LJ001")
    job = create_job(speech, lj.read(), "en")
    pieces = wait_planned(mesh, job.name)
    assert len(pieces) >= 4  # more chunks than workers: some wait in the queue
    wait_chunk_running(mesh, job.name, 0)
    reply = speech.CancelJob(pb.CancelJobRequest(name=job.name), timeout=10)
    assert reply.job.state == job_pb2.JOB_STATE_CANCELLED
    deadline = time.monotonic() + 15
    statuses: list[str] = []
    while time.monotonic() < deadline:
        statuses = [rq_status(mesh, job.name, i) for i in range(len(pieces))]
        if all(s in ("stopped", "canceled", "finished") for s in statuses):
            break
        time.sleep(0.2)
    assert all(s in ("stopped", "canceled", "finished") for s in statuses), statuses
    assert "canceled" in statuses  # queued chunks never ran
    assert "stopped" in statuses  # running chunks were stopped
    never_ran = [i for i, s in enumerate(statuses) if s == "canceled"]
    assert all(not chunk_starts(mesh, job.name, i) for i in never_ran)
    assert kinds(watch(speech, job.name))[-1] == "cancelled"
    client = mesh.redis.client()
    assert not any(
        client.exists(f"sayit:job:{job_id(job.name)}:audio:{i}") for i in range(len(pieces))
    )


# --- bounded recovery ------------------------------------------------------------------------


def _recover_after_kill(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh, what: str, start: int
) -> None:
    content, reference, _ = audio.korean_long(100.0, start=start)
    job = create_job(speech, content, "ko")
    assert len(wait_planned(mesh, job.name)) == 2  # two chunks, three workers: one is free
    holder = wait_chunk_running(mesh, job.name, 0)
    victim = holder if what == "worker" else holder.replace("worker-", "transcriber-")
    killed_at = time.time()
    mesh.processes[victim].kill()  # SIGKILL (and its work horse, for a worker)
    try:
        final = wait_state(speech, job.name, ENDED, timeout=240)
        assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
        starts = chunk_starts(mesh, job.name, 0)
        again = [(w, t) for w, t in starts if t > killed_at]
        assert again and again[0][0] != holder, starts
        recovery = again[0][1] - killed_at
        print(f"{what} killed: chunk 0 picked up by {again[0][0]} {recovery:.1f} s later")
        assert recovery <= RECOVERY_BOUND_SECONDS
        check_history(watch(speech, job.name))
        assert scoring.score(reference, final.transcript.text, "ko").rate < 0.2
        if what == "transcriber":
            # Its worker took nothing while its transcriber was down.
            log = mesh.log_events(holder)
            assert any(e.get("event") == "worker_paused" and log_time(e) > killed_at for e in log)
            assert not [
                e for e in log if e.get("event") == "chunk_started" and log_time(e) > killed_at
            ]
    finally:
        mesh.restart(victim)
    if what == "worker":
        # Restarted, it registers at once under a name of its own, without waiting for its dead
        # predecessor's registration to expire.
        assert mesh.rq_worker(victim) is not None, "the restarted worker did not register"


def test_a_chunk_recovers_from_a_killed_worker(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    _recover_after_kill(speech, mesh, "worker", start=1)


def test_a_chunk_recovers_from_a_killed_transcriber(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    _recover_after_kill(speech, mesh, "transcriber", start=5)


def test_a_poison_chunk_fails_its_job_after_bounded_attempts(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    """A chunk that kills its transcriber every time (here: the test kills any transcriber
    that starts it) fails the job after 1 + retries attempts; another job goes through."""
    poison_audio, _, _ = audio.korean_long(40.0, start=3)
    poison = create_job(speech, poison_audio, "ko")
    other_clip = evalset.clip("en_jfk")
    other = create_job(speech, other_clip.read(), "en")
    kills: list[str] = []
    stop = threading.Event()

    def killer() -> None:
        seen: set[tuple[str, str]] = set()
        while not stop.is_set():
            for pair in QUEUE_PAIRS:
                name = f"transcriber-{pair}"
                process = mesh.processes[name]
                for event in mesh.log_events(name):
                    key = (name, event.get("timestamp", ""))
                    if (
                        event.get("event") == "transcription_started"
                        and event.get("job_id") == job_id(poison.name)
                        and key not in seen
                    ):
                        seen.add(key)
                        if process.alive():
                            os.killpg(process.pid, signal.SIGKILL)
                            process.process.wait()  # type: ignore[union-attr]
                            kills.append(name)
                            threading.Thread(target=mesh.restart, args=(name,)).start()
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        assert wait_state(speech, other.name, ENDED, 120).state == job_pb2.JOB_STATE_SUCCEEDED
        final = wait_state(speech, poison.name, ENDED, 180)
    finally:
        stop.set()
        thread.join()
    assert final.state == job_pb2.JOB_STATE_FAILED, final
    print(f"poison job failed after {len(kills)} attempts: {final.error.message}")
    assert len(kills) == RETRIES + 1
    assert "transcriber stopped while transcribing it" in final.error.message
    assert f"every attempt ({RETRIES + 1}" in final.error.message
    assert final.error.code == grpc.StatusCode.INTERNAL.value[0]
    check_history(watch(speech, poison.name))
    assert "platforms" not in get(speech, other.name).transcript.text  # its own text, not mixed
    assert (
        scoring.score(other_clip.reference, get(speech, other.name).transcript.text, "en").rate
        < 0.2
    )
    for name in {*kills}:  # every killed transcriber is back
        mesh.processes[name].wait_serving()


# --- durability ------------------------------------------------------------------------------


def test_restarting_redis_loses_no_job(speech: pb_grpc.SpeechServiceStub, mesh: Mesh) -> None:
    finished = create_job(speech, evalset.clip("en_pv_leopard_test").read(), "en")
    assert wait_state(speech, finished.name, ENDED, 120).state == job_pb2.JOB_STATE_SUCCEEDED
    finished_before = get(speech, finished.name)
    # Two long jobs: more chunks than workers, so some run and some wait.
    files = {start: audio.korean_long(100.0, start=start) for start in (7, 9)}
    long_jobs = {
        create_job(speech, content, "ko").name: start for start, (content, _, _) in files.items()
    }
    running = next(iter(long_jobs))
    wait_chunk_running(mesh, running, 0)
    statuses = [
        rq_status(mesh, name, i) for name in long_jobs for i in range(len(wait_planned(mesh, name)))
    ]
    assert "started" in statuses and "queued" in statuses, statuses
    listed_before = {j.name for j in speech.ListJobs(pb.ListJobsRequest(page_size=100)).jobs}
    # A subscriber following a running job across the restart.
    with ThreadPoolExecutor(1) as pool:
        followed = pool.submit(watch, speech, running)
        mesh.redis.stop()
        error = rpc_error(speech.GetJob, pb.GetJobRequest(name=finished.name), timeout=10)
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        time.sleep(3.0)  # down for a while: workers, horses and watchers wait it out
        mesh.redis.start()
        assert get(speech, finished.name) == finished_before
        for name, start in long_jobs.items():
            final = wait_state(speech, name, ENDED, timeout=240)
            assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
            events = watch(speech, name)
            check_history(events)
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))
            reference = files[start][1]
            assert scoring.score(reference, final.transcript.text, "ko").rate < 0.2
        assert followed.result(timeout=60) == watch(speech, running)
    listed_after = {j.name for j in speech.ListJobs(pb.ListJobsRequest(page_size=100)).jobs}
    assert listed_after == listed_before
    assert all(mesh.processes[f"worker-{pair}"].alive() for pair in QUEUE_PAIRS)


# --- result cache, in-flight sharing, idempotency keys ---------------------------------------


def test_repeated_audio_is_served_from_the_cache(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    clip = evalset.clip("ko_deeply_sub100111a00054")
    first = speech.Transcribe(pb.TranscribeRequest(**audio_request(clip.read(), "ko")), timeout=120)
    assert not first.transcript.from_cache
    calls = transcriber_calls(mesh)
    # The same audio and effective config ("KO" is "ko"): no transcriber is called again.
    again = speech.Transcribe(pb.TranscribeRequest(**audio_request(clip.read(), "KO")), timeout=120)
    assert again.transcript.from_cache and again.transcript.text == first.transcript.text
    assert again.job_name != first.job_name
    assert get(speech, again.job_name).state == job_pb2.JOB_STATE_SUCCEEDED
    assert kinds(watch(speech, again.job_name)) == ["accepted", "completed"]
    assert transcriber_calls(mesh) == calls
    # Another config is another result.
    request = pb.TranscribeRequest(**audio_request(clip.read(), "ko"))
    request.config.word_timestamps = True
    other = speech.Transcribe(request, timeout=120)
    assert not other.transcript.from_cache and other.transcript.segments[0].words
    assert transcriber_calls(mesh) == calls + 1
    # Another tenant never gets this tenant's result (the scheduler names tenants).
    scheduler = spb_grpc.SchedulerServiceStub(grpc.insecure_channel(mesh.scheduler_addr))
    reply = scheduler.SubmitJob(
        spb.SubmitJobRequest(
            tenant="other",
            wait_if_short=True,
            audio_duration_seconds=probe(clip.read()).duration_seconds,
            **audio_request(clip.read(), "ko"),
        ),
        timeout=120,
    )
    assert reply.job.state == job_pb2.JOB_STATE_SUCCEEDED and not reply.job.transcript.from_cache


def test_identical_submissions_share_one_running_job(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    content, _, _ = audio.korean_long(40.0, start=11)
    calls = transcriber_calls(mesh)
    with ThreadPoolExecutor(3) as pool:
        jobs = list(pool.map(lambda _: create_job(speech, content, "ko"), range(3)))
    assert len({j.name for j in jobs}) == 1
    final = wait_state(speech, jobs[0].name, ENDED, 120)
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED
    assert transcriber_calls(mesh) == calls + 1
    # Once it has finished, the same audio comes from the cache as a job of its own.
    later = create_job(speech, content, "ko")
    assert later.name != final.name and later.transcript.from_cache
    # Another tenant gets a job of its own.
    scheduler = spb_grpc.SchedulerServiceStub(grpc.insecure_channel(mesh.scheduler_addr))
    reply = scheduler.SubmitJob(
        spb.SubmitJobRequest(
            tenant="other",
            routing_policy=spb.ROUTING_POLICY_QUEUE,
            audio_duration_seconds=probe(content).duration_seconds,
            **audio_request(content, "ko"),
        ),
        timeout=30,
    )
    assert reply.job.name not in (final.name, later.name)


def test_the_same_idempotency_key_returns_the_same_job(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    clip = evalset.clip("en_fleurs_000")

    def create(content: bytes, key: str) -> job_pb2.TranscriptionJob:
        request = pb.CreateJobRequest(idempotency_key=key, **audio_request(content, "en"))  # type: ignore[arg-type]
        return speech.CreateJob(request, timeout=30).job

    calls = transcriber_calls(mesh)
    first = create(clip.read(), "order-17")
    assert create(clip.read(), "order-17").name == first.name  # while it runs
    assert wait_state(speech, first.name, ENDED, 120).state == job_pb2.JOB_STATE_SUCCEEDED
    assert create(clip.read(), "order-17").name == first.name  # and once it has ended
    assert transcriber_calls(mesh) == calls + 1
    error = rpc_error(
        speech.CreateJob,
        pb.CreateJobRequest(
            idempotency_key="order-17", **audio_request(evalset.clip("en_jfk").read(), "en")
        ),  # type: ignore[arg-type]
        timeout=30,
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "idempotency_key" in error.details()
    assert create(clip.read(), "order-18").name != first.name
