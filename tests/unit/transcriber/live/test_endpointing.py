"""The utterance state machine over synthetic frame probabilities (32 ms frames)."""

from __future__ import annotations

from services.transcriber.live.endpointing import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Ended,
    Endpointer,
    EndpointSettings,
    Event,
    Paused,
    Resumed,
    Started,
)

FRAME = FRAME_SAMPLES / SAMPLE_RATE


def frames(seconds: float) -> int:
    return round(seconds / FRAME)


def run(settings: EndpointSettings, pattern: list[tuple[float, float]]) -> list[Event]:
    """Events for (probability, seconds) stretches, then the end of the stream."""
    endpointer = Endpointer(settings)
    events: list[Event] = []
    for prob, seconds in pattern:
        events += endpointer.push_many([prob] * frames(seconds))
    return events + endpointer.flush(endpointer.frame * FRAME_SAMPLES)


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_one_utterance_with_padding_and_an_endpoint_after_the_silence() -> None:
    settings = EndpointSettings(silence_seconds=0.5, pad_before_seconds=0.4, pad_after_seconds=0.2)
    events = run(settings, [(0.05, 1.0), (0.9, 2.0), (0.05, 1.0)])
    assert kinds(events) == ["Started", "Paused", "Ended"]
    started, paused, ended = events
    assert isinstance(started, Started) and isinstance(ended, Ended)
    assert isinstance(paused, Paused)
    onset = frames(1.0) * FRAME_SAMPLES
    assert started.time == onset / SAMPLE_RATE
    assert started.audio_start == onset - round(0.4 * SAMPLE_RATE)
    speech_end = (frames(1.0) + frames(2.0)) * FRAME_SAMPLES
    assert ended.time == speech_end / SAMPLE_RATE
    assert ended.audio_end == paused.audio_end == speech_end + round(0.2 * SAMPLE_RATE)
    assert paused.speech_end == speech_end and not ended.cut


def test_a_blip_shorter_than_the_minimum_speech_is_no_utterance() -> None:
    settings = EndpointSettings(min_speech_seconds=0.15)
    assert run(settings, [(0.05, 0.5), (0.9, 0.064), (0.05, 1.0)]) == []


def test_a_short_pause_inside_speech_pauses_and_resumes_without_an_endpoint() -> None:
    settings = EndpointSettings(silence_seconds=0.5, pad_after_seconds=0.2)
    events = run(settings, [(0.9, 1.0), (0.05, 0.3), (0.9, 1.0), (0.05, 0.8)])
    assert kinds(events) == ["Started", "Paused", "Resumed", "Paused", "Ended"]
    assert {e.utterance for e in events} == {1}


def test_probabilities_between_the_thresholds_keep_the_current_state() -> None:
    # 0.4 is below the 0.5 threshold but above the 0.35 negative threshold: inside speech it
    # neither starts a pause nor, while idle, resets a starting run.
    settings = EndpointSettings(silence_seconds=0.5)
    events = run(settings, [(0.9, 1.0), (0.4, 2.0), (0.05, 0.6)])
    assert kinds(events) == ["Started", "Paused", "Ended"]
    ended = events[-1]
    assert isinstance(ended, Ended)
    assert ended.time == (frames(1.0) + frames(2.0)) * FRAME_SAMPLES / SAMPLE_RATE


def test_a_soft_ending_below_the_negative_threshold_stays_in_the_utterance() -> None:
    # A soft sentence ending scored 0.2-0.44 (Korean endings after earlier speech): inside an
    # utterance speech lasts down to threshold - END_MARGIN (0.15), so the ending is decoded.
    settings = EndpointSettings(silence_seconds=0.5, pad_after_seconds=0.2)
    events = run(settings, [(0.9, 1.0), (0.25, 0.6), (0.05, 0.6)])
    assert kinds(events) == ["Started", "Paused", "Ended"]
    ended = events[-1]
    assert isinstance(ended, Ended)
    assert ended.time == (frames(1.0) + frames(0.6)) * FRAME_SAMPLES / SAMPLE_RATE


def test_with_a_low_threshold_silence_still_ends_the_utterance() -> None:
    # threshold 0.3: the end threshold is 0.09 (0.3 * END_MIN_RATIO), not 0.3 - 0.35.
    settings = EndpointSettings(threshold=0.3, silence_seconds=0.5)
    events = run(settings, [(0.9, 1.0), (0.2, 0.3), (0.02, 0.6), (0.9, 1.0)])
    assert kinds(events) == ["Started", "Paused", "Ended", "Started", "Ended"]
    ended = events[2]
    assert isinstance(ended, Ended)
    assert ended.time == (frames(1.0) + frames(0.3)) * FRAME_SAMPLES / SAMPLE_RATE


