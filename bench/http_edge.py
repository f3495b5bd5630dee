"""HTTP edge overhead: what `POST /v1/audio/transcriptions` through the HTTP edge adds to a short
transcription, against `Transcribe` through the same gateway over gRPC.

One mesh (a direct transcriber of 1 slot x `threads()` threads, as mesh_overhead) with an HTTP
edge in front of its gateway; the same short clip by both ways, one untimed warm-up each, then
pairs of calls back to back, the order alternating (HTTP first, then gRPC first). Both clients
keep their connection (an httpx client with keep-alive, one gRPC channel), as a real caller
does. Figures: the median of the pairs' differences (ms added by the edge: multipart parsing,
the extra hop, JSON) and the median of the pairs' ratios; the note gives both medians. On a
shared machine one decode of the clip varies by more than the edge adds, so a third figure takes
each call's own decoding out (the transcriber's `processing_seconds` from its log, as
mesh_overhead does) before differencing: the time spent outside decoding, HTTP minus gRPC.
"""

from __future__ import annotations

import time

import httpx

from bench import bench_mesh, raw_engine
from bench.figures import Figure, median
from bench.mesh_overhead import _last_processing_seconds, transcribe
from bench.report import paired_ratios, ratio
from devsupport import evalset
from devsupport import http_edge as edge_process

SECTION = "http_edge"
CLIP = "en_pv_leopard_test"  # 5.9 s: a short clip, answered on the direct path
PAIRS, QUICK_PAIRS = 10, 2  # --quick: one pair of each order


def transcribe_http(client: httpx.Client, clip: evalset.Clip, audio: bytes) -> float:
    """Seconds for one POST /v1/audio/transcriptions of the clip (it must answer its text)."""
    started = time.monotonic()
    reply = client.post(
        "/v1/audio/transcriptions",
        files={"file": (clip.path.name, audio)},
        data={"model": "whisper-1", "language": clip.language},
    )
    seconds = time.monotonic() - started
    if reply.status_code != 200 or not reply.json().get("text"):
        raise RuntimeError(f"{clip.id} over HTTP: {reply.status_code} {reply.text[:300]}")
    return seconds


def run(quick: bool) -> list[Figure]:
    pairs = QUICK_PAIRS if quick else PAIRS
    threads = raw_engine.threads()
    clip = evalset.clip(CLIP)
    audio = clip.read()
    http: list[float] = []
    grpc: list[float] = []
    # Each call's time outside the transcriber's own decoding.
    http_outside: list[float] = []
    grpc_outside: list[float] = []
    with bench_mesh.running(direct_slots=1, direct_threads=threads, queue_transcribers=0) as mesh:
        edge = edge_process.start(mesh.directory, mesh.gateway_addr)
        try:
            stub = bench_mesh.stub(mesh)
            headers = {"Authorization": f"Bearer {mesh.api_key}"} if mesh.api_key else {}
            with httpx.Client(base_url=edge.base_url, headers=headers, timeout=300) as client:
                transcribe_http(client, clip, audio)  # warm-ups, not timed
                transcribe(stub, clip)
                for n in range(pairs):
                    http_first = n % 2 == 0
                    if http_first:
                        http.append(transcribe_http(client, clip, audio))
                        http_outside.append(http[-1] - _last_processing_seconds(mesh))
                    grpc.append(transcribe(stub, clip))
                    grpc_outside.append(grpc[-1] - _last_processing_seconds(mesh))
                    if not http_first:
                        http.append(transcribe_http(client, clip, audio))
                        http_outside.append(http[-1] - _last_processing_seconds(mesh))
        finally:
            edge.stop()
    added_ms = [(h - g) * 1000 for h, g in zip(http, grpc, strict=True)]
    outside_ms = [(h - g) * 1000 for h, g in zip(http_outside, grpc_outside, strict=True)]
    detail = (
        f"{clip.duration_seconds:.1f} s clip, {pairs} alternating pairs, 1 slot x {threads} "
        f"threads: HTTP median {median(http):.3f} s, gRPC median {median(grpc):.3f} s "
        f"(ratio of medians {ratio(median(http), median(grpc)):.3f})"
    )
    return [
        Figure(
            SECTION,
            "transcribe_added_ms",
            round(median(added_ms), 1),
            "ms",
            samples=tuple(round(x, 1) for x in added_ms),
            note=f"median of paired differences HTTP - gRPC; {detail}",
        ),
        Figure(
            SECTION,
            "transcribe_added_ms_outside_decoding",
            round(median(outside_ms), 1),
            "ms",
            samples=tuple(round(x, 1) for x in outside_ms),
            note="median of paired differences HTTP - gRPC of each call's time outside the "
            f"transcriber's decoding (HTTP median {median(http_outside) * 1000:.0f} ms, gRPC "
            f"median {median(grpc_outside) * 1000:.0f} ms); {detail}",
        ),
        Figure(
            SECTION,
            "transcribe_http_vs_grpc",
            round(median(paired_ratios(http, grpc)), 3),
            "ratio",
            baseline=f"gateway Transcribe over gRPC, same {clip.duration_seconds:.1f} s clip",
            samples=tuple(round(x, 3) for x in http + grpc),
            note=f"median of paired ratios; {detail} (samples: HTTP, then gRPC)",
        ),
    ]
