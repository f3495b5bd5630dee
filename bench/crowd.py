"""python -m bench.crowd — `make crowd`: 1,000 open WatchJob streams beside short calls.

Against the mesh `make up` runs:
1. hold jobs open: --held-jobs CreateJob calls of the 231 s clip (new audio each), queued, so
   their watchers' streams stay open while the queue works through them;
2. phase 1, without watchers: short Transcribe calls on new audio at --rate per second for
   --seconds, sampling Redis connections and each service's memory;
3. open --watchers WatchJob streams on the held jobs, spread over the API keys;
4. phase 2, with the watchers open: the same calls, sampled the same way;
5. close the watchers, cancel the held jobs, and account for every job (bench.job_accounting).

Prints the short calls' p50/p95 in both phases, Redis connections in use (INFO clients; CLIENT
LIST by client name and by service), each service's peak RSS, and how many watchers opened or
were refused (by kind: the rate limit, a stream cap...). Exits 1 when a job was lost or could not
be checked, or when errors (neither OK nor a refusal with RetryInfo) exceed --max-error-share of
the short calls or of the watchers.

API keys: SAYIT_API_KEY, or --keys-file (one key per line) to spread the crowd over several
tenants, as a per-tenant stream cap would require. Reads SAYIT_GATEWAY_ADDR and the client-side
SAYIT_TLS_* variables like `make load`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc

from bench import crowd_report
from bench.crowd_phase import Caller, run_phase
from bench.crowd_watchers import Crowd, HeldJob
from bench.job_accounting import Accounting, account_for_jobs
from bench.load import LONG_CLIP, open_stub
from bench.retrying import RETRYABLE, retry_delay
from bench.unique_audio import UniqueAudio
from devsupport import evalset
from devsupport.settings import LoadSettings
from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.client.credentials import find_api_key

T = TypeVar("T")
STREAMS_PER_CONNECTION = 100
# Opening stops waiting when no watcher opened for this long while refusals keep coming.
STALLED_SECONDS = 15.0  # as many callers would: not every stream on one HTTP/2 connection


async def patiently(call: Callable[[], Awaitable[T]], patience_seconds: float = 120.0) -> T:
    """`await call()`, again after each RetryInfo delay while patience lasts."""
    deadline = time.monotonic() + patience_seconds
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            delay = retry_delay(error) if error.code() in RETRYABLE else None
            if delay is None or time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(max(0.05, delay))


def api_keys(settings: LoadSettings, keys_file: Path | None) -> list[str | None]:
    if keys_file is None:
        # SAYIT_API_KEY, else the key `make up` wrote to ./.run/dev-api-key.
        return [find_api_key(settings.api_key, {}, Path.cwd())]
    keys = [line.strip() for line in keys_file.read_text().splitlines() if line.strip()]
    if not keys:
        raise SystemExit(f"{keys_file} holds no API key (one per line)")
    return list(keys)


def aio_callers(settings: LoadSettings, keys: list[str | None], channels: int) -> list[Caller]:
    """Per key, `channels` stubs on channels of their own (one HTTP/2 connection each)."""
    options = [
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.use_local_subchannel_pool", 1),  # really separate connections
    ]
    tls = settings.client_tls
    callers: list[Caller] = []
    for _ in range(channels):
        for key in keys:
            channel = (
                grpc.aio.insecure_channel(settings.gateway_addr, options=options)
                if tls is None
                else grpc.aio.secure_channel(settings.gateway_addr, tls.credentials(), options)
            )
            metadata = [("authorization", f"Bearer {key}")] if key else []
            callers.append((pb_grpc.SpeechServiceStub(channel), metadata))
    return callers


async def hold_jobs(callers: list[Caller], keys: int, count: int) -> list[HeldJob]:
    longs = UniqueAudio([evalset.clip(LONG_CLIP)])
    held = []
    for n in range(count):
        stub, metadata = callers[n % keys]
        audio = longs.variant(0)
        request = pb.CreateJobRequest(
            audio=audio_pb2.Audio(content=audio.content, filename=audio.filename),
            config=tpb.TranscriptionConfig(language_code=audio.language),
        )
        reply = await patiently(lambda r=request, s=stub, m=metadata: s.CreateJob(r, metadata=m))
        held.append(HeldJob(reply.job.name, n % keys))
    return held


async def open_crowd(crowd: Crowd, watchers: int, open_seconds: float) -> float:
    """Start the watchers; wait until all are open, refused for good or ended (or time is up).
    Returns the seconds it took."""
    started = time.monotonic()
    crowd.open(watchers)
    state = crowd.state
    last_open, last_change = 0, started
    while time.monotonic() - started < open_seconds:
        settled = state.open_now + sum(state.errors.values())
        if settled >= watchers or len(state.ended) == len(crowd.held):
            break
        if state.open_now != last_open:
            last_open, last_change = state.open_now, time.monotonic()
        elif state.refusals and time.monotonic() - last_change > STALLED_SECONDS:
            break  # the rest keep being refused (a cap): measure with those that are open
        await asyncio.sleep(0.5)
    return time.monotonic() - started


def account(
    settings: LoadSettings, keys: list[str | None], names: list[set[str]], since_ms: int
) -> Accounting:
    """Every job of every key since the start (blocking: run in a thread), added up."""
    total = Accounting()
    for n, key in enumerate(keys):
        stub, metadata = open_stub(settings, key)
        mine = set().union(*(names[i] for i in range(n, len(names), len(keys))))
        one = account_for_jobs(stub, metadata, mine, since_ms, 120.0)
        total.states += one.states
        total.lost += one.lost
        total.unverified += one.unverified
        total.cache_hits += one.cache_hits
        total.cancelled_at_end += one.cancelled_at_end
        total.abandoned += one.abandoned
        total.waits += one.waits
    return total


async def scenario(args: argparse.Namespace) -> int:
    settings = LoadSettings.from_env(os.environ)
    keys = api_keys(settings, args.keys_file)
    channels = max(1, -(-args.watchers // (STREAMS_PER_CONNECTION * len(keys))))
    callers = aio_callers(settings, keys, channels)
    shorts = UniqueAudio(evalset.clips(max_seconds=12))
    since_ms = int(time.time() * 1000) - 1000
    print(
        f"crowd: {args.watchers} watchers on {args.held_jobs} held jobs, {len(keys)} API key(s), "
        f"{len(callers)} connections; short calls at {args.rate:g}/s for {args.seconds:.0f} s "
        f"per phase, against {settings.gateway_addr}",
        flush=True,
    )
    held = await hold_jobs(callers, len(keys), args.held_jobs)
    print(f"held {len(held)} jobs; phase 1: short calls without watchers", flush=True)
    without = await run_phase(callers[: len(keys)], shorts, args.rate, args.seconds)
    crowd = Crowd(callers, held, len(keys))
    took = await open_crowd(crowd, args.watchers, args.open_seconds)
    opened = crowd.state.open_now
    print(f"{opened} watchers open after {took:.0f} s; phase 2: with watchers", flush=True)
    with_crowd = await run_phase(callers[: len(keys)], shorts, args.rate, args.seconds)
    still_open = crowd.state.open_now
    await crowd.close()
    names = [a | b for a, b in zip(without.job_names, with_crowd.job_names, strict=True)]
    for job in held:
        names[job.caller].add(job.name)
    accounting = await asyncio.to_thread(account, settings, keys, names, since_ms)
    crowd_report.print_report(
        without, with_crowd, crowd.state, opened, still_open, accounting, len(held)
    )
    return crowd_report.verdict(
        without, with_crowd, crowd.state, args.watchers, accounting, args.max_error_share
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=1000, help="WatchJob streams to open")
    parser.add_argument(
        "--held-jobs",
        type=int,
        default=24,
        help="queued 231 s jobs to watch (two or more per key keep the crowd open as they end)",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.2,
        help="short calls per second (below what the direct slots answer, or phase 1 queues up)",
    )
    parser.add_argument("--open-seconds", type=float, default=120.0, help="time to open them")
    parser.add_argument("--keys-file", type=Path, help="API keys, one per line")
    parser.add_argument("--max-error-share", type=float, default=0.01)
    args = parser.parse_args(argv)
    return asyncio.run(scenario(args))


if __name__ == "__main__":
    sys.exit(main())
