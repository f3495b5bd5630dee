"""Decoding and probing of caller audio.

Everything the model sees goes through `decode`: float32 mono at 16 kHz in [-1, 1]. libsndfile
(via soundfile) reads WAV, FLAC, OGG Vorbis/Opus and MP3; PyAV (FFmpeg) reads the rest (M4A/AAC,
WebM, ...). Audio is decoded in blocks and resampled as a stream, so hours of input cost little
more than the 16 kHz result. Every failure is a `BadAudio` whose message says what is wrong.
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Generator
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from services.common.errors import BadAudio

SAMPLE_RATE = 16_000

SUPPORTED = "WAV, FLAC, OGG/Opus, OGG/Vorbis, MP3, M4A/AAC, WebM"

# Frames per block read from libsndfile and grouped from PyAV frames before resampling: big enough
# that per-call overhead vanishes, small enough (~1.4 s at 48 kHz) that blocks cost little memory.
_BLOCK_FRAMES = 1 << 16
# Decoded audio may differ from the declared length by codec priming/padding (tens of ms).
_PADDING_SECONDS = 0.25
# Truncated = more than this much shorter than declared and under _TRUNCATED_RATIO of it.
_TRUNCATED_GAP_SECONDS = 0.5
_TRUNCATED_RATIO = 0.9
# Cap on the output buffer reserved up front from a declared length, so a lying header cannot
# reserve gigabytes; longer audio still decodes, the buffer grows as needed.
_PREALLOCATE_MAX_SECONDS = 3600.0
_INITIAL_SECONDS = 60.0
# libsndfile reports this for lengths it cannot know.
_UNKNOWN_FRAMES = 1 << 62
# Raw elementary streams whose FFmpeg duration is a guess from the bitrate, not a header.
_ESTIMATED_DURATION_FORMATS = frozenset({"aac", "mp3", "ac3", "eac3"})
_SOUNDFILE_FORMATS = {"WAVEX": "wav", "RF64": "wav"}
_AV_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2": "mp4", "matroska,webm": "matroska"}

Samples = npt.NDArray[np.float32]
Pcm16 = npt.NDArray[np.int16]


@dataclass(frozen=True)
class AudioInfo:
    duration_seconds: float
    sample_rate: int  # native rate of the file
    channels: int
    format: str  # short name e.g. "wav", "flac", "ogg", "mp3", "mp4", "webm"
    exact: bool  # True when the duration came from headers/stream info without decoding everything


def decode(content: bytes, filename: str = "", max_seconds: float | None = None) -> Samples:
    """The audio as float32 mono (channel average) at 16 kHz, values in [-1, 1].

    With `max_seconds`, audio declared longer is refused before decoding, and audio with no
    declared length is refused as soon as decoding passes the limit.
    """
    samples: Samples = _decode(content, filename, max_seconds, np.float32)
    return samples


def decode_pcm16(content: bytes, filename: str = "", max_seconds: float | None = None) -> Pcm16:
    """Like `decode`, but as 16-bit PCM: half the memory, for hours of audio that are only cut
    and re-encoded (never fed to the model as a whole)."""
    samples: Pcm16 = _decode(content, filename, max_seconds, np.int16)
    return samples


def _decode(
    content: bytes, filename: str, max_seconds: float | None, dtype: type[np.generic]
) -> np.ndarray:
    _require_content(content)
    name = _named(filename)
    sound_file = _open_soundfile(content)
    if sound_file is not None:
        with sound_file:
            return _decode_soundfile(sound_file, content, name, max_seconds, dtype)
    with _open_av(content, name) as container:
        stream = _audio_stream(container, content, name)
        return _decode_av(container, stream, content, name, max_seconds, dtype)


def probe(content: bytes, filename: str = "") -> AudioInfo:
    """Duration, rate and channels, from headers where the format declares them.

    Decodes only when no duration is declared (exact=False). Truncation inside compressed data is
    found only by `decode`; a WAV header that declares more data than present is found here.
    """
    _require_content(content)
    name = _named(filename)
    sound_file = _open_soundfile(content)
    if sound_file is not None:
        with sound_file:
            return _probe_soundfile(sound_file, content, name)
    with _open_av(content, name) as container:
        stream = _audio_stream(container, content, name)
        return _probe_av(container, stream, content, name)


def encode_wav(samples: npt.ArrayLike, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV bytes of 1-D float samples in [-1, 1] (clipped, NaN -> 0), or of
    int16 samples as they are."""
    array = np.asarray(samples)
    if array.ndim != 1:
        raise ValueError(f"encode_wav takes 1-D mono samples, got shape {array.shape}")
    if array.dtype == np.int16:
        pcm = array
    else:
        # Convert ourselves: libsndfile wraps out-of-range floats around instead of clipping.
        mono = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
        pcm = np.rint(np.clip(mono, -1.0, 1.0) * 32767.0).astype(np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, pcm, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# --- libsndfile ----------------------------------------------------------------------------------


def _open_soundfile(content: bytes) -> sf.SoundFile | None:
    """The file opened by libsndfile, or None when libsndfile does not read it (PyAV may)."""
    try:
        sound_file = sf.SoundFile(io.BytesIO(content))
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
        return None
    if sound_file.frames == 0:
        # libsndfile also opens an OGG cut inside its first audio page as "0 frames"; PyAV then
        # either reads more or tells a damaged file from an empty one.
        sound_file.close()
        return None
    return sound_file


def _soundfile_declared_seconds(sound_file: sf.SoundFile, content: bytes) -> float | None:
    if sound_file.samplerate <= 0 or not 0 <= sound_file.frames < _UNKNOWN_FRAMES:
        return None
    seconds = sound_file.frames / sound_file.samplerate
    # libsndfile clips a WAV data length that overruns the file to the bytes present, which
    # would hide the truncation; the header itself says how much there should be.
    wav_seconds = _wav_declared_seconds(content)
    return seconds if wav_seconds is None else max(seconds, wav_seconds)


def _probe_soundfile(sound_file: sf.SoundFile, content: bytes, name: str) -> AudioInfo:
    fmt = _SOUNDFILE_FORMATS.get(sound_file.format, sound_file.format.lower())
    declared = _soundfile_declared_seconds(sound_file, content)
    if declared is None:
        seconds = _count_soundfile_seconds(sound_file, name)
        exact = False
    else:
        present = sound_file.frames / sound_file.samplerate
        _check_complete(declared, present, failed=False)
        seconds, exact = declared, True
    if seconds <= 0:
        raise BadAudio("audio contains no samples")
    return AudioInfo(seconds, sound_file.samplerate, sound_file.channels, fmt, exact)


def _count_soundfile_seconds(sound_file: sf.SoundFile, name: str) -> float:
    if sound_file.samplerate <= 0:
        raise _undecodable(name, "the header declares no sample rate")
    frames = 0
    block = np.empty((_BLOCK_FRAMES, sound_file.channels), dtype=np.float32)
    try:
        while got := len(sound_file.read(out=block)):
            frames += got
    except (sf.SoundFileError, RuntimeError) as error:
        raise _damaged(frames / sound_file.samplerate) from error
    return frames / sound_file.samplerate


def _decode_soundfile(
    sound_file: sf.SoundFile,
    content: bytes,
    name: str,
    max_seconds: float | None,
    dtype: type[np.generic],
) -> np.ndarray:
    rate, channels = sound_file.samplerate, sound_file.channels
    if rate <= 0 or channels <= 0:
        raise _undecodable(name, "the header declares no sample rate or channels")
    declared = _soundfile_declared_seconds(sound_file, content)
    _check_limit(declared, max_seconds)
    sink = _Sink(declared, max_seconds, dtype)
    # One block buffer reused for every read: libsndfile converts to float32 straight into it.
    block = np.empty((_BLOCK_FRAMES, channels), dtype=np.float32)
    failed = False
    try:
        while len(got := sound_file.read(out=block)):
            sink.write(got[:, 0] if channels == 1 else got.mean(axis=1, dtype=np.float32), rate)
    except (sf.SoundFileError, RuntimeError):
        failed = True
    return _finish(sink, declared, failed)


def _wav_declared_seconds(content: bytes) -> float | None:
    """Seconds of data the RIFF/WAVE header declares, or None if not a WAV or a placeholder."""
    if len(content) < 12 or content[:4] != b"RIFF" or content[8:12] != b"WAVE":
        return None
    position, byte_rate = 12, 0
    while position + 8 <= len(content):
        chunk_id, size = struct.unpack_from("<4sI", content, position)
        body = position + 8
        if chunk_id == b"fmt " and size >= 16 and body + 16 <= len(content):
            (byte_rate,) = struct.unpack_from("<I", content, body + 8)
        elif chunk_id == b"data":
            # Streaming writers leave 0 or ~4 GiB when they cannot seek back to fill the size in.
            if size == 0 or size >= 0x7FFF0000 or byte_rate == 0:
                return None
            return float(size / byte_rate)
        position = body + size + (size & 1)  # chunks are word-aligned
    return None


# --- PyAV ----------------------------------------------------------------------------------------


def _open_av(content: bytes, name: str) -> av.container.InputContainer:
    try:
        return av.open(io.BytesIO(content), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as error:
        raise _undecodable(name, _sniff_reason(content)) from error


def _audio_stream(
    container: av.container.InputContainer, content: bytes, name: str
) -> av.AudioStream:
    if container.streams.audio:
        stream = container.streams.audio[0]
        if stream.codec_context is None:  # e.g. a WAV whose format tag names no codec
            fmt = _av_format(container, content)
            raise BadAudio(
                f"could not decode audio{name}: the {fmt} file's audio codec is unknown or "
                f"not supported (supported: {SUPPORTED})"
            )
        return stream
    if container.streams.video:
        fmt = _av_format(container, content)
        raise BadAudio(f"could not decode audio{name}: the {fmt} file has no audio stream")
    raise _undecodable(name, f"not a recognised audio format (supported: {SUPPORTED})")


def _av_format(container: av.container.InputContainer, content: bytes) -> str:
    fmt = _AV_FORMATS.get(container.format.name, container.format.name.split(",")[0])
    # FFmpeg has one demuxer for both; the EBML header's DocType tells them apart.
    if fmt == "matroska" and b"webm" in content[:64]:
        return "webm"
    return fmt


def _av_declared_seconds(
    container: av.container.InputContainer, stream: av.AudioStream
) -> float | None:
    if container.format.name in _ESTIMATED_DURATION_FORMATS:
        return None
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    # The container's duration covers every stream; it stands for the audio only when alone.
    if container.duration and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


@dataclass
class _Progress:
    failed: bool = False  # the demuxer stopped with an error
    skipped: int = 0  # packets the decoder rejected


def _av_frames(
    container: av.container.InputContainer, stream: av.AudioStream, progress: _Progress
) -> Generator[av.AudioFrame, None, None]:
    try:
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.error.InvalidDataError:
                # A damaged packet (typically the cut last one) costs only its own frames.
                progress.skipped += 1
                continue
            for frame in frames:
                if frame.samples > 0 and frame.sample_rate > 0:
                    yield frame
    except (av.FFmpegError, OSError, ValueError):
        progress.failed = True


def _probe_av(
    container: av.container.InputContainer, stream: av.AudioStream, content: bytes, name: str
) -> AudioInfo:
    fmt = _av_format(container, content)
    rate = stream.codec_context.sample_rate
    channels = stream.codec_context.channels
    declared = _av_declared_seconds(container, stream)
    # A WAV whose header declares data that libsndfile found none of (cut after the header).
    wav_seconds = _wav_declared_seconds(content)
    if wav_seconds is not None:
        _check_complete(wav_seconds, declared or 0.0, failed=False)
    if declared is not None:
        seconds, exact = declared, True
    else:
        progress = _Progress()
        seconds = 0.0
        with contextlib.closing(_av_frames(container, stream, progress)) as frames:
            for frame in frames:
                seconds += frame.samples / frame.sample_rate
                rate = rate or frame.sample_rate
                channels = channels or frame.layout.nb_channels
        if seconds == 0 and (progress.failed or progress.skipped):
            raise _undecodable(name, _sniff_reason(content))
        exact = False
    if seconds <= 0:
        raise BadAudio("audio contains no samples")
    return AudioInfo(seconds, rate, channels, fmt, exact)


def _decode_av(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    content: bytes,
    name: str,
    max_seconds: float | None,
    dtype: type[np.generic],
) -> np.ndarray:
    declared = _av_declared_seconds(container, stream)
    wav_seconds = _wav_declared_seconds(content)
    if wav_seconds is not None:
        declared = max(declared or 0.0, wav_seconds)
    _check_limit(declared, max_seconds)
    sink = _Sink(declared, max_seconds, dtype)
    progress = _Progress()
    # Decoders hand out small frames (1024 samples for AAC); group them into blocks for soxr.
    pending: list[Samples] = []
    pending_frames, pending_rate = 0, 0
    # A limit error leaves the generator suspended; close it while the container is still open.
    with contextlib.closing(_av_frames(container, stream, progress)) as frames:
        for frame in frames:
            if pending and frame.sample_rate != pending_rate:
                sink.write(np.concatenate(pending), pending_rate)
                pending, pending_frames = [], 0
            pending.append(_frame_to_mono(frame))
            pending_frames += frame.samples
            pending_rate = frame.sample_rate
            if pending_frames >= _BLOCK_FRAMES:
                sink.write(np.concatenate(pending), pending_rate)
                pending, pending_frames = [], 0
    if pending:
        sink.write(np.concatenate(pending), pending_rate)
    if sink.seconds == 0 and (progress.failed or progress.skipped) and declared is None:
        raise _undecodable(name, _sniff_reason(content))
    return _finish(sink, declared, progress.failed)


def _frame_to_mono(frame: av.AudioFrame) -> Samples:
    """One frame as float32 mono, averaging channels, whatever the decoder's sample format."""
    array: np.ndarray = frame.to_ndarray()
    channels = frame.layout.nb_channels or (array.shape[0] if frame.format.is_planar else 1)
    # Planar formats come as (channels, samples); packed ones interleaved in one row.
    planes = array if frame.format.is_planar else array.reshape(-1, channels).T
    if planes.dtype == np.uint8:
        samples = planes.astype(np.float32)
        samples -= 128.0
        samples *= 1.0 / 128.0
    elif np.issubdtype(planes.dtype, np.integer):
        samples = planes.astype(np.float32)
        samples *= 1.0 / -np.iinfo(planes.dtype).min
    else:
        samples = planes.astype(np.float32, copy=False)
    mono: Samples = samples[0] if channels == 1 else samples.mean(axis=0, dtype=np.float32)
    return mono


# --- shared --------------------------------------------------------------------------------------


class _Sink:
    """Takes mono float32 blocks at any rate; keeps them resampled to 16 kHz in one array of
    `dtype` (float32 in [-1, 1], or int16 PCM).

    The array is reserved from the declared length so long audio is not copied while it grows;
    reserved but unwritten pages are never touched, so over-reserving costs no memory.
    """

    def __init__(
        self,
        expected_seconds: float | None,
        max_seconds: float | None,
        dtype: type[np.generic] = np.float32,
    ) -> None:
        seconds = _INITIAL_SECONDS if expected_seconds is None else expected_seconds + 1.0
        seconds = min(seconds, _PREALLOCATE_MAX_SECONDS)
        if max_seconds is not None:
            seconds = min(seconds, max_seconds + 2 * _PADDING_SECONDS)
        self._dtype = dtype
        self._data: np.ndarray = np.empty(max(int(seconds * SAMPLE_RATE), 1), dtype=dtype)
        self._size = 0
        self._rate = 0
        self._resampler: soxr.ResampleStream | None = None
        self._max_seconds = max_seconds
        self.seconds = 0.0  # of input audio written

    def write(self, mono: Samples, rate: int) -> None:
        if rate != self._rate:
            self._flush()
            self._rate = rate
            self._resampler = (
                None
                if rate == SAMPLE_RATE
                else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            )
        self.seconds += len(mono) / rate
        if not mono.flags.writeable:
            mono = mono.copy()
        # NaN/inf (possible in float WAVs) would smear across the resampler's filter.
        if not np.isfinite(mono).all():
            np.nan_to_num(mono, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(mono, -1.0, 1.0, out=mono)
        self._append(mono if self._resampler is None else self._resampler.resample_chunk(mono))
        if self._max_seconds is not None and self.seconds > self._max_seconds + _PADDING_SECONDS:
            raise BadAudio(f"audio is longer than the limit of {_secs(self._max_seconds)} s")

    def finish(self) -> np.ndarray:
        self._flush()
        return self._data[: self._size]

    def _flush(self) -> None:
        if self._resampler is not None:
            self._append(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            self._resampler = None

    def _append(self, chunk: Samples) -> None:
        end = self._size + len(chunk)
        if end > len(self._data):
            grown = np.empty(max(end, len(self._data) * 3 // 2), dtype=self._dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        # The resampler can overshoot full scale slightly; clip while copying in.
        if self._dtype == np.int16:
            # x 32768 as libsndfile reads 16-bit PCM (÷ 32768): 16-bit sources come back exact.
            scaled = chunk * 32768.0
            np.rint(scaled, out=scaled)
            np.clip(scaled, -32768.0, 32767.0, out=scaled)
            self._data[self._size : end] = scaled.astype(np.int16)
        else:
            np.clip(chunk, -1.0, 1.0, out=self._data[self._size : end])
        self._size = end


def _finish(sink: _Sink, declared: float | None, failed: bool) -> np.ndarray:
    samples = sink.finish()
    _check_complete(declared, sink.seconds, failed)
    if failed and declared is None:
        raise _damaged(sink.seconds)
    if len(samples) == 0:
        raise BadAudio("audio contains no samples")
    return samples


def _check_complete(declared: float | None, decoded: float, failed: bool) -> None:
    """Raise when far less was decoded than declared, or an error stopped decoding part way."""
    if declared is None:
        return
    gap = declared - decoded
    if gap > _TRUNCATED_GAP_SECONDS and (failed or decoded < _TRUNCATED_RATIO * declared):
        raise BadAudio(
            f"audio is truncated: the header declares {_secs(declared)} s but only "
            f"{_secs(decoded)} s could be decoded"
        )


def _check_limit(declared: float | None, max_seconds: float | None) -> None:
    # Codec priming/padding can add a little to a declared length that is really at the limit.
    if (
        max_seconds is not None
        and declared is not None
        and declared > max_seconds + _PADDING_SECONDS
    ):
        raise BadAudio(f"audio is {_secs(declared)} s long; the limit is {_secs(max_seconds)} s")


def _require_content(content: bytes) -> None:
    if not content:
        raise BadAudio("audio.content is empty")


def _named(filename: str) -> str:
    return f" {filename!r}" if filename else ""


def _undecodable(name: str, reason: str) -> BadAudio:
    return BadAudio(f"could not decode audio{name}: {reason}")


def _damaged(seconds: float) -> BadAudio:
    return BadAudio(f"audio is truncated or damaged: decoding failed after {_secs(seconds)} s")


def _sniff_reason(content: bytes) -> str:
    """Why decoding failed: a known signature means damaged data, not an unsupported format."""
    kind = _sniff(content)
    if kind is None:
        return f"not a recognised audio format (supported: {SUPPORTED})"
    return f"the data looks like {kind} but is damaged or truncated"


def _sniff(content: bytes) -> str | None:
    head = content[:12]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[4:8] == b"ftyp":
        return "MP4/M4A"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "WebM/Matroska"
    if head[:3] == b"ID3":
        return "MP3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # Both are MPEG frame syncs; ADTS has layer bits 00, MP3 has layer III (01).
        return "AAC" if head[1] & 0x06 == 0 else "MP3"
    return None


def _secs(seconds: float) -> str:
    return f"{seconds:.2f}".rstrip("0").rstrip(".")
