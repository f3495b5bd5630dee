"""Speech regions decoded as windows of their own (the default for audio with the VAD on).

faster-whisper's own VAD mode glues all speech together and decodes it in 30 s windows. On
joined or long Korean speech the base model then often writes the first sentence of a window,
ends it with a timestamp at the window's end and skips everything else in it (44% CER on a
3-minute Korean file, 8.8% with regions; docs/presets.md). Decoding each pause-bounded region,
merged with its neighbours up to a length below 30 s, as its own window avoids that: a window
never holds more than one region's worth of speech, and timestamps stay in the file's time.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable


def merge(spans: Iterable[tuple[float, float]], max_seconds: float) -> list[tuple[float, float]]:
    """Speech spans (seconds, in order) merged with their neighbours while a merged region stays
    at most `max_seconds` long. A span longer than that on its own stays as it is (the VAD is
    asked to cut speech at that length already)."""
    regions: list[tuple[float, float]] = []
    for start, end in spans:
        if regions and end - regions[-1][0] <= max_seconds:
            regions[-1] = (regions[-1][0], end)
        else:
            regions.append((start, end))
    return regions


def lead_in(regions: list[tuple[float, float]], seconds: float) -> list[tuple[float, float]]:
    """Each region started up to `seconds` earlier, never before 0 or the previous region's end:
    the VAD's onset can cut a soft first syllable after a pause, and widening the VAD's own
    padding instead changes how regions merge (docs/presets.md, round 5)."""
    widened: list[tuple[float, float]] = []
    for start, end in regions:
        floor = widened[-1][1] if widened else 0.0
        widened.append((max(floor, start - seconds, 0.0), end))
    return widened


def end_of(regions: list[tuple[float, float]], start: float) -> float:
    """The end of the region holding `start`, the time a decoded window began (the last region
    starting at or before it; the first one for a time before every region)."""
    index = max(0, bisect.bisect_right([s for s, _ in regions], start + 1e-6) - 1)
    return regions[index][1]


def clip_timestamps(regions: list[tuple[float, float]]) -> list[float]:
    """faster-whisper's clip_timestamps: start, end, start, end, ..."""
    return [t for region in regions for t in region]


def speech_seconds(regions: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in regions)
