"""One live session: audio in as it arrives, speech events and interim and final results out.

Audio goes through pcm (to 16 kHz mono), the incremental VAD and the endpointer (utterances)
as it is read; decodes run in a worker thread, one at a time per session, in this order of
priority:
1. the final decode of an ended utterance, with the session's preset through the same
   `Engine.transcribe` as a file (its own VAD regions, fallbacks, re-decoded skips), so a final
   result is what `Transcribe` of that utterance's audio writes, then judged by the same guards;
2. a speculative final decode when an utterance pauses (`Paused`: non-speech for the
   after-padding): its audio is exactly what the final decode would get if the silence lasts to
   the endpoint, so at the endpoint the result is ready or nearly so; if speech resumes it is
   dropped. Measured at real-time pace, one session, 2 cores shared with other work: endpoint
   latency median 1.36 s with it, 1.62 s without (p95 1.87 / 2.83 s); 1 of 9 such decodes
   was wasted on a pause that ended in speech;
3. an interim decode of the open utterance so far (when asked for), once at least
   `interim_every_seconds` of new audio arrived since the last one (`Engine.decode_interim`:
   greedy, no timestamps, a short encoder window), shown through `agreement`.
Each session has at most one decode queued or running; the decodes of all sessions go through
one `scheduling.DecodeQueue`, most urgent first (finals, then speculative finals, then interims),
so a busy session cannot starve another and interims yield to finals under load.

Order of outputs, per utterance n: SpeechStarted(n), InterimResult(n)..., SpeechEnded(n),
FinalResult(n); utterance n+1's outputs wait until n's final result is out (`Outbox`). After the
audio ends (half-close) the open utterance is flushed the same way, then `Summary`.

Memory: audio older than every utterance not yet final (and than the padding an utterance may
still reach back for) is dropped; reading stops (gRPC flow control then holds the caller back)
while MAX_PENDING_FINALS ended utterances wait for their final decode. So a session holds at
most two ended utterances and the open one (each at most max_utterance_seconds: under 6 MB of
float32), whatever its length, and only when the caller sends faster than it is decoded.

Language: a language given in the config is used throughout. With none, each utterance's
language is detected on its own audio before its final decode (Whisper's detection on one
window, as `Transcribe` does for a file), and decoded in it; when that detection is unsure
(probability under TRUST_DETECTION) and an earlier utterance was detected surely, the earlier
language is used instead (short utterances detect poorly; a speaker rarely switches language
mid-session, but can). Interim decodes use the last utterance's language, or detect on the
utterance so far (and show nothing while that detection is unsure). The summary reports the
language heard longest.

Times are seconds since the session's first sample (after resampling).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from services.transcriber import guards, presets
from services.transcriber.engine import (
    Analysis,
    DecodedSegment,
    DecodedWord,
    EngineRequest,
    InterimDecode,
)
from services.transcriber.live import agreement, endpointing, pcm, scheduling, vad

SAMPLE_RATE = 16_000
TRUST_DETECTION = 0.5
# No interim decode of less audio than this: Whisper writes nonsense or loops on a fragment.
INTERIM_MIN_SECONDS = 1.0
# How often a queued decode checks it is still wanted (see scheduling).
WANTED_POLL_SECONDS = 0.05
# Reading waits while this many ended utterances wait for their final decode.
MAX_PENDING_FINALS = 2


@dataclass(frozen=True)
class SessionSettings:
    encoding: str
    sample_rate: int
    channels: int
    interim_results: bool
    endpoint: endpointing.EndpointSettings
    request: EngineRequest  # the final decode's, as for a file
    preset_name: str
    interim_every_seconds: float = 0.5
    speculative: bool = True


class Decoder(Protocol):
    """What a session needs of the engine (blocking calls, run in a worker thread)."""

    def interim(self, audio: np.ndarray, language: str, task: str) -> InterimDecode: ...

    def detect(self, audio: np.ndarray) -> tuple[str, float]: ...

    def final(
        self, audio: np.ndarray, request: EngineRequest
    ) -> tuple[Analysis, list[DecodedSegment]]: ...


@dataclass(frozen=True)
class SpeechStarted:
    utterance: int
    time: float


@dataclass(frozen=True)
class SpeechEnded:
    utterance: int
    time: float


@dataclass(frozen=True)
class InterimResult:
    utterance: int
    text: str
    stability: float
    start: float
    end: float
    language: str


@dataclass(frozen=True)
class FinalResult:
    utterance: int
    text: str
    start: float
    end: float
    language: str
    # The utterance as one segment (id = utterance, session clock) with the guards' flags;
    # None when nothing was said (all text dropped by the guards, or none decoded).
    segment: DecodedSegment | None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    audio_seconds: float
    language: str
    language_probability: float
    processing_seconds: float
    utterances: int


Output = SpeechStarted | SpeechEnded | InterimResult | FinalResult | Summary


class Outbox:
    """Outputs in utterance order: those of a later utterance wait until the earlier one's final
    result is out."""

    def __init__(self, put: Callable[[Output], None]) -> None:
        self._put = put
        self._head = 1
        self._held: dict[int, list[Output]] = {}

    def add(self, utterance: int, item: Output) -> None:
        if utterance == self._head:
            self._put(item)
        else:
            self._held.setdefault(utterance, []).append(item)

    def finish(self, utterance: int) -> None:
        """Utterance `utterance`'s final result is out: the next one's outputs may follow."""
        if utterance != self._head:
            return
        self._head += 1
        for item in self._held.pop(self._head, []):
            self._put(item)


class AudioBuffer:
    """16 kHz samples on the session clock, of which only a recent stretch is held."""

    def __init__(self) -> None:
        self._samples = np.zeros(0, dtype=np.float32)
        self.base = 0  # session sample index of _samples[0]

    @property
    def total(self) -> int:
        return self.base + len(self._samples)

    @property
    def held(self) -> int:
        return len(self._samples)

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._samples = np.concatenate([self._samples, samples])

    def slice(self, start: int, end: int) -> np.ndarray:
        first = max(0, start - self.base)
        return self._samples[first : max(first, end - self.base)].copy()

    def drop_before(self, sample: int) -> None:
        cut = min(len(self._samples), max(0, sample - self.base))
        if cut:
            self._samples = self._samples[cut:]
            self.base += cut


@dataclass
class _Utterance:
    number: int
    audio_start: int
    onset: float
    agreement: agreement.Agreement
    audio_end: int | None = None
    pause_end: int | None = None  # Paused: where the audio would end
    interim_at: int = 0  # the audio end the last interim decode covered
    interims: int = 0


@dataclass
class _Stats:
    interim_seconds: list[float] = field(default_factory=list)
    final_seconds: list[float] = field(default_factory=list)
    speculative_used: int = 0
    speculative_wasted: int = 0


_DONE = object()


class LiveSession:
    def __init__(
        self,
        settings: SessionSettings,
        decoder: Decoder,
        queue: scheduling.DecodeQueue,
        vad_model: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._decoder = decoder
        self._queue = queue
        self._clock = clock
        self._pcm = pcm.PcmDecoder(settings.encoding, settings.sample_rate, settings.channels)
        self._vad = vad.StreamingVad(vad_model)
        self._endpointer = endpointing.Endpointer(settings.endpoint)
        self._buffer = AudioBuffer()
        self._out: asyncio.Queue[Any] = asyncio.Queue()
        self._outbox = Outbox(self._out.put_nowait)
        self._open: _Utterance | None = None
        self._finals: deque[_Utterance] = deque()
        self._speculated: tuple[tuple[int, int, int], tuple[Analysis, list[DecodedSegment]]] | None
        self._speculated = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._reading_done = False
        self._stopping = asyncio.Event()
        self.stopped = False  # stop_reading() was called
        # The language interim decodes use ("" = detect), and the last sure detection.
        self._language = settings.request.language
        self._sure_language = ""
        # Seconds of utterance audio and best probability per language, for the summary.
        self._heard: dict[str, tuple[float, float]] = {}
        self._previous_text = ""
        self._processing = 0.0
        self._utterances = 0
        self.stats = _Stats()
        # The decode queued or running, if any (the place is free once it is done).
        self.in_flight: Future[Any] | None = None
        keep = settings.endpoint.pad_before_seconds + settings.endpoint.min_speech_seconds + 0.5
        self._idle_keep = round(keep * SAMPLE_RATE)

    @property
    def audio_seconds(self) -> float:
        return self._buffer.total / SAMPLE_RATE

    @property
    def held_samples(self) -> int:
        return self._buffer.held

    async def run(self, audio: AsyncIterator[bytes]) -> AsyncIterator[Output]:
        """The session's outputs while `audio` (raw chunks in the session's encoding) arrives;
        ends after the Summary once `audio` has ended."""
        reader = asyncio.create_task(self._guarded(self._read(audio)))
        decoder = asyncio.create_task(self._guarded(self._decode_loop()))
        try:
            while True:
                item = await self._out.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in (reader, decoder):
                task.cancel()
            for task in (reader, decoder):
                with contextlib.suppress(BaseException):
                    await task
            if self.in_flight is not None:
                self.in_flight.cancel()  # a decode still queued never starts

    async def _guarded(self, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self._out.put_nowait(error)

    # --- reading: pcm -> vad -> endpointer, on the event loop (cheap: ~0.05 ms a frame) ---

    def stop_reading(self) -> None:
        """Take no more audio: the session ends as if the caller had half-closed (the open
        utterance is flushed, then the Summary). For a transcriber shutting down."""
        self.stopped = True
        self._stopping.set()

    async def _read(self, audio: AsyncIterator[bytes]) -> None:
        chunks = aiter(audio)
        while not self._stopping.is_set():
            receive = asyncio.ensure_future(anext(chunks, None))
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not receive.done():
                receive.cancel()
                break
            chunk = receive.result()
            if chunk is None:
                break
            self._ingest(self._pcm.feed(chunk))
            while len(self._finals) >= MAX_PENDING_FINALS:
                self._progress.clear()
                await self._progress.wait()
        self._ingest(self._pcm.flush())
        self._handle(self._endpointer.flush(self._buffer.total))
        self._reading_done = True
        self._wake.set()

    def _ingest(self, samples: np.ndarray) -> None:
        if not len(samples):
            return
        self._buffer.append(samples)
        self._handle(self._endpointer.push_many(self._vad.feed(samples)))
        self._trim()
        self._wake.set()

    def _handle(self, events: list[endpointing.Event]) -> None:
        for event in events:
            if isinstance(event, endpointing.Started):
                self._utterances = event.utterance
                # Never before the audio still held (an onset reached back further only when
                # the VAD hovered near its threshold for long).
                self._open = _Utterance(
                    event.utterance,
                    max(event.audio_start, self._buffer.base),
                    event.time,
                    agreement.Agreement(self._language),
                    interim_at=max(event.audio_start, self._buffer.base),
                )
                self._outbox.add(event.utterance, SpeechStarted(event.utterance, event.time))
            elif isinstance(event, endpointing.Paused):
                if self._open is not None:
                    self._open.pause_end = event.audio_end
            elif isinstance(event, endpointing.Resumed):
                if self._open is not None:
                    self._open.pause_end = None
            else:
                utterance = self._open
                assert utterance is not None and utterance.number == event.utterance
                utterance.audio_end = event.audio_end
                self._outbox.add(event.utterance, SpeechEnded(event.utterance, event.time))
                self._finals.append(utterance)
                self._open = None

    def _trim(self) -> None:
        keep = self._buffer.total - self._idle_keep
        for utterance in (*self._finals, self._open):
            if utterance is not None:
                keep = min(keep, utterance.audio_start)
        self._buffer.drop_before(keep)

    # --- decoding: one decode at a time, in a worker thread ---

    async def _decode_loop(self) -> None:
        while True:
            self._wake.clear()
            if self._finals:
                await self._finalize(self._finals[0])
                self._finals.popleft()
                self._progress.set()
                continue
            utterance = self._open
            if utterance is not None and self._speculation_due(utterance):
                await self._speculate(utterance)
                continue
            if utterance is not None and self._interim_due(utterance):
                await self._interim(utterance)
                continue
            if self._reading_done and self._open is None:
                break
            await self._wake.wait()
        self._out.put_nowait(
            Summary(
                audio_seconds=self._buffer.total / SAMPLE_RATE,
                language=self._summary_language()[0],
                language_probability=self._summary_language()[1],
                processing_seconds=self._processing,
                utterances=self._utterances,
            )
        )
        self._out.put_nowait(_DONE)

    async def _run(
        self,
        priority: int,
        wanted: Callable[[], bool],
        function: Callable[..., Any],
        *args: Any,
    ) -> tuple[Any, float] | None:
        """Queues a decode and waits for its result and how long it ran; None when it was
        cancelled before it started because `wanted()` turned false meanwhile."""
        seconds = 0.0

        def timed() -> Any:
            nonlocal seconds
            started = self._clock()
            try:
                return function(*args)
            finally:
                seconds = self._clock() - started
                self._processing += seconds

        future = self._queue.submit(priority, timed)
        self.in_flight = future
        waiting = asyncio.wrap_future(future)
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=WANTED_POLL_SECONDS)
            if done:
                return waiting.result(), seconds
            if not wanted() and future.cancel():
                return None

    def _decode_final(self, audio: np.ndarray) -> tuple[Analysis, list[DecodedSegment]]:
        """The final decode of an utterance's audio (blocking: runs in a worker thread)."""
        request = self.settings.request
        probability = 1.0
        if not request.language:
            language, probability = self._decoder.detect(audio)
            if probability < TRUST_DETECTION and self._sure_language:
                language = self._sure_language
            preset = presets.lookup(language, self.settings.preset_name)
            request = replace(request, language=language, preset=preset)
        analysis, segments = self._decoder.final(audio, request)
        return replace(analysis, language_probability=probability), segments

    def _speculation_due(self, utterance: _Utterance) -> bool:
        if not self.settings.speculative or utterance.pause_end is None:
            return False
        key = (utterance.number, utterance.audio_start, utterance.pause_end)
        if self._speculated is not None and self._speculated[0] == key:
            return False
        return self._buffer.total >= utterance.pause_end

    async def _speculate(self, utterance: _Utterance) -> None:
        assert utterance.pause_end is not None
        key = (utterance.number, utterance.audio_start, utterance.pause_end)
        audio = self._buffer.slice(utterance.audio_start, utterance.pause_end)
        if self._speculated is not None:
            self.stats.speculative_wasted += 1

        def wanted() -> bool:
            # Not when speech resumed, and not when the utterance ended (its final decode
            # then runs at the higher priority; a later end than the pause's is not this key).
            return utterance is self._open and utterance.pause_end == key[2]

        ran = await self._run(scheduling.SPECULATIVE, wanted, self._decode_final, audio)
        if ran is None:
            return
        result, seconds = ran
        self.stats.final_seconds.append(seconds)
        self._speculated = (key, result)

    def _interim_due(self, utterance: _Utterance) -> bool:
        if not self.settings.interim_results or utterance.pause_end is not None:
            return False
        every = round(self.settings.interim_every_seconds * SAMPLE_RATE)
        if self._buffer.total - utterance.audio_start < INTERIM_MIN_SECONDS * SAMPLE_RATE:
            return False
        return self._buffer.total - utterance.interim_at >= every

    async def _interim(self, utterance: _Utterance) -> None:
        end = self._buffer.total
        audio = self._buffer.slice(utterance.audio_start, end)
        utterance.interim_at = end
        ran = await self._run(
            scheduling.INTERIM,
            lambda: utterance is self._open and utterance.pause_end is None,
            self._decoder.interim,
            audio,
            self._language,
            self.settings.request.task,
        )
        if ran is None:
            return
        decoded: InterimDecode = ran[0]
        self.stats.interim_seconds.append(ran[1])
        if utterance is not self._open or not decoded.text:
            return  # ended meanwhile: its final result is on the way
        if decoded.language_probability < TRUST_DETECTION or guards.REPETITION in (
            guards.segment_flags(decoded.text, 0.0, 0.0, 0.0, "", guards.Thresholds())
        ):
            return  # unsure of the language, or looping: nothing worth showing yet
        shown = utterance.agreement.update(decoded.text, decoded.language)
        utterance.interims += 1
        self._outbox.add(
            utterance.number,
            InterimResult(
                utterance.number,
                shown.text,
                shown.stability,
                utterance.audio_start / SAMPLE_RATE,
                end / SAMPLE_RATE,
                decoded.language,
            ),
        )

    async def _finalize(self, utterance: _Utterance) -> None:
        assert utterance.audio_end is not None
        key = (utterance.number, utterance.audio_start, utterance.audio_end)
        if self._speculated is not None and self._speculated[0] == key:
            analysis, segments = self._speculated[1]
            self.stats.speculative_used += 1
        else:
            if self._speculated is not None and self._speculated[0][0] == utterance.number:
                self.stats.speculative_wasted += 1
            audio = self._buffer.slice(utterance.audio_start, utterance.audio_end)
            ran = await self._run(scheduling.FINAL, lambda: True, self._decode_final, audio)
            assert ran is not None
            (analysis, segments), seconds = ran
            self.stats.final_seconds.append(seconds)
        self._speculated = None
        seconds = (utterance.audio_end - utterance.audio_start) / SAMPLE_RATE
        self._learn_language(analysis, seconds)
        audio = self._buffer.slice(utterance.audio_start, utterance.audio_end)
        final = self._final_result(utterance, analysis, segments, audio)
        if final.segment is not None:
            self._previous_text = final.segment.text
        self._outbox.add(utterance.number, final)
        self._outbox.finish(utterance.number)
        self._trim()

    def _learn_language(self, analysis: Analysis, seconds: float) -> None:
        language, probability = analysis.language, analysis.language_probability
        heard_seconds, best = self._heard.get(language, (0.0, 0.0))
        self._heard[language] = (heard_seconds + seconds, max(best, probability))
        if self.settings.request.language:
            return
        if probability >= TRUST_DETECTION:
            self._sure_language = language
        self._language = language

    def _summary_language(self) -> tuple[str, float]:
        if not self._heard:
            return self.settings.request.language, 1.0 if self.settings.request.language else 0.0
        language = max(self._heard, key=lambda code: self._heard[code][0])
        return language, self._heard[language][1]

    def _final_result(
        self,
        utterance: _Utterance,
        analysis: Analysis,
        segments: list[DecodedSegment],
        audio: np.ndarray,
    ) -> FinalResult:
        assert utterance.audio_end is not None
        offset = utterance.audio_start / SAMPLE_RATE
        end_limit = utterance.audio_end / SAMPLE_RATE
        preset = presets.lookup(analysis.language, self.settings.preset_name)
        thresholds = guards.Thresholds(
            preset.no_speech_threshold,
            preset.log_prob_threshold,
            preset.compression_ratio_threshold,
        )
        kept = [
            s
            for s in segments
            if s.text
            and not guards.has_no_signal(audio, s.start, s.end, SAMPLE_RATE)
            and not guards.is_hallucination(
                s.text, s.avg_logprob, s.no_speech_prob, s.compression_ratio, thresholds
            )
        ]
        language = analysis.language
        if not kept:
            return FinalResult(utterance.number, "", offset, end_limit, language, None, ())
        segment = merged(kept, utterance.number, offset, end_limit)
        flags = guards.segment_flags(
            segment.text,
            segment.avg_logprob,
            segment.no_speech_prob,
            segment.compression_ratio,
            self._previous_text,
            thresholds,
        )
        return FinalResult(
            utterance.number,
            segment.text,
            segment.start,
            segment.end,
            language,
            segment,
            tuple(flags),
        )


def merged(
    segments: list[DecodedSegment], number: int, offset: float, end_limit: float
) -> DecodedSegment:
    """An utterance's decoded segments as one segment on the session clock (`offset` = where
    its audio began): text joined, scores weighted by text length, the worst compression."""
    weights = np.array([max(1, len(s.text)) for s in segments], dtype=np.float64)

    def mean(values: list[float]) -> float:
        return float(np.average(np.array(values, dtype=np.float64), weights=weights))

    def clock(seconds: float) -> float:
        return min(end_limit, offset + seconds)

    start = clock(segments[0].start)
    return DecodedSegment(
        id=number,
        start=start,
        end=max(start, clock(segments[-1].end)),
        text=" ".join(s.text.strip() for s in segments if s.text.strip()),
        avg_logprob=mean([s.avg_logprob for s in segments]),
        no_speech_prob=mean([s.no_speech_prob for s in segments]),
        compression_ratio=max(s.compression_ratio for s in segments),
        temperature=max(s.temperature for s in segments),
        words=tuple(
            DecodedWord(clock(w.start), clock(w.end), w.word, w.probability)
            for s in segments
            for w in s.words
        ),
    )
