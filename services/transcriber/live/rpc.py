"""TranscriberService.StreamTranscribe: a live session on one of this transcriber's session
places (SAYIT_TRANSCRIBER_STREAM_SESSIONS, separate from the file slots).

parse the setup (INVALID_ARGUMENT when the first message is not one, or asks for an unknown
encoding, a rate or channel count out of range, endpointing out of range, a bad
TranscriptionConfig) -> take a place (RESOURCE_EXHAUSTED with a retry hint when all are taken)
-> ACCEPTED_KEY initial metadata -> run the session, converting its outputs. The place is
freed when the call ends *and* the session's decode in flight (at most one) has finished, so
a cancelled session's CPU is accounted for until it is really free (at most one decode, ~1 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import numpy as np

from sayit.common.v1 import streaming_pb2 as spb
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from services.common import logs
from services.common.errors import InvalidArgument, ResourceExhausted, Unavailable
from services.common.interceptors import ACCEPTED_KEY
from services.common.slots import Slots
from services.transcriber import convert
from services.transcriber.engine import (
    Analysis,
    DecodedSegment,
    Engine,
    EngineRequest,
    InterimDecode,
    silero_vad_path,
)
from services.transcriber.live import endpointing, pcm, scheduling, vad
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

log = logs.get_logger("sayit.transcriber")

DEFAULT_SILENCE_SECONDS = 0.5
SILENCE_RANGE = (0.2, 5.0)
DEFAULT_MAX_UTTERANCE_SECONDS = 30.0
MAX_UTTERANCE_RANGE = (5.0, 30.0)
DEFAULT_SPEECH_THRESHOLD = 0.5
FULL_RETRY_SECONDS = 2.0
_SHUTTING_DOWN = "this transcriber is shutting down; start the session again"

_ENCODINGS = {
    spb.AUDIO_ENCODING_LINEAR16: pcm.LINEAR16,
    spb.AUDIO_ENCODING_FLOAT32: pcm.FLOAT32,
}


class EngineDecoder:
    """The session's decodes on the shared Engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def interim(self, audio: np.ndarray, language: str, task: str) -> InterimDecode:
        return self._engine.decode_interim(audio, language=language, task=task)

    def detect(self, audio: np.ndarray) -> tuple[str, float]:
        return self._engine.detect_language(audio)

    def final(
        self, audio: np.ndarray, request: EngineRequest
    ) -> tuple[Analysis, list[DecodedSegment]]:
        analysis: Analysis | None = None
        segments: list[DecodedSegment] = []
        for item in self._engine.transcribe(audio, request):
            if isinstance(item, Analysis):
                analysis = item
            else:
                segments.append(item)
        assert analysis is not None
        return analysis, segments


def endpoint_settings(config: spb.EndpointingConfig) -> endpointing.EndpointSettings:
    silence = config.silence_seconds or DEFAULT_SILENCE_SECONDS
    longest = config.max_utterance_seconds or DEFAULT_MAX_UTTERANCE_SECONDS
    threshold = config.speech_threshold or DEFAULT_SPEECH_THRESHOLD
    if not SILENCE_RANGE[0] <= silence <= SILENCE_RANGE[1]:
        raise InvalidArgument(
            f"endpointing.silence_seconds {silence:g} is out of range; send "
            f"{SILENCE_RANGE[0]:g} to {SILENCE_RANGE[1]:g} (0 = {DEFAULT_SILENCE_SECONDS:g})",
            field="streaming_config.endpointing.silence_seconds",
        )
    if not MAX_UTTERANCE_RANGE[0] <= longest <= MAX_UTTERANCE_RANGE[1]:
        raise InvalidArgument(
            f"endpointing.max_utterance_seconds {longest:g} is out of range; send "
            f"{MAX_UTTERANCE_RANGE[0]:g} to {MAX_UTTERANCE_RANGE[1]:g} (0 = the most)",
            field="streaming_config.endpointing.max_utterance_seconds",
        )
    if not 0.0 < threshold < 1.0:
        raise InvalidArgument(
            f"endpointing.speech_threshold {threshold:g} is out of range; send a value "
            "between 0 and 1 (0 = 0.5)",
            field="streaming_config.endpointing.speech_threshold",
        )
    return endpointing.EndpointSettings(
        threshold=threshold,
        silence_seconds=silence,
        max_utterance_seconds=longest,
        # The after-padding is also how long a pause lasts before the speculative final decode
        # starts: never longer than the endpoint silence itself.
        pad_after_seconds=min(endpointing.EndpointSettings.pad_after_seconds, silence),
    )


