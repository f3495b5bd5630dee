"""Memory: resident size of a transcriber process after some work ÷ that of a plain Python
process holding the raw engine after the same work, and whether a transcriber's resident size
stays flat through a long file (goal: within 10%).

Both processes run on their own (subprocesses) with 1 slot x `threads()` threads and read their
size from /proc/<pid>/status: VmHWM (the peak) and VmRSS (now). Growth: one file of ~1 hour
(~2 minutes in --quick) joined from the shared Korean clips, sent to the same transcriber's
TranscribeStream while its VmRSS is sampled (from the first segment on); the median of the
last quarter of the samples ÷ the median of the first quarter; and that transcriber's peak
after the file ÷ the raw engine's peak on the same file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from bench import procmem, raw_engine
from bench.figures import Figure, median
from bench.report import ratio
from devsupport import audio, evalset, processes
from sayit.common.v1 import audio_pb2, transcription_pb2
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc

SECTION = "memory"
WORK = (
    "en_jfk",
    "en_fleurs_000",
    "ko_deeply_sub100111a00054",
    "ko_deeply_sub100110a00090",
)
QUICK_WORK = ("en_pv_leopard_test", "ko_deeply_sub100120a00042")
LONG_SECONDS, QUICK_LONG_SECONDS = 3600.0, 120.0
SAMPLE_EVERY = 0.5
MAX_BYTES = 256 << 20  # an hour of 16 kHz 16-bit WAV is ~115 MB


def quarter_growth(samples: list[float]) -> float:
    """Median of the last quarter ÷ median of the first quarter (NaN for fewer than 4)."""
    if len(samples) < 4:
        return float("nan")
    quarter = len(samples) // 4
    return ratio(median(samples[-quarter:]), median(samples[:quarter]))


def _holder(threads: int, *args: str) -> procmem.Memory:
    out = subprocess.run(
        [sys.executable, "-m", "bench.engine_holder", "--threads", str(threads), *args],
        cwd=processes.ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    values = json.loads(out.stdout.strip().splitlines()[-1])
    return procmem.Memory(rss_mib=values["rss_mib"], peak_mib=values["peak_mib"])


def _stream(
    addr: str,
    content: bytes,
    language: str,
    filename: str = "",
    decoding: threading.Event | None = None,
) -> None:
    """One TranscribeStream to its end; sets `decoding` at the first segment."""
    options = [("grpc.max_send_message_length", MAX_BYTES)]
    with grpc.insecure_channel(addr, options=options) as channel:
        request = tpb.TranscribeStreamRequest(
            audio=audio_pb2.Audio(content=content, filename=filename),
            config=transcription_pb2.TranscriptionConfig(language_code=language),
        )
        for reply in tpb_grpc.TranscriberServiceStub(channel).TranscribeStream(
            request, timeout=4 * 3600
        ):
            if reply.HasField("segment") and decoding is not None:
                decoding.set()
            if reply.HasField("transcript"):
                return
    raise RuntimeError("the stream ended without a transcript")


def _sampled(pid: int, work: threading.Thread, decoding: threading.Event) -> list[float]:
    """VmRSS every SAMPLE_EVERY seconds while `work` runs, from its first segment on (before
    that the process is still receiving and decoding the file, which is not growth)."""
    samples = []
    work.start()
    while work.is_alive():
        if decoding.is_set():
            samples.append(procmem.read(pid).rss_mib)
        work.join(SAMPLE_EVERY)
    return samples


def run(quick: bool) -> list[Figure]:
    threads = raw_engine.threads()
    clip_ids = QUICK_WORK if quick else WORK
    held = _holder(threads, *clip_ids)
    long_content, _, long_seconds = audio.korean_long(QUICK_LONG_SECONDS if quick else LONG_SECONDS)
    directory = Path(tempfile.mkdtemp(prefix="sayit-bench-memory-"))
    service = processes.transcriber(
        directory,
        SAYIT_TRANSCRIBER_SLOTS="1",
        SAYIT_CPU_THREADS=str(threads),
        SAYIT_MAX_REQUEST_BYTES=str(MAX_BYTES),
    )
    failure: list[BaseException] = []
    decoding = threading.Event()

    def long_file() -> None:
        try:
            _stream(service.addr or "", long_content, "ko", decoding=decoding)
        except BaseException as error:  # reported after sampling stops
            failure.append(error)

    try:
        long_path = directory / "long.wav"
        long_path.write_bytes(long_content)
        held_long = _holder(threads, "--file", str(long_path), "--language", "ko")
        service.start().wait_serving()
        for clip_id in clip_ids:
            clip = evalset.clip(clip_id)
            _stream(service.addr or "", clip.read(), clip.language, clip.path.name)
        served = procmem.read(service.pid)
        started = time.monotonic()
        samples = _sampled(service.pid, threading.Thread(target=long_file), decoding)
        took = time.monotonic() - started
        if failure:
            raise failure[0]
        after_long = procmem.read(service.pid)
    finally:
        service.stop()
        shutil.rmtree(directory, ignore_errors=True)

    work = f"after {len(clip_ids)} short clips, 1 slot x {threads} threads"
    return [
        Figure(
            SECTION,
            "transcriber_peak_rss",
            round(ratio(served.peak_mib, held.peak_mib), 3),
            "ratio",
            baseline="peak RSS of a plain Python process holding the raw engine",
            note=f"VmHWM {work}: transcriber {served.peak_mib:.0f} MiB, engine "
            f"{held.peak_mib:.0f} MiB",
        ),
        Figure(
            SECTION,
            "transcriber_rss",
            round(ratio(served.rss_mib, held.rss_mib), 3),
            "ratio",
            baseline="RSS of a plain Python process holding the raw engine",
            note=f"VmRSS {work}: transcriber {served.rss_mib:.0f} MiB, engine "
            f"{held.rss_mib:.0f} MiB",
        ),
        Figure(
            SECTION,
            "long_file_rss_growth",
            round(quarter_growth(samples), 3),
            "ratio",
            baseline="median RSS over the first quarter of the run",
            goal="<= 1.10",
            samples=tuple(round(s, 1) for s in samples[:: max(1, len(samples) // 40)]),
            note=f"{long_seconds / 60:.0f} min of joined Korean clips through one transcriber "
            f"in {took:.0f} s: median RSS of the last quarter of {len(samples)} samples ÷ the "
            f"first (samples: every {max(1, len(samples) // 40)}th, MiB)",
        ),
        Figure(
            SECTION,
            "long_file_peak_rss",
            round(ratio(after_long.peak_mib, held_long.peak_mib), 3),
            "ratio",
            baseline="peak RSS of the raw engine given the same file (up to its first segment)",
            note=f"VmHWM after the {long_seconds / 60:.0f} min file ({len(long_content) / 1e6:.0f}"
            f" MB of WAV in one request): transcriber {after_long.peak_mib:.0f} MiB, engine "
            f"{held_long.peak_mib:.0f} MiB (faster-whisper computes the whole file's features "
            "before the first segment, so the peak comes early)",
        ),
    ]
