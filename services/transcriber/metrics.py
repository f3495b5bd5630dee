"""The transcriber's Prometheus metrics: audio transcribed, speed, outcomes and slots."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.common.slots import Slots

# Processing seconds per audio second; below 1 is faster than real time.
RTF_BUCKETS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)

AUDIO_SECONDS = Counter(
    "sayit_audio_seconds_transcribed_total",
    "Seconds of audio transcribed to the end, by model.",
    ["model"],
)
REAL_TIME_FACTOR = Histogram(
    "sayit_transcription_real_time_factor",
    "Processing seconds per second of audio of each finished transcription, by model.",
    ["model"],
    buckets=RTF_BUCKETS,
)
TRANSCRIPTIONS = Counter(
    "sayit_transcriptions_total",
    "Transcriptions by outcome: completed, or stopped (cancelled, deadline, caller gone).",
    ["model", "outcome"],
)
SLOTS_BUSY = Gauge("sayit_transcriber_slots_busy", "Transcription slots in use.")
SLOTS_TOTAL = Gauge("sayit_transcriber_slots_total", "Transcription slots of this transcriber.")
CALLS_WAITING = Gauge(
    "sayit_transcriber_calls_waiting", "Calls waiting, audio decoded, for a transcription slot."
)


def track_slots(slots: Slots) -> None:
    """Report the slots' state at every scrape."""
    SLOTS_BUSY.set_function(lambda: slots.busy)
    SLOTS_TOTAL.set_function(lambda: slots.total)
    CALLS_WAITING.set_function(lambda: slots.waiting)


def transcription_finished(model: str, audio_seconds: float, processing_seconds: float) -> None:
    TRANSCRIPTIONS.labels(model, "completed").inc()
    AUDIO_SECONDS.labels(model).inc(audio_seconds)
    if audio_seconds > 0:
        REAL_TIME_FACTOR.labels(model).observe(processing_seconds / audio_seconds)


def transcription_stopped(model: str) -> None:
    TRANSCRIPTIONS.labels(model, "stopped").inc()
