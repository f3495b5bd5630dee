"""python -m bench.load — `make load`: concurrent callers against the mesh `make up` runs.

50 callers for 60 s (--callers, --seconds) mix short audio (Transcribe, answered inline or after
the high-priority queue) and long audio (CreateJob, queued). Then every job the run created is
accounted for: jobs still waiting are cancelled, and every job must reach an end state. Prints
requests done, errors by status code, p50/p95 latency, jobs lost (must be 0) and the memory of
each service. Reads SAYIT_GATEWAY_ADDR, the client-side SAYIT_TLS_* variables and, when the
gateway requires keys, SAYIT_API_KEY. It calls only the gateway address it is given.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from devsupport import evalset
from devsupport.settings import LoadSettings
from sayit.common.v1 import audio_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"
ENDED = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}
STATES = {v: k.removeprefix("JOB_STATE_") for k, v in job_pb2.JobState.items()}


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: Counter[str] = field(default_factory=Counter)
    job_names: set[str] = field(default_factory=set)

    def record(self, kind: str, seconds: float, code: str, job_name: str = "") -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            self.codes[code] += 1
            if job_name:
                self.job_names.add(job_name)


def percentile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1]


def caller(
    stub: pb_grpc.SpeechServiceStub,
    metadata: list[tuple[str, str]],
    shorts: list[evalset.Clip],
    long_clip: bytes,
    long_share: float,
    stop_at: float,
    seed: int,
    results: Results,
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < stop_at:
        long = rng.random() < long_share
        started = time.monotonic()
        name = ""
        try:
            if long:
                kind = "CreateJob (231 s)"
                reply = stub.CreateJob(
                    pb.CreateJobRequest(
                        audio=audio_pb2.Audio(content=long_clip, filename="long.flac"),
                        config=tpb.TranscriptionConfig(language_code="en"),
                    ),
                    metadata=metadata,
                    timeout=60,
                )
                name = reply.job.name
            else:
                clip = rng.choice(shorts)
                kind = "Transcribe (short)"
                answer = stub.Transcribe(
                    pb.TranscribeRequest(
                        audio=audio_pb2.Audio(content=clip.read(), filename=clip.path.name),
                        config=tpb.TranscriptionConfig(language_code=clip.language),
                    ),
                    metadata=metadata,
                    timeout=max(5.0, stop_at - time.monotonic() + 30),
                )
                name = answer.job_name
            code = "OK"
        except grpc.RpcError as error:
            code = error.code().name
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                time.sleep(min(2.0, max(0.2, rng.random())))  # back off as a client should
        results.record(kind, time.monotonic() - started, code, name)


def rss_megabytes(pid: int) -> float:
    """Resident memory of a process and its children (a worker's work horse), in MiB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def account_for_jobs(
    stub: pb_grpc.SpeechServiceStub,
    metadata: list[tuple[str, str]],
    names: set[str],
    since_ms: int,
    wait_seconds: float,
) -> tuple[Counter[str], list[str]]:
    """Every job this run created, found by name and by listing; the unfinished are cancelled
    and must then end. Returns end states and the jobs lost (not found, or never ending)."""
    listed: set[str] = set()
    token = ""
    while True:
        page = stub.ListJobs(
            pb.ListJobsRequest(page_size=100, page_token=token), metadata=metadata, timeout=30
        )
        fresh = [j for j in page.jobs if j.create_time.ToMilliseconds() >= since_ms]
        listed |= {j.name for j in fresh}
        token = page.next_page_token
        if not token or len(fresh) < len(page.jobs):
            break
    everything = names | listed
    lost: list[str] = []
    for name in sorted(everything):
        try:
            job = stub.GetJob(pb.GetJobRequest(name=name), metadata=metadata, timeout=30).job
        except grpc.RpcError as error:
            lost.append(f"{name}: {error.code().name}")
            continue
        if job.state not in ENDED:
            try:
                stub.CancelJob(pb.CancelJobRequest(name=name), metadata=metadata, timeout=30)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    lost.append(f"{name}: cancel {error.code().name}")
    states: Counter[str] = Counter()
    deadline = time.monotonic() + wait_seconds
    for name in sorted(everything):
        while True:
            try:
                job = stub.GetJob(pb.GetJobRequest(name=name), metadata=metadata, timeout=30).job
            except grpc.RpcError:
                break  # counted above
            if job.state in ENDED or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        states[STATES.get(job.state, "?")] += 1
        if job.state not in ENDED:
            lost.append(f"{name}: still {STATES.get(job.state)}")
        elif job.state == job_pb2.JOB_STATE_FAILED and "lost" in job.error.message:
            lost.append(f"{name}: {job.error.message}")
    return states, lost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--long-share", type=float, default=0.1, help="share of long requests")
    args = parser.parse_args(argv)

    settings = LoadSettings.from_env(os.environ)
    addr, tls, key = settings.gateway_addr, settings.client_tls, settings.api_key
    metadata = [("authorization", f"Bearer {key}")] if key else []
    options = [("grpc.max_send_message_length", 64 << 20)]
    channel = (
        grpc.insecure_channel(addr, options=options)
        if tls is None
        else grpc.secure_channel(addr, tls.credentials(), options=options)
    )
    stub = pb_grpc.SpeechServiceStub(channel)
    shorts = evalset.clips(max_seconds=12)
    long_clip = evalset.clip("en_long_ljspeech_LJ001").read()
    results = Results()
    since_ms = int(time.time() * 1000) - 1000
    print(
        f"load: {args.callers} callers for {args.seconds:.0f} s against {addr} "
        f"({len(shorts)} short clips, {args.long_share:.0%} long 231 s jobs)",
        flush=True,
    )
    started = time.monotonic()
    stop_at = started + args.seconds
    threads = [
        threading.Thread(
            target=caller,
            args=(stub, metadata, shorts, long_clip, args.long_share, stop_at, n, results),
            daemon=True,
        )
        for n in range(args.callers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    done = sum(results.codes.values())
    print(f"\nrequests done: {done} in {elapsed:.0f} s ({done / elapsed:.1f}/s)")
    print("by status code: " + ", ".join(f"{c} {n}" for c, n in results.codes.most_common()))
    for kind, values in sorted(results.latencies.items()):
        print(
            f"  {kind:<20} n={len(values):<5} p50 {percentile(values, 0.5):6.2f} s   "
            f"p95 {percentile(values, 0.95):6.2f} s"
        )
    everything = [v for values in results.latencies.values() for v in values]
    print(
        f"  {'all':<20} n={len(everything):<5} p50 {percentile(everything, 0.5):6.2f} s   "
        f"p95 {percentile(everything, 0.95):6.2f} s"
    )
    states, lost = account_for_jobs(stub, metadata, results.job_names, since_ms, 120.0)
    print(
        f"jobs created: {sum(states.values())} ("
        + ", ".join(f"{s} {n}" for s, n in states.most_common())
        + ")"
    )
    print(f"jobs lost: {len(lost)}")
    for line in lost[:20]:
        print(f"  {line}")
    print("memory (RSS) at the end:")
    for pid_file in sorted(RUN.glob("*.pid")):
        try:
            pid = int(pid_file.read_text())
        except ValueError:
            continue
        print(f"  {pid_file.stem:<20} {rss_megabytes(pid):8.0f} MiB")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
