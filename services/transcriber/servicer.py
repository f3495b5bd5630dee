"""TranscriberService: take a slot, decode the audio, run the engine in the slot, stream what it
produces."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import grpc

from sayit.common.v1 import transcription_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc
from services.common import audio, hugepages, logs
from services.common.errors import ResourceExhausted, Unavailable
from services.common.interceptors import ACCEPTED_KEY
from services.common.slots import Slots
from services.common.threads import ThreadedIterator
from services.transcriber import convert, guards, metrics
from services.transcriber.config import TranscriberConfig, batches
from services.transcriber.engine import Analysis, DecodedSegment, Engine
from services.transcriber.live.rpc import LiveService
from services.transcriber.live.scheduling import DecodeQueue
from services.transcriber.models import ResolvedModel, resolve_model

log = logs.get_logger("sayit.transcriber")


@dataclass
class Counters:
    segments_decoded: int = 0
    calls_completed: int = 0
    calls_cancelled: int = 0


class TranscriberServicer(pb_grpc.TranscriberServiceServicer):
    def __init__(self, config: TranscriberConfig) -> None:
        self._config = config
        self._slots = Slots(config.slots, line=config.waiting)
        metrics.track_slots(self._slots)
        self._counters = Counters()
        self._inference = ThreadPoolExecutor(config.slots, thread_name_prefix="inference")
        self._decoding = ThreadPoolExecutor(2, thread_name_prefix="decode")
        # Live sessions' decodes, most urgent first, as many at once as the model runs.
        self._live_decoding = DecodeQueue(config.slots)
        self._live = LiveService(config.stream_sessions, self._live_decoding)
        self._engine: Engine | None = None
        self._model: ResolvedModel | None = None

    async def load_model(self) -> None:
        """Resolve (assembling the bundled model if needed) and load the model; before SERVING."""
        started = time.monotonic()
        model_config = self._config.model
        loop = asyncio.get_running_loop()
        model = await loop.run_in_executor(
            self._decoding,
            lambda: resolve_model(
                model_config.name,
                cache_dir=model_config.cache_dir,
                models_dir=model_config.models_dir,
            ),
        )
        engine = await loop.run_in_executor(
            self._decoding,
            lambda: Engine(
                model.path,
                cpu_threads=self._config.cpu_threads,
                slots=self._config.slots,
                batch_size=self._config.batch_size,
            ),
        )
        self._model, self._engine = model, engine
        log.info(
            "model_loaded",
            model=model.name,
            path=str(model.path),
            source=model.source,
            slots=self._config.slots,
            cpu_threads=self._config.cpu_threads,
            batch_size=self._config.batch_size,
            huge_pages_mib=hugepages.anon_huge_pages_mib(),
            seconds=round(time.monotonic() - started, 2),
        )

    async def drain(self) -> None:
        """Shutdown has begun: live sessions flush their last utterance and end."""
        await self._live.drain()

    def close(self) -> None:
        self._inference.shutdown(wait=False, cancel_futures=True)
        self._decoding.shutdown(wait=False, cancel_futures=True)
        self._live_decoding.close()

    async def GetInfo(
        self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInfoResponse:
        return pb.GetInfoResponse(
            model=self._model.name if self._model else "",
            model_path=str(self._model.path) if self._model else "",
            slots_total=self._slots.total,
            slots_busy=self._slots.busy,
            calls_waiting=self._slots.waiting,
            segments_decoded_total=self._counters.segments_decoded,
            calls_completed_total=self._counters.calls_completed,
            calls_cancelled_total=self._counters.calls_cancelled,
            cpu_threads=self._config.cpu_threads,
            sessions_total=self._live.places.total,
            sessions_active=self._live.places.busy,
        )

    async def StreamTranscribe(
        self,
        request_iterator: AsyncIterator[pb.StreamTranscribeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamTranscribeResponse]:
        engine, model = self._engine, self._model
        if engine is None or model is None:
            raise Unavailable("the model is still loading; retry in a few seconds")
        async for response in self._live.stream(request_iterator, context, engine, model.name):
            yield response

    async def TranscribeStream(
        self, request: pb.TranscribeStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TranscribeStreamResponse]:
        engine, model = self._engine, self._model
        if engine is None or model is None:
            raise Unavailable("the model is still loading; retry in a few seconds")
        if request.job_id:
            logs.bind(job_id=request.job_id)
        engine_request, preset = convert.engine_request(request.config, served_model=model.name)
        # The slot first, then the audio: a call that finds no slot (and no room in line) is
        # refused before any decoding, and no slot is ever held by audio decoded for nothing.
        if not await self._slots.acquire():
            raise ResourceExhausted(
                f"all {self._slots.total} transcription slots of this transcriber are busy and "
                f"{self._slots.line} call(s) already wait for one; retry later",
                retry_after_seconds=1.0,
            )
        try:
            # Tells the caller this transcriber took the call on: if the call is cut off from
            # here, this process died working on this audio.
            await context.send_initial_metadata(((ACCEPTED_KEY, "1"),))
            samples = await asyncio.get_running_loop().run_in_executor(
                self._decoding,
                audio.decode,
                request.audio.content,
                request.audio.filename,
                self._config.max_audio_seconds,
                # Held to what was admitted: a header that understated it is refused, not decoded.
                request.audio_duration_seconds,
            )
        except BaseException:
            self._slots.release()
            raise
        total = len(samples) / audio.SAMPLE_RATE
        if batches(self._config, total, engine_request.language):
            engine_request = replace(engine_request, batched=True)
        # From here the slot belongs to the thread: it is released when the thread has stopped.
        started = time.monotonic()
        decoding = ThreadedIterator(
            self._inference,
            lambda: engine.transcribe(samples, engine_request),
            on_thread_done=self._slots.release,
        )
        thresholds = guards.Thresholds(
            engine_request.preset.no_speech_threshold,
            engine_request.preset.log_prob_threshold,
            engine_request.preset.compression_ratio_threshold,
        )
        analysis: Analysis | None = None
        segments: list[tpb.Segment] = []
        done_seconds = 0.0
        finished = False
        try:
            yield _progress(0.0, total)
            async for item in decoding:
                if isinstance(item, Analysis):
                    analysis = item
                    log.info(
                        "transcription_started",
                        audio_seconds=round(total, 2),
                        speech_seconds=round(item.duration_after_vad, 2),
                        language=item.language,
                        preset=preset,
                        batched=engine_request.batched,
                    )
                    continue
                assert isinstance(item, DecodedSegment)
                done_seconds = max(done_seconds, min(item.end, total))
                dropped = _dropped_because(item, samples, thresholds)
                if dropped:
                    log.info("segment_dropped", reason=dropped, start=item.start, text=item.text)
                else:
                    message = _segment(item, segments, thresholds)
                    self._counters.segments_decoded += 1
                    segments.append(message)
                    yield pb.TranscribeStreamResponse(segment=message)
                yield _progress(done_seconds, total)
            finished = True
            # Free the slot before the caller hears the end, so a caller that sends its next
            # request at once never finds this slot still taken.
            await decoding.stopped()
        finally:
            decoding.stop()
            if not finished:
                self._counters.calls_cancelled += 1
                metrics.transcription_stopped(model.name)
                log.info("transcription_stopped", segments=len(segments))
        assert analysis is not None
        elapsed = time.monotonic() - started
        transcript = convert.transcript_message(
            analysis, segments, model=model.name, preset=preset, processing_seconds=elapsed
        )
        self._counters.calls_completed += 1
        metrics.transcription_finished(model.name, total, elapsed)
        log.info(
            "transcription_finished",
            segments=len(segments),
            audio_seconds=round(total, 2),
            processing_seconds=round(elapsed, 2),
            real_time_factor=round(elapsed / total, 3) if total else None,
        )
        yield _progress(total, total)
        yield pb.TranscribeStreamResponse(transcript=transcript)


def _dropped_because(
    item: DecodedSegment, samples: audio.Samples, thresholds: guards.Thresholds
) -> str:
    """Why a segment is invented text to leave out ("" = keep it)."""
    if guards.has_no_signal(samples, item.start, item.end, audio.SAMPLE_RATE):
        return "no_signal"
    if guards.is_hallucination(
        item.text, item.avg_logprob, item.no_speech_prob, item.compression_ratio, thresholds
    ):
        return "hallucination"
    return ""


def _segment(
    item: DecodedSegment, earlier: list[tpb.Segment], thresholds: guards.Thresholds
) -> tpb.Segment:
    """The segment message with the guards' flags (judged against the previous segment)."""
    flags = guards.segment_flags(
        item.text,
        item.avg_logprob,
        item.no_speech_prob,
        item.compression_ratio,
        earlier[-1].text if earlier else "",
        thresholds,
    )
    return convert.segment_message(item, flags)


def _progress(done: float, total: float) -> pb.TranscribeStreamResponse:
    fraction = 1.0 if total <= 0 else min(1.0, done / total)
    return pb.TranscribeStreamResponse(
        progress=pb.TranscribeProgress(
            fraction=fraction, audio_seconds_done=done, audio_seconds_total=total
        )
    )
