"""What mutual TLS on the internal hops costs: the same short clip through the gateway's
Transcribe on two meshes running side by side, one with internal mTLS (the default) and one
with SAYIT_INTERNAL_TLS=off, and a ListJobs (gateway -> scheduler -> Redis, no decoding), which
shows the hops' cost without the model's time around it.

    python -m bench.mtls_cost [--pairs N] [--clip ID]

Calls alternate between the meshes one at a time, the order flipping each pair, so the drift of
a shared machine weighs on both sides alike; the figure is the median of the pairs' ratios (and
the medians of each side). Connections between services are long-lived, so a call pays the
encryption of its bytes, not a handshake.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from bench import bench_mesh
from bench.figures import median
from bench.mesh_overhead import transcribe
from bench.report import paired_ratios
from devsupport import evalset
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc

DEFAULT_CLIP = "en_pv_leopard_test"  # 5.9 s


def list_jobs(stub: pb_grpc.SpeechServiceStub) -> float:
    started = time.monotonic()
    stub.ListJobs(pb.ListJobsRequest(page_size=10), timeout=30)
    return time.monotonic() - started


def paired(
    pairs: int, call: Callable[[pb_grpc.SpeechServiceStub], float], on: object, off: object
) -> tuple[list[float], list[float]]:
    with_tls: list[float] = []
    without: list[float] = []
    for n in range(pairs):
        first, second = (on, off) if n % 2 == 0 else (off, on)
        a, b = call(first), call(second)  # type: ignore[arg-type]
        with_tls.append(a if first is on else b)
        without.append(b if first is on else a)
    return with_tls, without


def report(name: str, with_tls: list[float], without: list[float]) -> str:
    ratios = paired_ratios(with_tls, without)
    on_ms, off_ms = median(with_tls) * 1000, median(without) * 1000
    return (
        f"{name:<28} mTLS {on_ms:9.1f} ms   plaintext {off_ms:9.1f} ms   "
        f"diff {on_ms - off_ms:+7.1f} ms   median paired ratio {median(ratios):.3f} "
        f"({len(ratios)} pairs)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="Transcribe pairs")
    parser.add_argument("--clip", default=DEFAULT_CLIP, help="a short clip of the eval set")
    args = parser.parse_args(argv)
    clip = evalset.clip(args.clip)
    options = {"direct_slots": 1, "direct_threads": 1, "queue_transcribers": 0}
    with (
        bench_mesh.running(**options, pki=True) as secure,
        bench_mesh.running(**options, pki=False) as plain,
    ):
        on, off = bench_mesh.stub(secure.gateway_addr), bench_mesh.stub(plain.gateway_addr)
        for stub in (on, off):  # warm-ups, not timed
            transcribe(stub, clip)
            list_jobs(stub)
        rows = [
            report(
                f"Transcribe {clip.id} ({clip.duration_seconds:.1f} s)",
                *paired(args.pairs, lambda s: transcribe(s, clip), on, off),
            ),
            report("ListJobs (no decoding)", *paired(args.pairs * 5, list_jobs, on, off)),
        ]
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
