"""Peak resident memory of the gateway and the scheduler while several callers each send a large
WAV of real speech at once, streamed (`UploadJob`) or inline (`CreateJob`), through planning.

Not part of `make bench` (it needs ~2 GB of Redis and minutes); run it by hand:

    .venv/bin/python -m bench.upload_memory --mode upload --callers 4 --mib 200
    .venv/bin/python -m bench.upload_memory --mode inline --callers 4 --mib 200

A private mesh (one queue worker) is started in a temporary directory; a short file is planned
first (loading the VAD), then the large ones are sent; every job is cancelled once planned.
Prints one JSON line: baseline and peak VmRSS (sampled every 50 ms) per service.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from bench import procmem
from devsupport.mesh import Mesh, running
from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support.long_audio_mesh import wait_planned
from tests.support.upload import MIB, PeakMemory, long_speech_wav

SERVICES = ("gateway", "scheduler")


def send(mesh: Mesh, path: Path, mode: str, index: int) -> str:
    """One caller: the file streamed or inline; the job's name once it is planned, or what
    refused it."""
    try:
        return _send(mesh, path, mode, index)
    except grpc.RpcError as error:
        return f"refused: {error.code().name}: {error.details()}"


def _send(mesh: Mesh, path: Path, mode: str, index: int) -> str:
    options = [("grpc.max_send_message_length", 2**31 - 1)]
    with mesh.gateway_channel(**dict(options)) as channel:
        stub = pb_grpc.SpeechServiceStub(channel)
        config = tpb.TranscriptionConfig(language_code="ko")
        if mode == "upload":
            from services.client.uploads import upload_requests

            job = stub.UploadJob(
                upload_requests(path, config, idempotency_key=f"bench-{index}"), timeout=1800
            ).job
        else:
            content = path.read_bytes()
            request = pb.CreateJobRequest(
                audio=audio_pb2.Audio(content=content, filename=path.name), config=config
            )
            del content
            job = stub.CreateJob(request, timeout=1800).job
    wait_planned(mesh, job.name, timeout=1800)
    return job.name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("upload", "inline"), default="upload")
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--mib", type=int, default=200)
    args = parser.parse_args()
    size = args.mib * MIB
    with tempfile.TemporaryDirectory(prefix="sayit-upload-bench-") as tmp:
        directory = Path(tmp)
        files = []
        for index in range(args.callers):
            path = directory / f"speech-{index}.wav"
            seconds = long_speech_wav(path, size - index * 2)  # different files: no sharing
            files.append(path)
        limit = str(size + 8 * MIB)
        with running(
            directory / "mesh",
            queue_transcribers=1,
            direct_slots=1,
            extra_env={
                "SAYIT_MAX_REQUEST_BYTES": limit,
                "SAYIT_MAX_UPLOAD_BYTES": limit,
                "SAYIT_MAX_AUDIO_SECONDS": str(24 * 3600),
                "SAYIT_CHUNK_TARGET_SECONDS": "60",
                "SAYIT_CHUNK_MIN_SECONDS": "30",
                # Hours of audio for one worker: let the queue take them all.
                "SAYIT_MAX_QUEUE_WAIT_SECONDS": str(100 * 3600),
            },
        ) as mesh:
            pids = {name: mesh.processes[name].pid for name in SERVICES}
            started_rss = {name: procmem.read(pid).rss_mib for name, pid in pids.items()}
            # Planning a long file loads the VAD once (~100 MiB), whatever the file's size:
            # plan one short file first, so the figures are what the large ones cost.
            warm_up = directory / "warm-up.wav"
            long_speech_wav(warm_up, 2 * MIB)
            send(mesh, warm_up, "upload", 99)
            started = time.monotonic()
            with PeakMemory(pids) as memory, ThreadPoolExecutor(args.callers) as pool:
                names = list(
                    pool.map(lambda i: send(mesh, files[i], args.mode, i), range(args.callers))
                )
            elapsed = time.monotonic() - started
            with mesh.gateway_channel() as channel:
                stub = pb_grpc.SpeechServiceStub(channel)
                ended = {n: n for n in names if n.startswith("refused")}
                for name in names:
                    if name in ended:
                        continue
                    job = stub.GetJob(pb.GetJobRequest(name=name), timeout=30).job
                    if job.error.message:  # a job must not fail: say why it did
                        ended[name] = job.error.message
                    else:
                        stub.CancelJob(pb.CancelJobRequest(name=name), timeout=30)
                if ended:
                    print(mesh.logs("scheduler")[-4000:], file=sys.stderr)
            hwm = {name: procmem.read(pid).peak_mib for name, pid in pids.items()}
    print(
        json.dumps(
            {
                "mode": args.mode,
                "callers": args.callers,
                "file_mib": args.mib,
                "audio_seconds_each": round(seconds),
                "seconds_to_all_planned": round(elapsed, 1),
                "rss_at_start_mib": {k: round(v) for k, v in started_rss.items()},
                "baseline_rss_mib": {k: round(v) for k, v in memory.baseline.items()},
                "peak_rss_mib": {k: round(v) for k, v in memory.peak.items()},
                "vm_hwm_mib": {k: round(v) for k, v in hwm.items()},
                "failed_or_refused": list(ended.values()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
