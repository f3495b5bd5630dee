"""Three ways for `bench.eval` to turn a clip into text, each timed the same way.

- `RawEngine`: faster-whisper in this process (`services.transcriber.engine.Engine`), with any
  `DecodePreset` (the preset tuning reuses it);
- `ServiceTranscriber`: a real transcriber process of our own (`python -m services.transcriber`)
  called with TranscribeStream;
- `GatewayTranscriber`: a running gateway (`make up`) called with Transcribe (a long clip may
  come back as a job, which is then watched to its end).

Each returns a `Transcription`: the text and the wall seconds the caller waited, audio decoding
included (the service decodes too, so raw and service times compare like with like).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
import numpy as np

from devsupport import processes
from devsupport.evalset import Clip
from devsupport.settings import BenchSettings, EvalGatewaySettings
from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as spb
from sayit.speech.v1 import speech_service_pb2_grpc as spb_grpc
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc
from services.client.credentials import find_api_key
from services.common import audio
from services.common.audio import SAMPLE_RATE
from services.transcriber import presets
from services.transcriber.engine import DecodedSegment, Engine, EngineRequest
from services.transcriber.models import resolve_model
from services.transcriber.presets import DecodePreset

DEFAULT_THREADS = 2
# Generous: a 231 s clip on a busy 2-core machine.
TIMEOUT_SECONDS = 1800.0
_PRESET_ENUMS = {presets.ACCURATE: tpb.PRESET_ACCURATE, presets.FAST: tpb.PRESET_FAST}
_GRPC_OPTIONS = [("grpc.max_send_message_length", 64 << 20)]


@dataclass(frozen=True)
class Transcription:
    text: str
    seconds: float  # wall time the caller waited, audio decoding included
    language: str = ""  # the language the service reported (detected when none was sent)


TranscribeFn = Callable[[Clip], Transcription]


def default_model() -> str:
    return BenchSettings.from_env(os.environ).model


class RawEngine:
    """The in-process engine: one model, `cpu_threads` threads, one call at a time."""

    def __init__(self, model: str | None = None, *, cpu_threads: int = DEFAULT_THREADS) -> None:
        config = BenchSettings.from_env(os.environ).model_files
        resolved = resolve_model(
            model or config.name, cache_dir=config.cache_dir, models_dir=config.models_dir
        )
        self.model = resolved.name
        self.cpu_threads = cpu_threads
        self._engine = Engine(resolved.path, cpu_threads=cpu_threads, slots=1)

    def transcribe(
        self,
        clip: Clip,
        preset: DecodePreset,
        *,
        vad_filter: bool = True,
        language: str = "",
        initial_prompt: str | None = None,
        hotwords: str | None = None,
        speech_dbfs: float | None = None,
    ) -> Transcription:
        """The clip with exactly this preset; `language` "" = the clip's own. `speech_dbfs`
        (tuning only): first bring the clip's speech to this level (see `to_speech_level`)."""
        started = time.monotonic()
        samples = audio.decode(clip.read(), clip.path.name)
        if speech_dbfs is not None:
            samples = to_speech_level(samples, speech_dbfs)
        request = EngineRequest(
            language=language or clip.language,
            task="transcribe",
            preset=preset,
            word_timestamps=False,
            vad_filter=vad_filter,
            initial_prompt=initial_prompt,
            hotwords=hotwords,
        )
        texts = [
            item.text
            for item in self._engine.transcribe(samples, request)
            if isinstance(item, DecodedSegment)
        ]
        # The service joins segment texts the same way (convert.join_text).
        return Transcription(" ".join(t for t in texts if t), time.monotonic() - started)

    def transcriber(
        self,
        preset: DecodePreset | Mapping[str, DecodePreset] | None = None,
        *,
        preset_name: str = presets.ACCURATE,
        vad_filter: bool = True,
        initial_prompt: str | Mapping[str, str] | None = None,
        hotwords: str | None = None,
        speech_dbfs: float | None = None,
    ) -> TranscribeFn:
        """A TranscribeFn for `evaluate`. `preset`: one DecodePreset for every clip, or one per
        language (a mapping), else the presets table's row for the clip's language and
        `preset_name`. `initial_prompt`: one text, or one per language."""

        def transcribe(clip: Clip) -> Transcription:
            if isinstance(preset, DecodePreset):
                chosen = preset
            elif preset is not None and clip.language in preset:
                chosen = preset[clip.language]
            else:
                chosen = presets.lookup(clip.language, preset_name)
            prompt = (
                initial_prompt.get(clip.language)
                if isinstance(initial_prompt, Mapping)
                else initial_prompt
            )
            return self.transcribe(
                clip,
                chosen,
                vad_filter=vad_filter,
                initial_prompt=prompt or None,
                hotwords=hotwords,
                speech_dbfs=speech_dbfs,
            )

        return transcribe


