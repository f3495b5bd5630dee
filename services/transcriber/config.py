"""Transcriber settings (SAYIT_* variables), read once in __main__, and the config derived from
them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_settings import NoDecode

from services.common.config import ServerConfig
from services.common.hugepages import HugePagesSettings
from services.common.languages import LANGUAGES
from services.common.settings import ExpandedPath, HostPort, Int, OptionalHostPort, doc, invalid
from services.common.shared_settings import (
    ALLOWED_PEERS,
    InternalServerSettings,
    MaxAudioSettings,
    ModelNameSettings,
    PeerNames,
)

DEFAULT_ADDR = "127.0.0.1:50053"
# Off: batched decoding was 1.4-1.7x faster on long English within 0.5 WER points, but on long
# Korean it lost 5-13 CER points (docs/presets.md); SAYIT_BATCH_LANGUAGES keeps it to English.
DEFAULT_BATCH_SIZE = 0
# Audio shorter than this is never queued (SAYIT_SYNC_MAX_SECONDS), so by default only queued
# long audio is batched; short audio has a single window and nothing to batch.
DEFAULT_BATCH_MIN_SECONDS = 30.0
# Audio with no language given is never batched: its language is not known in time.
DEFAULT_BATCH_LANGUAGES = frozenset({"en"})


@dataclass(frozen=True)
class ModelConfig:
    name: str
    cache_dir: Path
    models_dir: Path | None


@dataclass(frozen=True)
class TranscriberConfig:
    server: ServerConfig
    model: ModelConfig
    slots: int
    cpu_threads: int
    max_audio_seconds: float
    # Calls that may wait for a busy slot instead of being refused: the scheduler sends each
    # slot's next short job ahead (SAYIT_DIRECT_AHEAD), so that a freed slot starts on it at
    # once. A call decodes its audio only once it holds a slot.
    waiting: int = 0
    # Batched decoding (faster-whisper's BatchedInferencePipeline) for audio at least
    # batch_min_seconds long; batch_size <= 1 turns it off. Defaults measured by bench.batched.
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_min_seconds: float = DEFAULT_BATCH_MIN_SECONDS
    batch_languages: frozenset[str] = DEFAULT_BATCH_LANGUAGES
    # Prometheus /metrics listen address; "" = off.
    metrics_addr: str = ""
    # The model's memory on transparent huge pages (services/common/hugepages.py).
    huge_pages: bool = True
    # Live sessions (StreamTranscribe) this transcriber takes at once, besides its file slots.
    stream_sessions: int = 4


def batches(config: TranscriberConfig, audio_seconds: float, language: str) -> bool:
    """Whether a request is decoded batched (the engine also needs VAD on)."""
    return (
        config.batch_size > 1
        and audio_seconds >= config.batch_min_seconds
        and language in config.batch_languages
    )


def _languages(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    codes = frozenset(code.strip().lower() for code in value.split(",") if code.strip())
    unknown = sorted(codes - LANGUAGES)
    if unknown:
        raise invalid(f": unknown language code(s) {', '.join(unknown)}")
    return codes


Languages = Annotated[frozenset[str], NoDecode, BeforeValidator(_languages)]


class ModelSettings(ModelNameSettings):
    """Which model to load and where its files are (the transcriber, and bench's raw engine)."""

    model_cache_dir: ExpandedPath | None = Field(
        None,
        description="where the bundled model is assembled",
        json_schema_extra=doc("`$XDG_CACHE_HOME/sayit/models` (`~/.cache/sayit/models`)"),
    )
    models_dir: ExpandedPath | None = Field(
        None,
        description="directory of other models (`<name>/` or `faster-whisper-<name>/`); the "
        "Hugging Face cache is also searched",
    )
    # Not a SayIt setting: the XDG base directory the default cache lives under.
    xdg_cache_home: ExpandedPath | None = Field(None, validation_alias="XDG_CACHE_HOME")

    @property
    def model_files(self) -> ModelConfig:
        xdg_cache = self.xdg_cache_home or Path.home() / ".cache"
        return ModelConfig(
            name=self.model,
            cache_dir=self.model_cache_dir or xdg_cache / "sayit" / "models",
            models_dir=self.models_dir,
        )


class TranscriberSettings(
    InternalServerSettings, MaxAudioSettings, ModelSettings, HugePagesSettings
):
    used_by = "transcriber"

    # The scheduler (short audio, direct) and the queue workers (chunks) call transcribers.
    tls_allowed_peers: PeerNames = Field(("scheduler", "worker"), description=ALLOWED_PEERS)

    transcriber_addr: HostPort = Field(
        DEFAULT_ADDR, description="for the transcriber, its listen address"
    )
    transcriber_metrics_addr: OptionalHostPort = Field(
        "", description="Prometheus `/metrics` listen address of a transcriber; empty = off"
    )
    transcriber_slots: Int = Field(
        1,
        ge=1,
        le=64,
        description="concurrent transcriptions; more wait for a slot (below) or are refused "
        "with RESOURCE_EXHAUSTED",
    )
    transcriber_waiting: Int | None = Field(
        None,
        ge=0,
        le=1024,
        description="calls that may wait, first come first served, for a busy slot (the "
        "scheduler's jobs sent ahead), their audio decoded only once they hold it; more are "
        "refused before any decoding; `0` = refuse at once",
        json_schema_extra=doc("`SAYIT_TRANSCRIBER_SLOTS`"),
    )
    transcriber_stream_sessions: Int = Field(
        4,
        ge=1,
        le=64,
        description="live sessions (`StreamingRecognize`) a transcriber takes at once, "
        "besides its file slots; more are refused with RESOURCE_EXHAUSTED. Each holds at most "
        "three utterances of audio (under 6 MB) and one decode at a time; on two cores four "
        "real-time sessions kept a median endpoint latency under 2 s (docs/streaming.md)",
    )
    cpu_threads: Int | None = Field(
        None,
        ge=1,
        le=256,
        description="CTranslate2 threads per slot",
        json_schema_extra=doc("cores ÷ slots"),
    )
    batch_size: Int = Field(
        DEFAULT_BATCH_SIZE,
        ge=0,
        le=64,
        description="batched decoding (faster-whisper's `BatchedInferencePipeline`) of long "
        "audio, this many speech regions of up to 30 s at a time; `0` or `1` = sequential. Off "
        "by default: faster on long English at the same accuracy (1.5–1.7× at batch 4–16, "
        "−0.5 WER points), but a batched Korean file loses 5–13 CER points, and a batched "
        "segment is a whole region of up to 30 s (coarse subtitles and progress) "
        '(`docs/presets.md`, "Batched decoding")',
        json_schema_extra=doc("`0` (off)"),
    )
    batch_min_seconds: float = Field(
        DEFAULT_BATCH_MIN_SECONDS,
        ge=0.0,
        description="audio at least this long is decoded batched (by default: queued audio "
        "only; short audio has one window)",
    )
    batch_languages: Languages = Field(
        DEFAULT_BATCH_LANGUAGES,
        description="the languages decoded batched when `SAYIT_BATCH_SIZE` is on "
        "(comma-separated codes); a request with no language given is never batched",
    )

    def config(self) -> TranscriberConfig:
        slots = self.transcriber_slots
        # By default the slots share the machine's cores.
        default_threads = max(1, (os.cpu_count() or 1) // slots)
        return TranscriberConfig(
            server=self.server_config(self.transcriber_addr),
            model=self.model_files,
            slots=slots,
            cpu_threads=self.cpu_threads or default_threads,
            waiting=slots if self.transcriber_waiting is None else self.transcriber_waiting,
            max_audio_seconds=self.max_audio_seconds,
            batch_size=self.batch_size,
            batch_min_seconds=self.batch_min_seconds,
            batch_languages=self.batch_languages,
            metrics_addr=self.transcriber_metrics_addr,
            huge_pages=self.huge_pages,
            stream_sessions=self.transcriber_stream_sessions,
        )


def load_config(environ: Mapping[str, str]) -> TranscriberConfig:
    return TranscriberSettings.from_env(environ).config()
