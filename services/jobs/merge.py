"""Chunk transcripts -> the job's transcript: timestamps shifted to the whole file, segments in
order and renumbered, one language for the whole."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sayit.common.v1 import transcription_pb2 as tpb


def shifted_segment(segment: tpb.Segment, offset: float) -> tpb.Segment:
    """A chunk's segment (and its words) on the whole file's clock."""
    moved = tpb.Segment()
    moved.CopyFrom(segment)
    moved.start_seconds += offset
    moved.end_seconds += offset
    for word in moved.words:
        word.start_seconds += offset
        word.end_seconds += offset
    return moved


def shifted_transcript(transcript: tpb.Transcript, offset: float) -> tpb.Transcript:
    moved = tpb.Transcript()
    moved.CopyFrom(transcript)
    del moved.segments[:]
    moved.segments.extend(shifted_segment(s, offset) for s in transcript.segments)
    return moved


def merge(
    chunks: Sequence[tpb.Transcript], duration_seconds: float, processing_seconds: float
) -> tpb.Transcript:
    """The transcript of the whole file from its chunks' (already shifted) transcripts, in
    chunk order."""
    if not chunks:
        raise ValueError("nothing to merge")
    segments: list[tpb.Segment] = []
    for chunk in chunks:
        for segment in chunk.segments:
            merged = tpb.Segment()
            merged.CopyFrom(segment)
            merged.id = len(segments)
            segments.append(merged)
    language, probability = _language(chunks)
    first = chunks[0]
    return tpb.Transcript(
        text=" ".join(s.text.strip() for s in segments if s.text.strip()),
        language_code=language,
        language_probability=probability,
        audio_duration_seconds=duration_seconds,
        segments=segments,
        model=first.model,
        processing_seconds=processing_seconds,
        preset=first.preset,
    )


def _language(chunks: Sequence[tpb.Transcript]) -> tuple[str, float]:
    """The language spoken longest (chunks detect it on their own when none was given), and
    the detector's probability averaged over that language's audio."""
    seconds: dict[str, float] = defaultdict(float)
    weighted: dict[str, float] = defaultdict(float)
    for chunk in chunks:
        weight = max(chunk.audio_duration_seconds, 1e-6)
        seconds[chunk.language_code] += weight
        weighted[chunk.language_code] += weight * chunk.language_probability
    language = max(seconds, key=lambda code: seconds[code])
    return language, weighted[language] / seconds[language]