def session_settings(
    setup: pb.StreamTranscribeSetup, *, served_model: str
) -> tuple[SessionSettings, str]:
    """The session's settings for a setup message, and its preset name; InvalidArgument when
    any field is out of range."""
    config = setup.streaming_config
    encoding = _ENCODINGS.get(config.encoding)
    if encoding is None:
        raise InvalidArgument(
            f"unknown or unspecified audio encoding {config.encoding}; use "
            "AUDIO_ENCODING_LINEAR16 or AUDIO_ENCODING_FLOAT32",
            field="streaming_config.encoding",
        )
    if not pcm.MIN_RATE <= config.sample_rate_hertz <= pcm.MAX_RATE:
        raise InvalidArgument(
            f"sample_rate_hertz {config.sample_rate_hertz} is out of range; send "
            f"{pcm.MIN_RATE} to {pcm.MAX_RATE}",
            field="streaming_config.sample_rate_hertz",
        )
    channels = config.audio_channel_count or 1
    if not 1 <= channels <= pcm.MAX_CHANNELS:
        raise InvalidArgument(
            f"audio_channel_count {config.audio_channel_count} is out of range; send 1 or 2 "
            "(0 means 1)",
            field="streaming_config.audio_channel_count",
        )
    request, preset = convert.engine_request(config.config, served_model=served_model)
    settings = SessionSettings(
        encoding=encoding,
        sample_rate=config.sample_rate_hertz,
        channels=channels,
        interim_results=config.interim_results,
        endpoint=endpoint_settings(config.endpointing),
        request=request,
        preset_name=preset,
    )
    return settings, preset


@dataclass
class LiveCounters:
    sessions_started: int = 0
    sessions_completed: int = 0
    sessions_cancelled: int = 0


class LiveService:
    def __init__(self, places: int, queue: scheduling.DecodeQueue) -> None:
        self.places = Slots(places, line=0)
        self._queue = queue
        self.counters = LiveCounters()
        self._sessions: set[LiveSession] = set()
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def drain(self) -> None:
        """Shutting down: no new sessions; each running one stops reading, sends the final
        result of its open utterance, and ends UNAVAILABLE (so the caller knows its audio from
        here on was not heard). Returns when they all have ended."""
        self._draining = True
        for session in list(self._sessions):
            session.stop_reading()
        await self._idle.wait()

    async def stream(
        self,
        requests: AsyncIterator[pb.StreamTranscribeRequest],
        context: grpc.aio.ServicerContext,
        engine: Engine,
        model: str,
    ) -> AsyncIterator[pb.StreamTranscribeResponse]:
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("part") != "setup":
            raise InvalidArgument(
                "the first message must be setup (streaming_config and job_id); "
                "audio_content comes after it",
                field="setup",
            )
        if first.setup.job_id:
            logs.bind(job_id=first.setup.job_id)
        settings, preset = session_settings(first.setup, served_model=model)
        if self._draining:
            raise Unavailable(_SHUTTING_DOWN)
        if not self.places.try_acquire():
            raise ResourceExhausted(
                f"all {self.places.total} live session places of this transcriber are taken; "
                "retry later",
                retry_after_seconds=FULL_RETRY_SECONDS,
            )
        session: LiveSession | None = None
        finished = False
        started = time.monotonic()
        try:
            await context.send_initial_metadata(((ACCEPTED_KEY, "1"),))
            self.counters.sessions_started += 1
            session = LiveSession(
                settings,
                EngineDecoder(engine),
                self._queue,
                vad.load_model(silero_vad_path()),
            )
            log.info(
                "live_session_started",
                encoding=settings.encoding,
                sample_rate=settings.sample_rate,
                channels=settings.channels,
                interim_results=settings.interim_results,
                language=settings.request.language,
                preset=preset,
            )
            self._sessions.add(session)
            self._idle.clear()
            async for output in session.run(_audio(requests)):
                if isinstance(output, Summary) and session.stopped:
                    # The caller did not end the session: what it said last was not heard.
                    raise Unavailable(_SHUTTING_DOWN + "; the results until now were sent")
                for response in responses(output, model=model, preset=preset, settings=settings):
                    yield response
            finished = True
        finally:
            if session is not None:
                self._sessions.discard(session)
                if not self._sessions:
                    self._idle.set()
            self._release_when_idle(session)
            if finished:
                self.counters.sessions_completed += 1
            elif session is not None:
                self.counters.sessions_cancelled += 1
            if session is not None:
                stats = session.stats
                log.info(
                    "live_session_finished" if finished else "live_session_stopped",
                    audio_seconds=round(session.audio_seconds, 2),
                    seconds=round(time.monotonic() - started, 2),
                    interim_decodes=len(stats.interim_seconds),
                    final_decodes=len(stats.final_seconds),
                    speculative_used=stats.speculative_used,
                    speculative_wasted=stats.speculative_wasted,
                    final_decode_seconds_median=_median(stats.final_seconds),
                    interim_decode_seconds_median=_median(stats.interim_seconds),
                )

    def _release_when_idle(self, session: LiveSession | None) -> None:
        """Frees the place once the session's decode in flight (if any) is over."""
        in_flight = session.in_flight if session is not None else None
        if in_flight is None or in_flight.done():
            self.places.release()
            return
        loop = asyncio.get_running_loop()
        # Runs in the worker thread that finished the decode (or here, if already done).
        in_flight.add_done_callback(lambda _: loop.call_soon_threadsafe(self.places.release))


