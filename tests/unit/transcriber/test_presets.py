"""services.transcriber.presets: the decoding table and what it hands to faster-whisper.

faster_whisper is imported for its signatures only; no model is loaded.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from faster_whisper import WhisperModel
from faster_whisper.vad import VadOptions

from services.transcriber import presets
from services.transcriber.presets import (
    ACCURATE,
    AUTO,
    FAST,
    PRESET_NAMES,
    PRESETS,
    DecodePreset,
    lookup,
)

ROWS = sorted(PRESETS.items())
ROW_IDS = [f"{language}-{name}" for (language, name), _ in ROWS]


def test_preset_names() -> None:
    assert (ACCURATE, FAST, AUTO) == ("accurate", "fast", "auto")
    assert PRESET_NAMES == ("accurate", "fast")


def test_table_has_a_row_for_every_language_and_preset() -> None:
    assert set(PRESETS) == {(lang, name) for lang in ("ko", "en", AUTO) for name in PRESET_NAMES}


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize("language", ["ko", "en"])
def test_lookup_own_rows(language: str, name: str) -> None:
    assert lookup(language, name) is PRESETS[(language, name)]


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize("language", ["", "auto", "ja", "de", "zh", "xx"])
def test_lookup_other_languages_use_the_auto_row(language: str, name: str) -> None:
    assert lookup(language, name) is PRESETS[(AUTO, name)]


@pytest.mark.parametrize("preset", ["", "ACCURATE", "balanced", "slow"])
def test_lookup_unknown_preset(preset: str) -> None:
    with pytest.raises(ValueError) as raised:
        lookup("en", preset)
    assert str(raised.value) == f"unknown preset {preset!r}; known: accurate, fast"


def test_row_values() -> None:
    # The measured choices of docs/presets.md.
    for language in ("ko", "en", ""):
        accurate, fast = lookup(language, ACCURATE), lookup(language, FAST)
        assert accurate.condition_on_previous_text is False
        assert fast.condition_on_previous_text is True
        assert (accurate.beam_size, accurate.best_of) == (5, 5)
        assert (fast.beam_size, fast.best_of) == (1, 1)
        for preset in (accurate, fast):
            assert preset.temperatures == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
            assert preset.vad_region_max_seconds == 25.0
            assert preset.vad_min_silence_ms == 500
            assert preset.default_prompt is None  # prompts cost Korean accuracy
            assert preset.vad_speech_pad_ms == 200
            assert preset.vad_region_lead_ms == 400
            assert preset.region_lead_seconds == 0.4


@pytest.mark.parametrize(("key", "preset"), ROWS, ids=ROW_IDS)
def test_every_row_starts_at_temperature_zero(key: tuple[str, str], preset: DecodePreset) -> None:
    assert preset.temperatures[0] == 0.0
    assert list(preset.temperatures) == sorted(preset.temperatures)
    assert preset.transcribe_kwargs()["temperature"][0] == 0.0


@pytest.mark.parametrize(("key", "preset"), ROWS, ids=ROW_IDS)
def test_beam_size_by_preset(key: tuple[str, str], preset: DecodePreset) -> None:
    if key[1] == ACCURATE:
        assert preset.beam_size > 1
    else:
        assert preset.beam_size == 1


def _transcribe_parameters() -> set[str]:
    parameters = inspect.signature(WhisperModel.transcribe).parameters
    return {name for name in parameters if name not in ("self", "audio")}


@pytest.mark.parametrize(("key", "preset"), ROWS, ids=ROW_IDS)
def test_transcribe_kwargs_are_real_parameters(key: tuple[str, str], preset: DecodePreset) -> None:
    kwargs = preset.transcribe_kwargs()
    unknown = set(kwargs) - _transcribe_parameters()
    assert not unknown, f"not parameters of WhisperModel.transcribe: {sorted(unknown)}"
    # The engine passes these itself; a preset must not collide with them.
    engine_owned = {
        "language",
        "task",
        "word_timestamps",
        "vad_filter",
        "vad_parameters",
        "initial_prompt",
        "hotwords",
    }
    assert not set(kwargs) & engine_owned
    # The signature binds (catches typos and positional mistakes too).
    inspect.signature(WhisperModel.transcribe).bind(None, None, **kwargs)


def test_transcribe_kwargs_values() -> None:
    preset = lookup("ko", ACCURATE)
    assert preset.transcribe_kwargs() == {
        "beam_size": 5,
        "best_of": 5,
        "patience": 1.0,
        "temperature": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        "condition_on_previous_text": False,
        "compression_ratio_threshold": 2.4,
        "log_prob_threshold": -1.0,
        "no_speech_threshold": 0.6,
        "repetition_penalty": 1.0,
        "no_repeat_ngram_size": 0,
        "language_detection_segments": 3,
        "hallucination_silence_threshold": None,
    }
    # A list, not the preset's own tuple (faster-whisper's annotation allows both).
    assert isinstance(preset.transcribe_kwargs()["temperature"], list)


@pytest.mark.parametrize(("key", "preset"), ROWS, ids=ROW_IDS)
def test_vad_parameters_are_vad_options(key: tuple[str, str], preset: DecodePreset) -> None:
    fields = {f.name for f in dataclasses.fields(VadOptions)}
    params = preset.vad_parameters()
    assert set(params) <= fields
    options = VadOptions(**params)
    assert options.threshold == preset.vad_threshold
    assert options.min_silence_duration_ms == preset.vad_min_silence_ms
    assert options.speech_pad_ms == preset.vad_speech_pad_ms


def test_vad_parameters_values() -> None:
    assert DecodePreset().vad_parameters() == {
        "threshold": 0.5,
        "min_silence_duration_ms": 1000,
        "speech_pad_ms": 400,
    }


@pytest.mark.parametrize("temperatures", [(0.2, 0.4), (1.0,), (0.5, 0.0), ()])
def test_non_zero_first_temperature_is_refused(temperatures: tuple[float, ...]) -> None:
    with pytest.raises(ValueError) as raised:
        DecodePreset(temperatures=temperatures)
    assert str(raised.value) == "the temperature tuple must start at 0.0 to keep beam search on"


def test_replace_keeps_the_temperature_check() -> None:
    with pytest.raises(ValueError, match=r"must start at 0\.0"):
        dataclasses.replace(lookup("en", ACCURATE), temperatures=(0.4,))
    assert dataclasses.replace(lookup("en", ACCURATE), temperatures=(0.0,)).temperatures == (0.0,)


def test_presets_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        lookup("en", ACCURATE).beam_size = 1  # type: ignore[misc]
    assert presets.PRESETS[("en", ACCURATE)].beam_size == 5
