"""The long-audio tests' mesh settings, and helpers that look into its chunked jobs: their plan in
Redis, their RQ jobs, the workers' and transcribers' logs and calls, and the events sent."""

from __future__ import annotations

import time
from datetime import datetime

import grpc
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from devsupport import processes
from devsupport.mesh import Mesh
from sayit.common.v1 import audio_pb2, event_pb2, job_pb2, transcription_pb2
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from tests.support.speech import kinds

ENDED = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}
CHUNK_TARGET_SECONDS = 60
RETRIES = 2  # attempts = 3
RECOVERY_BOUND_SECONDS = 60.0
QUEUE_PAIRS = ("q1", "q2", "q3")


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


def as_scheduler(mesh: Mesh, addr: str, **options: int) -> grpc.Channel:
    """A channel to a transcriber presenting the scheduler's certificate (who may call it)."""
    return processes.channel(
        addr, mesh.tls_as("scheduler"), **{f"grpc.{k}": v for k, v in options.items()}
    )


def transcriber_calls(mesh: Mesh) -> int:
    """Transcriptions finished or stopped by every transcriber, once none is busy."""
    deadline = time.monotonic() + 120
    while _busy(mesh) and time.monotonic() < deadline:
        time.sleep(0.2)
    total = 0
    for name, process in mesh.processes.items():
        if name.startswith("transcriber") and process.alive():
            with as_scheduler(mesh, process.addr or "") as channel:
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
            with as_scheduler(mesh, process.addr or "") as channel:
                info = tpb_grpc.TranscriberServiceStub(channel).GetInfo(
                    tpb.GetInfoRequest(), timeout=5
                )
            if info.slots_busy:
                return True
    return False


def whole_file_text(mesh: Mesh, content: bytes, language: str) -> str:
    """The file transcribed in one piece (on the direct transcriber), for comparison."""
    with as_scheduler(
        mesh, mesh.processes["transcriber-direct"].addr or "", max_send_message_length=64 << 20
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
