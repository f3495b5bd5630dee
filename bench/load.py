"""python -m bench.load — `make load`: concurrent callers against the mesh `make up` runs.

50 callers for 60 s (--callers, --seconds; calls in flight then finish, within --call-timeout)
mix short audio (Transcribe, answered inline or after the high-priority queue) and long audio
(CreateJob, queued). Every call sends audio no cache
has seen (bench.unique_audio: the clip after an inaudible, unique 4 ms mark), so the figures are
transcription, not cache look-ups. Rate-limit answers carrying RetryInfo are waited out as a
good client does and counted apart from errors. Then every job the run created is accounted for
(bench.job_accounting): jobs still waiting are cancelled, and every job must reach an end state.

Prints requests done, refusals and errors by status code, p50/p95 latency, cache hits, jobs lost
and the memory of each service. Exits 1 when a job was lost or could not be checked, or when
errors (neither OK nor a refusal with RetryInfo) exceed --max-error-share. Reads
SAYIT_GATEWAY_ADDR, the client-side SAYIT_TLS_* variables and, when the gateway requires keys,
SAYIT_API_KEY. It calls only the gateway address it is given.
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

from bench import mesh_probe
from bench.job_accounting import Accounting, account_for_jobs
from bench.retrying import RETRYABLE, retry_delay
from bench.unique_audio import UniqueAudio
from devsupport import evalset
from devsupport.settings import LoadSettings
from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.client.credentials import find_api_key

LONG_CLIP = "en_long_ljspeech_LJ001"
REFUSED = "refused (RetryInfo)"


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: Counter[str] = field(default_factory=Counter)
    job_names: Counter[str] = field(default_factory=Counter)
    cache_hits: int = 0  # Transcribe answers whose transcript says from_cache

    def record(
        self, kind: str, seconds: float, code: str, job_name: str = "", from_cache: bool = False
    ) -> None:
        with self.lock:
            self.codes[code] += 1
            if code == "OK":  # latency of work done, not of refusals
                self.latencies[kind].append(seconds)
            if job_name:
                self.job_names[job_name] += 1
            self.cache_hits += from_cache

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.codes.items() if code not in ("OK", REFUSED))

    @property
    def shared(self) -> int:
        """Calls answered with a job another call also got (in-flight sharing)."""
        return sum(n - 1 for n in self.job_names.values())


def percentile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1]


def outcome_of(error: grpc.RpcError) -> tuple[str, float | None]:
    """How a failed call is counted, and how long to wait before the next one."""
    delay = retry_delay(error) if error.code() in RETRYABLE else None
    if delay is not None:
        return REFUSED, delay
    return error.code().name, None


def caller(
    stub: pb_grpc.SpeechServiceStub,
    metadata: list[tuple[str, str]],
    shorts: UniqueAudio,
    longs: UniqueAudio,
    long_share: float,
    stop_at: float,
    call_timeout: float,
    seed: int,
    results: Results,
) -> None:
    """Calls one after another until `stop_at`; the last may finish after it."""
    rng = random.Random(seed)
    while time.monotonic() < stop_at:
        long = rng.random() < long_share
        audio = longs.variant(0) if long else shorts.variant(rng.randrange(len(shorts)))
        config = tpb.TranscriptionConfig(language_code=audio.language)
        started = time.monotonic()
        name, from_cache, wait = "", False, None
        try:
            if long:
                kind = f"CreateJob ({audio.seconds:.0f} s)"
                reply = stub.CreateJob(
                    pb.CreateJobRequest(
                        audio=audio_pb2.Audio(content=audio.content, filename=audio.filename),
                        config=config,
                    ),
                    metadata=metadata,
                    timeout=min(60.0, call_timeout),
                )
                name = reply.job.name
            else:
                kind = "Transcribe (short)"
                answer = stub.Transcribe(
                    pb.TranscribeRequest(
                        audio=audio_pb2.Audio(content=audio.content, filename=audio.filename),
                        config=config,
                    ),
                    metadata=metadata,
                    timeout=call_timeout,
                )
                name = answer.job_name
                from_cache = answer.HasField("transcript") and answer.transcript.from_cache
            code = "OK"
        except grpc.RpcError as error:
            code, wait = outcome_of(error)
        results.record(kind, time.monotonic() - started, code, name, from_cache)
        if wait is not None:
            time.sleep(max(0.05, wait))  # as asked: the gateway said when to come back


def print_calls(results: Results, elapsed: float) -> None:
    done = sum(results.codes.values())
    ok = results.codes["OK"]
    print(f"\ncalls: {done} in {elapsed:.0f} s; OK {ok} ({ok / elapsed:.2f}/s)")
    print("by outcome: " + ", ".join(f"{c} {n}" for c, n in results.codes.most_common()))
    everything: list[float] = []
    for kind, values in sorted(results.latencies.items()):
        everything += values
        print(
            f"  {kind:<20} ok={len(values):<5} p50 {percentile(values, 0.5):6.2f} s   "
            f"p95 {percentile(values, 0.95):6.2f} s"
        )
    print(
        f"  {'all':<20} ok={len(everything):<5} p50 {percentile(everything, 0.5):6.2f} s   "
        f"p95 {percentile(everything, 0.95):6.2f} s"
    )
    print(
        f"cache hits: {results.cache_hits} answers from_cache; {results.shared} calls shared "
        "another call's job (both should be 0: every call sends new audio)"
    )


def print_jobs(accounting: Accounting) -> None:
    print(
        f"jobs created: {accounting.jobs} ("
        + ", ".join(f"{s} {n}" for s, n in accounting.states.most_common())
        + f"); {accounting.cancelled_at_end} still waiting at the end were cancelled; "
        f"{accounting.abandoned} cancelled by the mesh when their call failed; "
        f"{accounting.cache_hits} from the result cache"
    )
    print(f"checks that waited on RetryInfo: {accounting.waits}")
    print(f"jobs lost: {len(accounting.lost)}")
    for line in accounting.lost[:20]:
        print(f"  {line}")
    if accounting.unverified:
        print(f"jobs that could not be checked: {len(accounting.unverified)}")
        for line in accounting.unverified[:20]:
            print(f"  {line}")


def verdict(results: Results, accounting: Accounting, max_error_share: float) -> int:
    calls = sum(results.codes.values())
    share = results.errors / calls if calls else 1.0
    failed = []
    if accounting.lost:
        failed.append(f"{len(accounting.lost)} jobs lost")
    if accounting.unverified:
        failed.append(f"{len(accounting.unverified)} jobs not checked")
    if share > max_error_share:
        failed.append(f"errors {share:.1%} of calls (more than {max_error_share:.1%})")
    if not calls or not results.codes["OK"]:
        failed.append("no call succeeded")
    print("FAILED: " + "; ".join(failed) if failed else "PASSED: nothing lost")
    return 1 if failed else 0


def open_stub(
    settings: LoadSettings, key: str | None
) -> tuple[pb_grpc.SpeechServiceStub, list[tuple[str, str]]]:
    """A blocking stub on the gateway, and the metadata that carries API key `key`."""
    addr, tls = settings.gateway_addr, settings.client_tls
    metadata = [("authorization", f"Bearer {key}")] if key else []
    options = [("grpc.max_send_message_length", 64 << 20)]
    channel = (
        grpc.insecure_channel(addr, options=options)
        if tls is None
        else grpc.secure_channel(addr, tls.credentials(), options=options)
    )
    return pb_grpc.SpeechServiceStub(channel), metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--long-share", type=float, default=0.1, help="share of long requests")
    parser.add_argument(
        "--call-timeout",
        type=float,
        default=300.0,
        help="deadline of each call: long enough for short calls queued behind busy slots",
    )
    parser.add_argument(
        "--max-error-share",
        type=float,
        default=0.01,
        help="fail when errors (not OK, not a refusal with RetryInfo) exceed this share of calls",
    )
    args = parser.parse_args(argv)

    settings = LoadSettings.from_env(os.environ)
    # SAYIT_API_KEY, else the key `make up` wrote to ./.run/dev-api-key.
    stub, metadata = open_stub(settings, find_api_key(settings.api_key, {}, Path.cwd()))
    shorts = UniqueAudio(evalset.clips(max_seconds=12))
    longs = UniqueAudio([evalset.clip(LONG_CLIP)])
    results = Results()
    since_ms = int(time.time() * 1000) - 1000
    print(
        f"load: {args.callers} callers for {args.seconds:.0f} s against {settings.gateway_addr} "
        f"({len(shorts)} short clips, {args.long_share:.0%} long jobs; new audio on every call)",
        flush=True,
    )
    started = time.monotonic()
    stop_at = started + args.seconds
    threads = [
        threading.Thread(
            target=caller,
            args=(
                stub,
                metadata,
                shorts,
                longs,
                args.long_share,
                stop_at,
                args.call_timeout,
                n,
                results,
            ),
            daemon=True,
        )
        for n in range(args.callers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print_calls(results, time.monotonic() - started)
    accounting = account_for_jobs(stub, metadata, set(results.job_names), since_ms, 120.0)
    print_jobs(accounting)
    mesh_probe.print_memory("memory (RSS) at the end:")
    return verdict(results, accounting, args.max_error_share)


if __name__ == "__main__":
    sys.exit(main())
