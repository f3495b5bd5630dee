"""The parts of a request built from what a caller hands the client: a TranscriptionConfig from
plain values, an Audio message from bytes or a file path."""

from __future__ import annotations

import os
from pathlib import Path

from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb

AudioInput = bytes | str | os.PathLike[str]
_PRESETS = {"": tpb.PRESET_UNSPECIFIED, "accurate": tpb.PRESET_ACCURATE, "fast": tpb.PRESET_FAST}
_TASKS = {
    "": tpb.TASK_UNSPECIFIED,
    "transcribe": tpb.TASK_TRANSCRIBE,
    "translate": tpb.TASK_TRANSLATE,
}


def make_config(
    *,
    language: str = "",
    model: str = "",
    word_timestamps: bool = False,
    preset: str = "",
    task: str = "",
    initial_prompt: str = "",
    hotwords: str = "",
) -> tpb.TranscriptionConfig:
    """A TranscriptionConfig from plain values. `language` "" or "auto" detects the language;
    `preset` is "accurate" or "fast"; `task` "transcribe" or "translate"."""
    if preset not in _PRESETS:
        raise ValueError(f"preset must be one of accurate, fast; got {preset!r}")
    if task not in _TASKS:
        raise ValueError(f"task must be one of transcribe, translate; got {task!r}")
    return tpb.TranscriptionConfig(
        language_code="" if language == "auto" else language,
        model=model,
        word_timestamps=word_timestamps,
        preset=_PRESETS[preset],
        task=_TASKS[task],
        initial_prompt=initial_prompt,
        hotwords=hotwords,
    )


def load_audio(audio: AudioInput, filename: str = "") -> audio_pb2.Audio:
    """An Audio message from bytes or a file path (whose name becomes the filename hint)."""
    if isinstance(audio, bytes):
        return audio_pb2.Audio(content=audio, filename=filename)
    path = Path(audio)
    return audio_pb2.Audio(content=path.read_bytes(), filename=filename or path.name)
