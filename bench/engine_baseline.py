"""The raw engine alone (no ratios): real-time factor of faster-whisper in this process on the
short clips, the reference every other section divides by. Cheap; also a smoke test."""

from __future__ import annotations

from bench import raw_engine
from bench.figures import Figure, median
from devsupport import evalset

SECTION = "engine_baseline"
CLIPS = ("en_jfk", "ko_deeply_sub100111a00054")
QUICK_CLIPS = ("en_pv_leopard_test", "ko_deeply_sub100120a00042")


def run(quick: bool) -> list[Figure]:
    repeats = 1 if quick else 5
    threads = raw_engine.threads()
    engine = raw_engine.engine(threads)
    clips = [evalset.clip(c) for c in (QUICK_CLIPS if quick else CLIPS)]
    raw_engine.transcribe_clip(engine, clips[0])  # warm-up
    figures = []
    for clip in clips:
        seconds = [raw_engine.transcribe_clip(engine, clip).seconds for _ in range(repeats)]
        figures.append(
            Figure(
                SECTION,
                f"rtf_{clip.id}",
                round(median(seconds) / clip.duration_seconds, 4),
                "s/s",
                baseline=f"{clip.duration_seconds:.1f} s of audio",
                samples=tuple(round(s, 3) for s in seconds),
                note=f"processing seconds per audio second, 1 slot x {threads} threads, "
                f"median of {repeats}",
            )
        )
    return figures