def to_speech_level(samples: np.ndarray, dbfs: float) -> np.ndarray:
    """The samples scaled so that their louder half of 30 ms frames (the speech, roughly) has
    this RMS level, never past full scale (tuning round 8: does the input level matter?)."""
    frame = SAMPLE_RATE * 30 // 1000
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    energies = np.sort(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)))
    loud = energies[len(energies) // 2 :]
    rms = float(np.sqrt((loud**2).mean())) if len(loud) else 0.0
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    if rms <= 0.0 or peak <= 0.0:
        return samples
    gain = min(10 ** (dbfs / 20) / rms, 0.99 / peak)
    return (samples * gain).astype(np.float32)


def _config(clip: Clip, preset_name: str, detect: bool = False) -> tpb.TranscriptionConfig:
    """The clip's language, or none (`detect`: the service detects it)."""
    return tpb.TranscriptionConfig(
        language_code="" if detect else clip.language, preset=_PRESET_ENUMS[preset_name]
    )


class ServiceTranscriber:
    """A transcriber process of our own (1 slot, `cpu_threads` threads), used as a context
    manager; `transcribe` sends each clip with its language and the preset."""

    def __init__(
        self,
        model: str | None = None,
        *,
        preset_name: str = presets.ACCURATE,
        cpu_threads: int = DEFAULT_THREADS,
        directory: Path | None = None,
        detect: bool = False,
    ) -> None:
        self.model = model or default_model()
        self.preset_name = preset_name
        self.detect = detect
        self.cpu_threads = cpu_threads
        self._directory = directory or Path(tempfile.mkdtemp(prefix="sayit-eval-"))
        self._process: processes.ServiceProcess | None = None
        self._channel: grpc.Channel | None = None

    def __enter__(self) -> ServiceTranscriber:
        self._process = processes.transcriber(
            self._directory,
            SAYIT_MODEL=self.model,
            SAYIT_TRANSCRIBER_SLOTS="1",
            SAYIT_CPU_THREADS=str(self.cpu_threads),
        ).start()
        try:
            self._process.wait_serving()
        except BaseException:
            self._process.stop()
            raise
        self._channel = grpc.insecure_channel(self._process.addr or "", options=_GRPC_OPTIONS)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._process is not None:
            self._process.stop()

    def __call__(self, clip: Clip) -> Transcription:
        assert self._channel is not None, "use ServiceTranscriber as a context manager"
        stub = pb_grpc.TranscriberServiceStub(self._channel)
        request = pb.TranscribeStreamRequest(
            audio=audio_pb2.Audio(content=clip.read(), filename=clip.path.name),
            config=_config(clip, self.preset_name, self.detect),
        )
        started = time.monotonic()
        for reply in stub.TranscribeStream(request, timeout=TIMEOUT_SECONDS):
            if reply.HasField("transcript"):
                transcript = reply.transcript
                return Transcription(
                    transcript.text, time.monotonic() - started, transcript.language_code
                )
        raise RuntimeError(f"{clip.id}: the transcriber ended without a transcript")


class GatewayTranscriber:
    """A running gateway at `addr` (TLS and API key from SAYIT_TLS_* / SAYIT_API_KEY, as
    `make load`). The gateway's transcribers decide model and threads."""

    def __init__(
        self, addr: str, *, preset_name: str = presets.ACCURATE, detect: bool = False
    ) -> None:
        settings = EvalGatewaySettings.from_env(os.environ)
        # SAYIT_API_KEY, else the key `make up` wrote to ./.run/dev-api-key.
        tls, key = settings.client_tls, find_api_key(settings.api_key, {}, Path.cwd())
        self.addr = addr
        self.preset_name = preset_name
        self.detect = detect
        self._metadata = [("authorization", f"Bearer {key}")] if key else []
        self._channel = (
            grpc.insecure_channel(addr, options=_GRPC_OPTIONS)
            if tls is None
            else grpc.secure_channel(addr, tls.credentials(), options=_GRPC_OPTIONS)
        )
        self._stub = spb_grpc.SpeechServiceStub(self._channel)

    def __call__(self, clip: Clip) -> Transcription:
        request = spb.TranscribeRequest(
            audio=audio_pb2.Audio(content=clip.read(), filename=clip.path.name),
            config=_config(clip, self.preset_name, self.detect),
        )
        started = time.monotonic()
        reply = self._stub.Transcribe(request, metadata=self._metadata, timeout=TIMEOUT_SECONDS)
        if reply.HasField("transcript"):
            transcript = reply.transcript
            return Transcription(
                transcript.text, time.monotonic() - started, transcript.language_code
            )
        # Long audio is queued: follow the job to its end.
        watch = spb.WatchJobRequest(name=reply.job.name)
        for event in self._stub.WatchJob(watch, metadata=self._metadata, timeout=TIMEOUT_SECONDS):
            if event.event.HasField("completed"):
                done = event.event.completed.transcript
                return Transcription(done.text, time.monotonic() - started, done.language_code)
            if event.event.HasField("failed") or event.event.HasField("cancelled"):
                raise RuntimeError(f"{clip.id}: {reply.job.name} did not complete: {event.event}")
        raise RuntimeError(f"{clip.id}: the event stream of {reply.job.name} ended early")

    def close(self) -> None:
        self._channel.close()
