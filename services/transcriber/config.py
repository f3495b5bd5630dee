"""Transcriber settings (SAYIT_* variables), read once in __main__."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common import hugepages
from services.common.config import ConfigError, Env, ServerConfig, load_server_config
from services.common.languages import LANGUAGES

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
    # Calls that may wait, audio decoded, for a busy slot instead of being refused: the
    # scheduler sends each slot's next short job ahead (SAYIT_DIRECT_AHEAD), so that a freed
    # slot starts decoding at once.
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


def batches(config: TranscriberConfig, audio_seconds: float, language: str) -> bool:
    """Whether a request is decoded batched (the engine also needs VAD on)."""
    return (
        config.batch_size > 1
        and audio_seconds >= config.batch_min_seconds
        and language in config.batch_languages
    )


def _languages(env: Env, name: str, default: frozenset[str]) -> frozenset[str]:
    raw = env.get_str(name, ",".join(sorted(default)))
    codes = frozenset(code.strip().lower() for code in raw.split(",") if code.strip())
    unknown = sorted(codes - LANGUAGES)
    if unknown:
        raise ConfigError(f"{name}: unknown language code(s) {', '.join(unknown)}; got {raw!r}")
    return codes


def load_model_config(env: Env) -> ModelConfig:
    xdg_cache = env.get_path("XDG_CACHE_HOME", None) or Path.home() / ".cache"
    return ModelConfig(
        name=env.get_str("SAYIT_MODEL", "base"),
        cache_dir=env.get_path("SAYIT_MODEL_CACHE_DIR", None) or xdg_cache / "sayit" / "models",
        models_dir=env.get_path("SAYIT_MODELS_DIR", None),
    )


def load_config(environ: Mapping[str, str]) -> TranscriberConfig:
    env = Env(environ)
    slots = env.get_int("SAYIT_TRANSCRIBER_SLOTS", 1, min=1, max=64)
    # By default the slots share the machine's cores.
    default_threads = max(1, (os.cpu_count() or 1) // slots)
    return TranscriberConfig(
        server=load_server_config(env, "SAYIT_TRANSCRIBER_ADDR", DEFAULT_ADDR),
        model=load_model_config(env),
        slots=slots,
        cpu_threads=env.get_int("SAYIT_CPU_THREADS", default_threads, min=1, max=256),
        waiting=env.get_int("SAYIT_TRANSCRIBER_WAITING", slots, min=0, max=1024),
        max_audio_seconds=env.get_float("SAYIT_MAX_AUDIO_SECONDS", 4 * 3600.0, min=1.0),
        batch_size=env.get_int("SAYIT_BATCH_SIZE", DEFAULT_BATCH_SIZE, min=0, max=64),
        batch_min_seconds=env.get_float(
            "SAYIT_BATCH_MIN_SECONDS", DEFAULT_BATCH_MIN_SECONDS, min=0.0
        ),
        batch_languages=_languages(env, "SAYIT_BATCH_LANGUAGES", DEFAULT_BATCH_LANGUAGES),
        metrics_addr=env.get_optional_addr("SAYIT_TRANSCRIBER_METRICS_ADDR"),
        huge_pages=hugepages.enabled(environ),
    )