def test_while_idle_a_starting_run_is_still_forgotten_below_the_negative_threshold() -> None:
    # Only the end of speech uses the lower threshold: idle, 0.25 (below 0.35) resets a run, so
    # frames hovering around the threshold (noise) do not add up to an utterance.
    settings = EndpointSettings(min_speech_seconds=0.15)
    pattern = [(0.05, 0.5)] + [(0.9, 0.064), (0.25, 0.064)] * 10 + [(0.05, 1.0)]
    assert run(settings, pattern) == []


def test_two_utterances_are_numbered_and_the_second_padding_never_overlaps_the_first() -> None:
    settings = EndpointSettings(silence_seconds=0.3, pad_before_seconds=0.4, pad_after_seconds=0.2)
    events = run(settings, [(0.9, 1.0), (0.05, 0.4), (0.9, 1.0), (0.05, 0.5)])
    starts = [e for e in events if isinstance(e, Started)]
    ends = [e for e in events if isinstance(e, Ended)]
    assert [e.utterance for e in starts] == [1, 2] and [e.utterance for e in ends] == [1, 2]
    assert starts[1].audio_start >= ends[0].audio_end


def test_the_stream_ending_mid_speech_flushes_the_open_utterance() -> None:
    settings = EndpointSettings()
    events = run(settings, [(0.05, 0.5), (0.9, 1.5)])
    assert kinds(events) == ["Started", "Ended"]
    ended = events[-1]
    assert isinstance(ended, Ended)
    assert ended.audio_end == (frames(0.5) + frames(1.5)) * FRAME_SAMPLES


def test_long_speech_is_cut_at_its_quietest_pause_in_the_later_part() -> None:
    settings = EndpointSettings(
        max_utterance_seconds=10.0, silence_seconds=0.5, pad_before_seconds=0
    )
    # 12 s of speech with two short dips that never reach the negative threshold (0.35): a
    # deep one at 3 s (in the first half, not searched) and a shallower one at 7 s.
    pattern = [
        (0.9, 3.0),
        (0.36, 0.2),
        (0.9, 4.0),
        (0.45, 0.2),
        (0.95, 4.6),
        (0.05, 0.6),
    ]
    events = run(settings, pattern)
    assert kinds(events) == ["Started", "Ended", "Started", "Paused", "Ended"]
    first_end, second_start = events[1], events[2]
    assert isinstance(first_end, Ended) and isinstance(second_start, Started)
    assert first_end.cut
    # Cut inside the deeper dip (7.2-7.4 s), and the next utterance starts at the same sample.
    assert 7.1 <= first_end.time <= 7.5
    assert second_start.audio_start == first_end.audio_end
    assert second_start.time == first_end.time
    assert first_end.audio_end <= round(10.0 * SAMPLE_RATE)


def test_speech_without_any_dip_is_still_cut_before_the_limit_and_nothing_is_lost() -> None:
    settings = EndpointSettings(max_utterance_seconds=5.0, pad_before_seconds=0)
    events = run(settings, [(0.9, 16.0)])
    starts = [e for e in events if isinstance(e, Started)]
    ends = [e for e in events if isinstance(e, Ended)]
    assert len(starts) == len(ends) >= 4
    assert starts[0].audio_start == 0
    for start, end in zip(starts, ends, strict=True):
        assert 0 < end.audio_end - start.audio_start <= 5 * SAMPLE_RATE
    for end, following in zip(ends, starts[1:], strict=False):
        assert following.audio_start == end.audio_end  # contiguous: no gap, no overlap
    assert ends[-1].audio_end == frames(16.0) * FRAME_SAMPLES


def test_reaching_the_limit_inside_a_pause_ends_the_utterance_there() -> None:
    settings = EndpointSettings(
        max_utterance_seconds=5.0, silence_seconds=2.0, pad_before_seconds=0
    )
    events = run(settings, [(0.9, 4.8), (0.05, 1.0), (0.9, 1.0), (0.05, 2.5)])
    ends = [e for e in events if isinstance(e, Ended)]
    assert not ends[0].cut
    assert ends[0].time == frames(4.8) * FRAME_SAMPLES / SAMPLE_RATE
    assert [e.utterance for e in events if isinstance(e, Started)] == [1, 2]


def test_resumed_only_follows_a_pause() -> None:
    events = run(EndpointSettings(pad_after_seconds=0.2), [(0.9, 1.0), (0.05, 0.1), (0.9, 1.0)])
    assert not any(isinstance(e, Resumed) for e in events)
