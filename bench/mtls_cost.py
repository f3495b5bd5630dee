"""What mutual TLS on the internal hops costs: the same short clip through the gateway's
Transcribe on two meshes running side by side, one with internal mTLS (the default) and one
with SAYIT_INTERNAL_TLS=off, and a ListJobs (gateway -> scheduler -> Redis, no decoding), which
shows the hops' cost without the model's time around it.

    python -m bench.mtls_cost [--pairs N] [--rounds N] [--clip ID]

Calls alternate between the meshes one at a time, the order flipping each pair, so the drift of
a shared machine weighs on both sides alike; the figure is the median of the pairs' ratios (and
the medians of each side). Each round starts both meshes afresh, in the other order than the
round before: one process runs the same work a few percent faster than another for its whole
life, which a single round would put down to TLS. Connections between services are
long-lived, so a call pays the encryption of its bytes, not a handshake.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from bench import bench_mesh
from bench.figures import median
from bench.mesh_overhead import transcribe
from bench.report import paired_ratios
from devsupport import evalset
from devsupport.mesh import Mesh
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc

DEFAULT_CLIP = "en_pv_leopard_test"  # 5.9 s


def mesh(*, pki: bool) -> AbstractContextManager[Mesh]:
    # One slot of one thread and no queue: a short clip always goes direct.
    return bench_mesh.running(direct_slots=1, direct_threads=1, queue_transcribers=0, pki=pki)


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
    parser.add_argument("--pairs", type=int, default=20, help="Transcribe pairs per round")
    parser.add_argument("--rounds", type=int, default=2, help="fresh pairs of meshes")
    parser.add_argument("--clip", default=DEFAULT_CLIP, help="a short clip of the eval set")
    args = parser.parse_args(argv)
    clip = evalset.clip(args.clip)
    samples: dict[str, tuple[list[float], list[float]]] = {
        "transcribe": ([], []),
        "list_jobs": ([], []),
    }
    for round_ in range(args.rounds):
        order = (True, False) if round_ % 2 == 0 else (False, True)
        with (
            mesh(pki=order[0]) as first,
            mesh(pki=order[1]) as second,
        ):
            secure, plain = (first, second) if order[0] else (second, first)
            on, off = bench_mesh.stub(secure.gateway_addr), bench_mesh.stub(plain.gateway_addr)
            for stub in (on, off):  # warm-ups, not timed
                transcribe(stub, clip)
                list_jobs(stub)
            for name, call, pairs in (
                ("transcribe", lambda s: transcribe(s, clip), args.pairs),
                ("list_jobs", list_jobs, args.pairs * 5),
            ):
                with_tls, without = paired(pairs, call, on, off)
                samples[name][0].extend(with_tls)
                samples[name][1].extend(without)
    print(report(f"Transcribe {clip.id} ({clip.duration_seconds:.1f} s)", *samples["transcribe"]))
    print(report("ListJobs (no decoding)", *samples["list_jobs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
