"""services.transcriber.regions: speech spans merged into windows of their own."""

from __future__ import annotations

from services.transcriber import regions


def test_neighbours_merge_while_the_region_stays_short_enough() -> None:
    spans = [(0.5, 4.0), (4.6, 9.0), (9.6, 24.0), (24.6, 30.0), (31.0, 33.0)]
    assert regions.merge(spans, 25.0) == [(0.5, 24.0), (24.6, 33.0)]


def test_a_long_span_stays_whole_and_starts_a_region() -> None:
    assert regions.merge([(0.0, 2.0), (3.0, 40.0), (41.0, 42.0)], 25.0) == [
        (0.0, 2.0),
        (3.0, 40.0),
        (41.0, 42.0),
    ]


def test_no_speech_no_regions() -> None:
    assert regions.merge([], 25.0) == []
    assert regions.clip_timestamps([]) == []


def test_clip_timestamps_and_speech_seconds() -> None:
    merged = [(0.5, 24.0), (24.6, 33.0)]
    assert regions.clip_timestamps(merged) == [0.5, 24.0, 24.6, 33.0]
    assert regions.speech_seconds(merged) == 23.5 + 8.4


def test_lead_in_starts_regions_earlier_without_overlapping_the_previous_one() -> None:
    merged = [(0.2, 5.0), (5.3, 12.0), (14.0, 20.0)]
    assert regions.lead_in(merged, 0.4) == [(0.0, 5.0), (5.0, 12.0), (13.6, 20.0)]
    assert regions.lead_in(merged, 0.0) == merged
    assert regions.lead_in([], 0.4) == []


def test_end_of_the_region_a_segment_starts_in() -> None:
    merged = [(0.0, 5.0), (5.0, 12.0), (13.6, 20.0)]
    assert regions.end_of(merged, 0.0) == 5.0
    assert regions.end_of(merged, 4.9) == 5.0
    assert regions.end_of(merged, 5.0) == 12.0  # a segment starting where a window starts
    assert regions.end_of(merged, 12.5) == 12.0
    assert regions.end_of(merged, 14.0) == 20.0
    assert regions.end_of(merged, 25.0) == 20.0


def test_end_of_a_window_whose_start_was_rounded_down_to_a_frame() -> None:
    # faster-whisper starts the window of a region at 52.552 s on frame 5255 (52.55 s); the
    # engine looks the window up half a frame later.
    merged = [(48.24, 52.552), (52.552, 77.376)]
    assert regions.end_of(merged, (5255 + 0.5) / 100) == 77.376
    assert regions.end_of(merged, (4824 + 0.5) / 100) == 52.552
