"""The live session with a fake engine and a fake VAD (speech = loud frames): order of outputs,
speculative finals, interims, half-close, long speech and bounded memory."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from services.transcriber import presets
from services.transcriber.engine import Analysis, DecodedSegment, EngineRequest, InterimDecode
from services.transcriber.live import endpointing
from services.transcriber.live.scheduling import DecodeQueue
from services.transcriber.live.session import (
    FinalResult,
    InterimResult,
    LiveSession,
    Output,
    SessionSettings,
    SpeechEnded,
    SpeechStarted,
    Summary,
)

RATE = 16_000
LOUD = 0.3


class LoudnessVad:
    """Stands in for the Silero ONNX session: a frame is speech when it is loud (as the VAD
    hears it: level-scaled to about 0.05 RMS, silence stays near 0)."""

    def run(self, _: Any, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, Any, Any]:
        frames = feeds["input"][:, 64:]
        probs = np.where(np.abs(frames).max(axis=1) > 0.01, 0.95, 0.02).astype(np.float32)
        return probs[:, None], feeds["h"], feeds["c"]


class FakeDecoder:
    """Says how many seconds of loud audio it was given."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.finals: list[float] = []
        self.interims = 0
        self.lock = threading.Lock()

    def _loud_seconds(self, audio: np.ndarray) -> float:
        return round(float((np.abs(audio) > 0.1).sum()) / RATE, 1)

    def interim(self, audio: np.ndarray, language: str, task: str) -> InterimDecode:
        with self.lock:
            self.interims += 1
        return InterimDecode(f"heard {self._loud_seconds(audio)}", "en", 0.99)

    def detect(self, audio: np.ndarray) -> tuple[str, float]:
        return "en", 0.99

    def final(
        self, audio: np.ndarray, request: EngineRequest
    ) -> tuple[Analysis, list[DecodedSegment]]:
        if self.delay:
            threading.Event().wait(self.delay)
        seconds = self._loud_seconds(audio)
        with self.lock:
            self.finals.append(seconds)
        duration = len(audio) / RATE
        segment = DecodedSegment(1, 0.0, duration, f"said {seconds}", -0.2, 0.01, 1.0, 0.0, ())
        return Analysis("en", 1.0, duration, duration), [segment]


def settings(**changes: Any) -> SessionSettings:
    base = SessionSettings(
        encoding="linear16",
        sample_rate=RATE,
        channels=1,
        interim_results=False,
        endpoint=endpointing.EndpointSettings(),
        request=EngineRequest(
            language="en",
            task="transcribe",
            preset=presets.lookup("en", "accurate"),
            word_timestamps=False,
            vad_filter=True,
        ),
        preset_name="accurate",
    )
    return SessionSettings(**{**base.__dict__, **changes})


def speech(pattern: list[tuple[bool, float]]) -> bytes:
    """LINEAR16 audio: loud (a 200 Hz square wave) or silent stretches."""
    pieces = []
    for loud, seconds in pattern:
        n = int(seconds * RATE)
        t = np.arange(n) / RATE
        square = np.where(np.sin(2 * np.pi * 200 * t) >= 0, LOUD, -LOUD)
        pieces.append(square if loud else np.zeros(n))
    return (np.concatenate(pieces) * 32767).astype("<i2").tobytes()


async def chunks(data: bytes, size: int = 3200, pause: float = 0.0) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(pause)


async def collect(session: LiveSession, audio: AsyncIterator[bytes]) -> list[Output]:
    return [output async for output in session.run(audio)]


def session_for(decoder: FakeDecoder, pool: DecodeQueue, **changes: Any) -> LiveSession:
    return LiveSession(settings(**changes), decoder, pool, LoudnessVad())


@pytest.fixture
def pool() -> Any:
    queue = DecodeQueue(2)
    yield queue
    queue.close()


def per_utterance(outputs: list[Output]) -> dict[int, list[str]]:
    order: dict[int, list[str]] = {}
    for output in outputs:
        if not isinstance(output, Summary):
            order.setdefault(output.utterance, []).append(type(output).__name__)
    return order


async def test_utterances_come_out_in_order_each_started_ended_final(pool: Any) -> None:
    decoder = FakeDecoder()
    audio = speech([(False, 0.5), (True, 1.0), (False, 1.0), (True, 2.0), (False, 1.0)])
    outputs = await collect(session_for(decoder, pool), chunks(audio))
    assert per_utterance(outputs) == {
        1: ["SpeechStarted", "SpeechEnded", "FinalResult"],
        2: ["SpeechStarted", "SpeechEnded", "FinalResult"],
    }
    # No output of utterance 2 before utterance 1's final result.
    numbers = [o.utterance for o in outputs if not isinstance(o, Summary)]
    assert numbers == sorted(numbers)
    finals = [o for o in outputs if isinstance(o, FinalResult)]
    assert [f.text for f in finals] == ["said 1.0", "said 2.0"]
    assert finals[0].segment is not None and finals[0].segment.id == 1
    # On the session clock, padded 1 s before the onset but not into utterance 1 (ends 1.5 + 0.2).
    assert finals[1].start == pytest.approx(1.7, abs=0.05)
    summary = outputs[-1]
    assert isinstance(summary, Summary)
    assert summary.audio_seconds == pytest.approx(5.5, abs=0.01)
    assert summary.utterances == 2 and summary.language == "en"