async def _audio(requests: AsyncIterator[pb.StreamTranscribeRequest]) -> AsyncIterator[bytes]:
    async for request in requests:
        if request.WhichOneof("part") != "audio_content":
            raise InvalidArgument(
                "only the first message may be setup; send audio_content after it",
                field="setup",
            )
        yield request.audio_content


def responses(
    output: Output, *, model: str, preset: str, settings: SessionSettings
) -> list[pb.StreamTranscribeResponse]:
    """The response messages for one session output."""
    if isinstance(output, SpeechStarted | SpeechEnded):
        kind = (
            spb.SPEECH_EVENT_TYPE_SPEECH_STARTED
            if isinstance(output, SpeechStarted)
            else spb.SPEECH_EVENT_TYPE_SPEECH_ENDED
        )
        return [
            pb.StreamTranscribeResponse(
                speech_event=spb.SpeechEvent(
                    type=kind, time_seconds=output.time, utterance=output.utterance
                )
            )
        ]
    if isinstance(output, InterimResult):
        return [
            pb.StreamTranscribeResponse(
                result=spb.StreamingRecognitionResult(
                    text=output.text,
                    is_final=False,
                    stability=output.stability,
                    start_seconds=output.start,
                    end_seconds=output.end,
                    utterance=output.utterance,
                    language_code=output.language,
                )
            )
        ]
    if isinstance(output, FinalResult):
        segment = (
            convert.segment_message(output.segment, list(output.flags))
            if output.segment is not None
            else None
        )
        result = spb.StreamingRecognitionResult(
            text=output.text,
            is_final=True,
            stability=1.0,
            start_seconds=output.start,
            end_seconds=output.end,
            utterance=output.utterance,
            language_code=output.language,
            words=segment.words if segment is not None else [],
        )
        messages = [pb.StreamTranscribeResponse(result=result)]
        if segment is not None:
            messages.append(pb.StreamTranscribeResponse(segment=segment))
        return messages
    assert isinstance(output, Summary)
    return [
        pb.StreamTranscribeResponse(
            summary=pb.StreamTranscribeSummary(
                audio_seconds=output.audio_seconds,
                language_code=output.language,
                language_probability=output.language_probability,
                model=model,
                preset=convert.PRESET_ENUMS[preset],
                processing_seconds=output.processing_seconds,
            )
        )
    ]


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None
