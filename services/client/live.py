"""Live recognition (`StreamingRecognize`) for the Python client: the request stream built from
audio chunks, the responses turned into typed updates, and audio sources that feed it (a file
decoded to 16 kHz mono LINEAR16, sent at real-time pace or as fast as flow control allows).

A session yields, in order: `SessionStarted` (the job's name, from the first response, before
any audio is recognised), then per utterance `SpeechStarted`, interim `LiveResult`s (when asked
for), `SpeechEnded` and the final `LiveResult` (`is_final`, never revised).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc

from sayit.common.v1 import streaming_pb2 as spb
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from services.client.errors import from_rpc_error

SAMPLE_RATE = 16_000
CHUNK_SECONDS = 0.1  # 100 ms a message, as the service expects
ENCODINGS = {
    "linear16": spb.AUDIO_ENCODING_LINEAR16,
    "float32": spb.AUDIO_ENCODING_FLOAT32,
}
SAMPLE_BYTES = {"linear16": 2, "float32": 4}


@dataclass(frozen=True)
class SessionStarted:
    """The session is open; its job is `job_name` ("jobs/{id}": `WatchJob`, `GetJob`,
    `CancelJob` and the CLI's `sayit jobs` take it)."""

    job_name: str


@dataclass(frozen=True)
class SpeechStarted:
    job_name: str
    utterance: int
    time_seconds: float  # in the session's audio time (seconds since its first sample)


@dataclass(frozen=True)
class SpeechEnded:
    """An endpoint: the utterance's final result follows."""

    job_name: str
    utterance: int
    time_seconds: float


@dataclass(frozen=True)
class LiveResult:
    """Text of one utterance. An interim result (`is_final` False) is replaced by the next
    result of the same utterance; `stability` (0..1) says how settled it is. A final result is
    never revised. Times are in the session's audio time."""

    job_name: str
    utterance: int
    text: str
    is_final: bool
    stability: float
    start_seconds: float
    end_seconds: float
    language: str = ""
    words: tuple[tpb.Word, ...] = field(default=(), compare=False)


LiveUpdate = SessionStarted | SpeechStarted | SpeechEnded | LiveResult


def streaming_config(
    config: tpb.TranscriptionConfig,
    *,
    sample_rate_hertz: int = SAMPLE_RATE,
    encoding: str = "linear16",
    channels: int = 1,
    interim_results: bool = True,
    silence_seconds: float = 0.0,
    max_utterance_seconds: float = 0.0,
    speech_threshold: float = 0.0,
) -> spb.StreamingRecognitionConfig:
    """The session's first message. `encoding` is "linear16" (16-bit signed little-endian) or
    "float32"; endpointing values of 0 take the service's defaults (docs/streaming.md)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}; got {encoding!r}")
    return spb.StreamingRecognitionConfig(
        config=config,
        encoding=ENCODINGS[encoding],
        sample_rate_hertz=sample_rate_hertz,
        audio_channel_count=channels,
        interim_results=interim_results,
        endpointing=spb.EndpointingConfig(
            silence_seconds=silence_seconds,
            max_utterance_seconds=max_utterance_seconds,
            speech_threshold=speech_threshold,
        ),
    )


class AudioFeed:
    """A session's request stream: the config, then one message per non-empty chunk. Its end
    is a half-close: the service flushes the last utterance and ends the call. When `chunks`
    raises, the exception is kept (`failure`) and the call cancelled, not half-closed (the
    audio did not end, it broke), and without gRPC's own logged traceback."""

    def __init__(self, config: spb.StreamingRecognitionConfig, chunks: Iterable[bytes]) -> None:
        self.config = config
        self.chunks = chunks
        self.failure: BaseException | None = None
        self._call: Any = None
        self._call_set = threading.Event()

    def attach(self, call: Any) -> None:
        """The call this feed is sent on (known only once the call has started)."""
        self._call = call
        self._call_set.set()

    def __iter__(self) -> Iterator[pb.StreamingRecognizeRequest]:
        yield pb.StreamingRecognizeRequest(streaming_config=self.config)
        try:
            for chunk in self.chunks:
                if chunk:
                    yield pb.StreamingRecognizeRequest(audio_content=bytes(chunk))
        except Exception as error:
            self.failure = error
            self._call_set.wait(10)
            if self._call is not None:
                self._call.cancel()


def update_of(response: pb.StreamingRecognizeResponse) -> LiveUpdate | None:
    """The typed update a response carries (None for a response with only the job's name)."""
    kind = response.WhichOneof("response")
    if kind == "result":
        r = response.result
        return LiveResult(
            job_name=response.job_name,
            utterance=r.utterance,
            text=r.text,
            is_final=r.is_final,
            stability=round(r.stability, 4),  # a float32 on the wire
            start_seconds=r.start_seconds,
            end_seconds=r.end_seconds,
            language=r.language_code,
            words=tuple(r.words),
        )
    if kind == "speech_event":
        event = response.speech_event
        if event.type == spb.SPEECH_EVENT_TYPE_SPEECH_STARTED:
            return SpeechStarted(response.job_name, event.utterance, event.time_seconds)
        if event.type == spb.SPEECH_EVENT_TYPE_SPEECH_ENDED:
            return SpeechEnded(response.job_name, event.utterance, event.time_seconds)
        return None  # a kind this client does not know yet
    return None


class LiveSession:
    """One `StreamingRecognize` call. Iterate it for the session's updates (`LiveUpdate`), in
    order, until the service ends the call (after the half-close, an idle timeout or a cancel).
    Failures raise `ClientError` (code, message, retry hint: RESOURCE_EXHAUSTED when no
    transcriber has a free session place carries the delay to wait). `job_name` is known from
    the first update on; `finals` holds the final results so far, `transcript` their text.
    If the audio source raises, iterating raises that exception (the call is cancelled).
    `cancel()` ends the call at once: the service cancels the session's job (`SayItClient.
    cancel_job` cancels it from anywhere)."""

    def __init__(self, call: Any, feed: AudioFeed | None = None) -> None:
        self._call = call
        self._feed = feed
        self.job_name = ""
        self.finals: list[LiveResult] = []
        self._started = False

    @property
    def transcript(self) -> str:
        return " ".join(r.text.strip() for r in self.finals if r.text.strip())

    def cancel(self) -> None:
        self._call.cancel()

    def __iter__(self) -> Iterator[LiveUpdate]:
        try:
            for response in self._call:
                if response.job_name and not self._started:
                    self._started = True
                    self.job_name = response.job_name
                    yield SessionStarted(response.job_name)
                update = update_of(response)
                if update is None:
                    continue
                if isinstance(update, LiveResult) and update.is_final:
                    self.finals.append(update)
                yield update
        except grpc.RpcError as error:
            if self._feed is not None and self._feed.failure is not None:
                # The audio source failed (the call was cancelled for it): that is the cause.
                raise self._feed.failure from error
            raise from_rpc_error(error) from error
        except GeneratorExit:
            self._call.cancel()
            raise

    def results(self, *, interim: bool = True) -> Iterator[LiveResult]:
        """Only the results (finals only with `interim=False`)."""
        for update in self:
            if isinstance(update, LiveResult) and (interim or update.is_final):
                yield update


# --- audio sources ------------------------------------------------------------------------------


def chunk_bytes(
    sample_rate_hertz: int,
    *,
    channels: int = 1,
    encoding: str = "linear16",
    seconds: float = CHUNK_SECONDS,
) -> int:
    """Bytes of `seconds` of audio in that layout (whole frames)."""
    frame = SAMPLE_BYTES[encoding] * max(1, channels)
    return max(1, round(sample_rate_hertz * seconds)) * frame


def read_chunks(file: IO[bytes], size: int) -> Iterator[bytes]:
    """`file` in chunks of `size` bytes (the last may be shorter) until its end; from a pipe,
    each read waits for a whole chunk (a microphone's 100 ms)."""
    while chunk := file.read(size):
        yield chunk


def paced(
    chunks: Iterable[bytes],
    bytes_per_second: float,
    *,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """The chunks at real-time pace, as a microphone delivers them: each one when the audio it
    ends with would have been recorded (measured from the first chunk's start, so waits do not
    add up). Stops early, without sending what is left, once `stop` is set."""
    stop = stop or threading.Event()
    started: float | None = None
    sent = 0
    for chunk in chunks:
        if started is None:
            started = clock()
        sent += len(chunk)
        due = started + sent / bytes_per_second
        wait = due - clock()
        if (wait > 0 and stop.wait(wait)) or stop.is_set():
            return
        yield chunk


def until(chunks: Iterable[bytes], stop: threading.Event) -> Iterator[bytes]:
    """The chunks until `stop` is set (then the request stream half-closes)."""
    for chunk in chunks:
        if stop.is_set():
            return
        yield chunk


def decode_to_pcm(path: str | os.PathLike[str]) -> IO[bytes]:
    """Any audio file SayIt reads (WAV, FLAC, MP3, Ogg/Opus, M4A, WebM...) decoded to 16 kHz
    mono LINEAR16 in a temporary file (hours of audio cost disk, not memory), positioned at its
    start. BadAudio (a ValueError-like SayIt error) if it cannot be decoded."""
    # Imported here: decoding pulls in numpy, libsndfile and FFmpeg, which the rest of the
    # client does not need.
    from services.common.audio import decode_pcm16_to_file

    out = tempfile.TemporaryFile()  # noqa: SIM115 (returned open: the caller closes it)
    try:
        with open(path, "rb") as source:
            decode_pcm16_to_file(source, Path(path).name, out)
        out.flush()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


def file_chunks(
    path: str | os.PathLike[str],
    *,
    realtime: bool = True,
    chunk_seconds: float = CHUNK_SECONDS,
    stop: threading.Event | None = None,
) -> Iterator[bytes]:
    """The file decoded (now: a file that cannot be decoded fails here, before any call) to
    16 kHz mono LINEAR16, the session's defaults, in chunks of `chunk_seconds`: at real-time
    pace (`realtime`), else as fast as the service takes them."""
    pcm = decode_to_pcm(path)
    return _pcm_chunks(pcm, realtime, chunk_seconds, stop or threading.Event())


def _pcm_chunks(
    pcm: IO[bytes], realtime: bool, chunk_seconds: float, stop: threading.Event
) -> Iterator[bytes]:
    try:
        chunks = read_chunks(pcm, chunk_bytes(SAMPLE_RATE, seconds=chunk_seconds))
        yield from paced(chunks, SAMPLE_RATE * 2, stop=stop) if realtime else until(chunks, stop)
    finally:
        pcm.close()
