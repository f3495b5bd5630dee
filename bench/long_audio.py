"""Long audio at scale: how much a second worker speeds up one file, how long a chunk waits after
its worker or transcriber is SIGKILLed, and what cutting at pauses costs in accuracy.

    python -m bench.long_audio [--quick]

Runs its own mesh (a private Redis with AOF, two queue transcribers of 1 slot x 1 CPU thread,
each with a worker, with the services' default heartbeat, reconcile and chunk settings; the
result cache off so repeats are transcribed again) and prints a table and JSON:
- chunk-parallel ratio: wall time of the ~4-minute LJ001 clip (cut into 2 chunks) with 2 workers
  divided by the same with 1 worker (goal <= 0.55); and the raw engine's own ratio on the same
  chunks, measured in the same run (two 1-thread engines in new processes side by side ÷ one
  engine decoding the chunks in turn): what two cores give this machine's decoding, the floor
  the mesh's ratio is compared with (`chunk_parallel_vs_engine`);
- recovery: seconds from SIGKILL of the worker (or the transcriber) holding a chunk until
  another worker starts that chunk (median of several trials; goal <= 60);
- boundary error (not in --quick): error rate of the merged transcript minus that of the same
  file transcribed whole, in points, per language (goal <= 1).

--quick (the test suite's run) keeps every figure but shrinks the work: the clip's first 60 s
in 2 chunks of 30 s, the tests' faster heartbeat and reconcile settings, one trial each.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from bench import raw_engine
from bench.engine_process import EngineProcess
from bench.figures import Figure, median
from bench.report import paired_ratios
from devsupport import audio, evalset, processes, scoring
from devsupport.mesh import Mesh, RedisServer
from sayit.common.v1 import audio_pb2, transcription_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from services.common import audio as audio_io
from services.common.audio import SAMPLE_RATE
from services.transcriber.engine import Engine

SECTION = "long_audio"
LONG_CLIP = "en_long_ljspeech_LJ001"
PAIRS = ("q1", "q2")
ENV = {
    # The services' defaults, not the tests' faster ones.
    "SAYIT_WORKER_HEARTBEAT_SECONDS": "5",
    "SAYIT_WORKER_MAINTENANCE_SECONDS": "10",
    "SAYIT_RECONCILE_SECONDS": "5",
    "SAYIT_RESULT_CACHE_TTL_SECONDS": "0",
}
QUICK_ENV = {
    **ENV,
    # The tests' faster settings, and chunks that fit the shorter file.
    "SAYIT_WORKER_HEARTBEAT_SECONDS": "2",
    "SAYIT_WORKER_MAINTENANCE_SECONDS": "3",
    "SAYIT_RECONCILE_SECONDS": "2",
    "SAYIT_CHUNK_TARGET_SECONDS": "30",
    "SAYIT_CHUNK_MIN_SECONDS": "30",
}
QUICK_RATIO_SECONDS = 60.0
# One chunk, yet queued: longer than the 30 s direct limit, shorter than a chunk.
RECOVERY_SECONDS, QUICK_RECOVERY_SECONDS = 90.0, 32.0


def _stub(mesh: Mesh) -> pb_grpc.SpeechServiceStub:
    channel = mesh.gateway_channel(**{"grpc.max_send_message_length": 64 << 20})
    return pb_grpc.SpeechServiceStub(channel)


def _request(content: bytes, language: str) -> pb.CreateJobRequest:
    return pb.CreateJobRequest(
        audio=audio_pb2.Audio(content=content),
        config=transcription_pb2.TranscriptionConfig(language_code=language),
    )


def _transcribe(
    stub: pb_grpc.SpeechServiceStub, content: bytes, language: str
) -> tuple[float, str]:
    """Seconds from submission to the completed event, and the transcript."""
    started = time.monotonic()
    job = stub.CreateJob(_request(content, language), timeout=60).job
    for reply in stub.WatchJob(pb.WatchJobRequest(name=job.name), timeout=1800):
        if reply.event.HasField("completed"):
            return time.monotonic() - started, reply.event.completed.transcript.text
        if reply.event.HasField("failed") or reply.event.HasField("cancelled"):
            raise RuntimeError(f"{job.name} did not complete: {reply.event}")
    raise RuntimeError(f"{job.name}: the event stream ended early")


def _whole(mesh: Mesh, content: bytes, language: str) -> str:
    """The file transcribed in one piece on the direct transcriber."""
    # As the scheduler: the transcriber answers only it and the workers.
    with processes.channel(
        mesh.processes["transcriber-direct"].addr or "",
        mesh.tls_as("scheduler"),
        **{"grpc.max_send_message_length": 64 << 20},
    ) as channel:
        request = tpb.TranscribeStreamRequest(
            audio=audio_pb2.Audio(content=content),
            config=transcription_pb2.TranscriptionConfig(language_code=language),
        )
        for reply in tpb_grpc.TranscriberServiceStub(channel).TranscribeStream(
            request, timeout=1800
        ):
            if reply.HasField("transcript"):
                return reply.transcript.text
    raise RuntimeError("no transcript")


def _log_time(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def _chunk_starts(mesh: Mesh, job_id: str) -> list[tuple[str, float]]:
    starts = []
    for pair in PAIRS:
        for event in mesh.log_events(f"worker-{pair}"):
            if event.get("event") == "chunk_started" and event.get("job_id") == job_id:
                starts.append((f"worker-{pair}", _log_time(event)))
    return sorted(starts, key=lambda start: start[1])


def _wait_running(mesh: Mesh, job_id: str, timeout: float = 120) -> str:
    """The pair transcribing the job's (only) chunk, once its transcriber is decoding."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pair in PAIRS:
            if any(
                e.get("event") == "transcription_started" and e.get("job_id") == job_id
                for e in mesh.log_events(f"transcriber-{pair}")
            ):
                return pair
        time.sleep(0.1)
    raise TimeoutError(f"jobs/{job_id} never started")