async def test_interim_results_come_between_started_and_ended(pool: Any) -> None:
    decoder = FakeDecoder()
    audio = speech([(True, 3.0), (False, 1.0)])
    session = session_for(decoder, pool, interim_results=True)
    # Paced so that the decodes keep up (50 ms of audio every 5 ms).
    outputs = await collect(session, chunks(audio, size=1600, pause=0.005))
    kinds = per_utterance(outputs)[1]
    assert kinds[0] == "SpeechStarted" and kinds[-2:] == ["SpeechEnded", "FinalResult"]
    interims = [o for o in outputs if isinstance(o, InterimResult)]
    assert len(interims) >= 2
    assert all(0.0 <= i.stability <= 1.0 for i in interims)
    assert [i.end for i in interims] == sorted(i.end for i in interims)


async def test_the_final_decode_starts_in_the_pause_and_is_reused_at_the_endpoint(
    pool: Any,
) -> None:
    decoder = FakeDecoder()
    audio = speech([(True, 2.0), (False, 1.0)])
    session = session_for(decoder, pool)
    await collect(session, chunks(audio, size=1600, pause=0.005))
    assert decoder.finals == [2.0]  # decoded once: the speculative decode was the final one
    assert session.stats.speculative_used == 1


async def test_a_pause_that_ends_in_speech_discards_the_speculative_decode(pool: Any) -> None:
    decoder = FakeDecoder()
    audio = speech([(True, 1.0), (False, 0.35), (True, 1.0), (False, 1.0)])
    session = session_for(decoder, pool)
    outputs = await collect(session, chunks(audio, size=1600, pause=0.005))
    assert [o.text for o in outputs if isinstance(o, FinalResult)] == ["said 2.0"]
    assert session.stats.speculative_wasted >= 1


async def test_half_close_mid_speech_flushes_the_last_utterance(pool: Any) -> None:
    decoder = FakeDecoder()
    audio = speech([(False, 0.3), (True, 1.5)])
    outputs = await collect(session_for(decoder, pool), chunks(audio))
    assert [type(o).__name__ for o in outputs] == [
        "SpeechStarted",
        "SpeechEnded",
        "FinalResult",
        "Summary",
    ]
    assert isinstance(outputs[2], FinalResult) and outputs[2].text == "said 1.5"


async def test_speech_longer_than_the_limit_is_cut_and_nothing_is_lost(pool: Any) -> None:
    decoder = FakeDecoder()
    # 70 s of speech, with a 0.2 s pause (shorter than the endpoint silence) every 7 s.
    pattern: list[tuple[bool, float]] = []
    for _ in range(10):
        pattern += [(True, 6.8), (False, 0.2)]
    audio = speech(pattern)
    session = session_for(decoder, pool)
    outputs = await collect(session, chunks(audio, size=32000))
    finals = [o for o in outputs if isinstance(o, FinalResult)]
    assert len(finals) >= 3
    heard = [float(f.text.split()[1]) for f in finals]
    assert sum(heard) == pytest.approx(68.0, abs=0.3), [(f.start, f.end, f.text) for f in finals]
    for final in finals:
        assert final.end - final.start <= 30.0
    # Contiguous: each utterance begins where the one before ended.
    for before, after in itertools.pairwise(finals):
        assert after.start == pytest.approx(before.end, abs=0.01)


async def test_memory_stays_bounded_over_a_long_session(pool: Any) -> None:
    decoder = FakeDecoder()
    one = speech([(True, 2.0), (False, 1.0)])
    session = session_for(decoder, pool)
    held: list[int] = []

    async def audio() -> AsyncIterator[bytes]:
        for _ in range(60):  # 3 minutes
            async for chunk in chunks(one, size=16000):
                yield chunk
            held.append(session.held_samples)

    outputs = await collect(session, audio())
    assert len([o for o in outputs if isinstance(o, FinalResult)]) == 60
    assert max(held) < 8 * RATE  # a few seconds, not minutes


async def test_silence_only_gives_just_the_summary(pool: Any) -> None:
    outputs = await collect(session_for(FakeDecoder(), pool), chunks(speech([(False, 3.0)])))
    assert len(outputs) == 1 and isinstance(outputs[0], Summary)
    assert outputs[0].utterances == 0


async def test_results_are_speech_events_then_results_for_each_utterance(pool: Any) -> None:
    outputs = await collect(
        session_for(FakeDecoder(), pool), chunks(speech([(True, 1.0), (False, 1.0)]))
    )
    assert isinstance(outputs[0], SpeechStarted) and isinstance(outputs[1], SpeechEnded)
    assert outputs[1].time == pytest.approx(1.0, abs=0.05)


async def test_stop_reading_flushes_the_open_utterance_while_the_caller_still_sends(
    pool: Any,
) -> None:
    session = session_for(FakeDecoder(), pool)
    speaking = speech([(False, 0.3), (True, 1.2)])

    async def endless() -> AsyncIterator[bytes]:
        async for chunk in chunks(speaking):
            yield chunk
        session.stop_reading()
        await asyncio.Event().wait()  # never sends another chunk, never half-closes

    outputs = await asyncio.wait_for(collect(session, endless()), timeout=5)
    assert [type(o).__name__ for o in outputs] == [
        "SpeechStarted",
        "SpeechEnded",
        "FinalResult",
        "Summary",
    ]
    assert session.stopped
