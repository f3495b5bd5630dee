"""Mesh overhead: one short clip through the gateway's Transcribe ÷ the raw engine on the same
clip, with the same model, threads and preset (goal <= 1.05).

The mesh's direct transcriber has 1 slot of `threads()` CPU threads, like the baseline engine;
one call at a time, so the clip always takes the direct path (the mesh has no queue
transcriber). Engine and mesh calls come in pairs, after one untimed warm-up call each, the pair's
order alternating (engine first, then mesh first); the figure is the median of the pairs' ratios.
A shared 2-core machine drifts by 5-10% over a minute, more than the overhead being measured:
a ratio of two calls made one after the other sees the same drift in both, a ratio of medians
taken over the whole section does not.
"""

from __future__ import annotations

import time

from bench import bench_mesh, evalset, raw_engine
from bench.figures import Figure, median
from bench.report import paired_ratios, ratio
from sayit.common.v1 import audio_pb2, transcription_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support.mesh import Mesh

SECTION = "mesh_overhead"
CLIPS = ("en_jfk", "ko_deeply_sub100111a00054")  # 11.0 s and 8.4 s
# --quick (tests): two shorter clips, still in the 5-12 s range the goal is about.
QUICK_CLIPS = ("en_pv_leopard_test", "ko_deeply_sub100120a00042")  # 5.9 s and 5.0 s


def transcribe(stub: pb_grpc.SpeechServiceStub, clip: evalset.Clip) -> float:
    """Seconds for one gateway Transcribe of the clip (it must come back as a transcript)."""
    request = pb.TranscribeRequest(
        audio=audio_pb2.Audio(content=clip.read(), filename=clip.path.name),
        config=transcription_pb2.TranscriptionConfig(language_code=clip.language),
    )
    started = time.monotonic()
    reply = stub.Transcribe(request, timeout=300)
    seconds = time.monotonic() - started
    if not reply.HasField("transcript"):
        raise RuntimeError(f"{clip.id} was queued instead of transcribed at once")
    return seconds


def _last_processing_seconds(mesh: Mesh) -> float:
    """The direct transcriber's own time for its last call (its `transcription_finished` log
    line: slot taken to last segment), to tell decoding from the mesh's hops in the note."""
    finished = [
        e
        for e in mesh.log_events("transcriber-direct")
        if e.get("event") == "transcription_finished"
    ]
    return float(finished[-1]["processing_seconds"]) if finished else float("nan")


def run(quick: bool) -> list[Figure]:
    repeats = 1 if quick else 9
    threads = raw_engine.threads()
    clips = [evalset.clip(c) for c in (QUICK_CLIPS if quick else CLIPS)]
    engine = raw_engine.engine(threads)
    figures = []
    # One call at a time always finds the direct slot free: no queue transcriber needed.
    with bench_mesh.running(direct_slots=1, direct_threads=threads, queue_transcribers=0) as mesh:
        stub = bench_mesh.stub(mesh.gateway_addr)
        raw_engine.transcribe_clip(engine, clips[0])  # warm-ups, not timed
        transcribe(stub, clips[0])
        for clip in clips:
            raw: list[float] = []
            served: list[float] = []
            inside: list[float] = []
            for n in range(repeats):
                engine_first = n % 2 == 0
                if engine_first:
                    raw.append(raw_engine.transcribe_clip(engine, clip).seconds)
                served.append(transcribe(stub, clip))
                inside.append(_last_processing_seconds(mesh))
                if not engine_first:
                    raw.append(raw_engine.transcribe_clip(engine, clip).seconds)
            figures.append(
                Figure(
                    SECTION,
                    f"transcribe_{clip.id}",
                    round(median(paired_ratios(served, raw)), 3),
                    "ratio",
                    baseline=f"raw engine on the same {clip.duration_seconds:.1f} s clip",
                    goal="<= 1.05",
                    samples=tuple(round(x, 3) for x in served + raw),
                    note=f"1 slot x {threads} threads; median of {repeats} paired ratios "
                    f"(ratio of medians {ratio(median(served), median(raw)):.3f}): gateway "
                    f"{median(served):.2f} s (of which the transcriber's own decoding "
                    f"{median(inside):.2f} s), engine {median(raw):.2f} s (samples: gateway, "
                    "then engine)",
                )
            )
    return figures