def _wait_worker_registered(mesh: Mesh, pair: str, timeout: float = 120) -> None:
    """Until the (restarted) worker process has registered with RQ."""
    name = f"worker-{pair}"
    deadline = time.monotonic() + timeout
    while mesh.rq_worker(name) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not register")
        time.sleep(0.2)


def _recovery_trial(
    mesh: Mesh, stub: pb_grpc.SpeechServiceStub, content: bytes, what: str
) -> float:
    """Submit a one-chunk job, SIGKILL the worker (or transcriber) transcribing it, and time
    until the other worker starts the chunk; then cancel it and bring the victim back."""
    job = stub.CreateJob(_request(content, "ko"), timeout=60).job
    job_id = job.name.removeprefix("jobs/")
    pair = _wait_running(mesh, job_id)
    victim = f"{what}-{pair}"
    killed_at = time.time()
    mesh.processes[victim].kill()
    deadline = time.monotonic() + 180
    while not (later := [s for s in _chunk_starts(mesh, job_id) if s[1] > killed_at]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nobody picked jobs/{job_id} up after {victim} was killed")
        time.sleep(0.1)
    stub.CancelJob(pb.CancelJobRequest(name=job.name), timeout=30)
    mesh.restart(victim)
    _wait_worker_registered(mesh, pair)
    return later[0][1] - killed_at


def _ratio_file(quick: bool) -> tuple[bytes, float]:
    """The file the chunk-parallel ratio is measured on, and its seconds."""
    clip = evalset.clip(LONG_CLIP)
    if not quick:
        return clip.read(), clip.duration_seconds
    samples = audio_io.decode(clip.read(), clip.path.name)[: int(QUICK_RATIO_SECONDS * SAMPLE_RATE)]
    return audio_io.encode_wav(samples), len(samples) / SAMPLE_RATE


def _planned_cuts(mesh: Mesh) -> list[float]:
    """Where the scheduler cut the last job it planned (seconds)."""
    planned = [e for e in mesh.log_events("scheduler") if e.get("event") == "job_planned"]
    return [float(cut) for cut in planned[-1]["cuts"]]


def _decode_seconds(engine: Engine, content: bytes) -> float:
    return raw_engine.transcribe(engine, content, "en").seconds


def _engine_ratio(content: bytes, cuts: list[float], trials: int) -> tuple[float, list[float]]:
    """The raw engine's chunk-parallel ratio on the mesh's chunks: two 1-thread engines, each in
    a new process, decoding the chunks side by side ÷ one of them decoding all chunks in turn
    (median of paired ratios, the order alternating); and each pair's seconds."""
    samples = audio_io.decode(content)
    bounds = [0, *(round(c * SAMPLE_RATE) for c in cuts), len(samples)]
    chunks = [audio_io.encode_wav(samples[a:b]) for a, b in itertools.pairwise(bounds)]
    with EngineProcess(1) as first, EngineProcess(1) as second, ThreadPoolExecutor(2) as pool:
        engines = (first, second)
        for engine in engines:  # first decode of a process is slower; not part of any pair
            engine.run(_decode_seconds, chunks[-1])
        alone, side_by_side = [], []
        for trial in range(trials):
            for parallel in (trial % 2 == 1, trial % 2 == 0):
                started = time.monotonic()
                if parallel:
                    futures = [
                        pool.submit(engines[i % 2].run, _decode_seconds, chunk)
                        for i, chunk in enumerate(chunks)
                    ]
                    for future in futures:
                        future.result()
                    side_by_side.append(time.monotonic() - started)
                else:
                    for chunk in chunks:
                        first.run(_decode_seconds, chunk)
                    alone.append(time.monotonic() - started)
    return median(paired_ratios(side_by_side, alone)), alone + side_by_side


def _ratio(
    mesh: Mesh, stub: pb_grpc.SpeechServiceStub, trials: int, quick: bool
) -> tuple[list[Figure], str]:
    content, file_seconds = _ratio_file(quick)
    one, two, text = [], [], ""
    for _ in range(trials):
        mesh.processes["worker-q2"].stop()
        one.append(_transcribe(stub, content, "en")[0])
        mesh.restart("worker-q2")
        _wait_worker_registered(mesh, "q2")
        seconds, text = _transcribe(stub, content, "en")
        two.append(seconds)
    ratio = median(two) / median(one)
    cuts = _planned_cuts(mesh)
    engine_ratio, engine_samples = _engine_ratio(content, cuts, trials)
    return [
        Figure(
            SECTION,
            "chunk_parallel_ratio",
            round(ratio, 3),
            "ratio",
            baseline=f"the same {file_seconds:.0f} s file with 1 worker x 1 thread",
            goal="<= 0.55",
            samples=tuple(round(x, 2) for x in one + two),
            note="2 workers x 1 thread; samples: 1-worker walls, then 2-worker walls (s)",
        ),
        Figure(
            SECTION,
            "chunk_parallel_engine_ratio",
            round(engine_ratio, 3),
            "ratio",
            baseline="one raw engine (1 thread) decoding the same chunks in turn",
            samples=tuple(round(x, 2) for x in engine_samples),
            note=f"two raw engines in new processes, one chunk each (cuts {cuts}); median of "
            "paired ratios; samples: in turn, then side by side (s)",
        ),
        Figure(
            SECTION,
            "chunk_parallel_vs_engine",
            round(ratio / engine_ratio, 3),
            "ratio",
            baseline="the raw engine's chunk-parallel ratio, same run",
            note="how far the mesh's ratio is from what two cores give the engine itself",
        ),
        Figure(SECTION, "wall_1_worker", round(median(one), 2), "s", samples=tuple(one)),
        Figure(SECTION, "wall_2_workers", round(median(two), 2), "s", samples=tuple(two)),
    ], text


def _boundary(mesh: Mesh, stub: pb_grpc.SpeechServiceStub, english: str) -> list[Figure]:
    lj = evalset.clip(LONG_CLIP)
    korean, korean_reference, _ = audio.korean_long(200.0)
    cases = [
        ("en", lj.reference, english, lj.read()),
        ("ko", korean_reference, _transcribe(stub, korean, "ko")[1], korean),
    ]
    figures = []
    for language, reference, merged, content in cases:
        whole = _whole(mesh, content, language)
        merged_rate = scoring.score(reference, merged, language).rate
        whole_rate = scoring.score(reference, whole, language).rate
        metric = "CER" if language == "ko" else "WER"
        figures.append(
            Figure(
                SECTION,
                f"boundary_error_delta_{language}",
                round(100 * (merged_rate - whole_rate), 2),
                "points",
                goal="<= 1",
                note=f"{metric} merged {merged_rate:.4f} vs whole file {whole_rate:.4f}",
            )
        )
    return figures


def run(quick: bool) -> list[Figure]:
    directory = Path(tempfile.mkdtemp(prefix="sayit-bench-long-"))
    redis_server = RedisServer(directory / "redis", appendonly=True).start()
    env = QUICK_ENV if quick else ENV
    mesh = Mesh(
        directory, redis_server, queue_transcribers=len(PAIRS), direct_slots=1, extra_env=env
    )
    try:
        mesh.build().start()
        stub = _stub(mesh)
        figures, english = _ratio(mesh, stub, trials=1 if quick else 3, quick=quick)
        one_chunk, _, _ = audio.korean_long(QUICK_RECOVERY_SECONDS if quick else RECOVERY_SECONDS)
        for what, trials in (("worker", 1 if quick else 5), ("transcriber", 1 if quick else 3)):
            samples = [_recovery_trial(mesh, stub, one_chunk, what) for _ in range(trials)]
            figures.append(
                Figure(
                    SECTION,
                    f"recovery_after_{what}_sigkill",
                    round(median(samples), 2),
                    "s",
                    goal="<= 60",
                    samples=tuple(round(s, 2) for s in samples),
                    note="SIGKILL to another worker starting the chunk; heartbeat "
                    f"{env['SAYIT_WORKER_HEARTBEAT_SECONDS']} s, maintenance "
                    f"{env['SAYIT_WORKER_MAINTENANCE_SECONDS']} s, reconcile "
                    f"{env['SAYIT_RECONCILE_SECONDS']} s",
                )
            )
        if not quick:
            figures += _boundary(mesh, stub, english)
        return figures
    finally:
        mesh.stop()
        redis_server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials, no accuracy run")
    args = parser.parse_args(argv)
    figures = run(args.quick)
    print(f"{'figure':<36} {'value':>9}  {'unit':<7} {'goal':<8} note")
    for f in figures:
        print(f"{f.name:<36} {f.value:>9}  {f.unit:<7} {f.goal:<8} {f.note}")
    print(json.dumps([f.as_dict() for f in figures], ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
