"""The effective transcription config: a TranscriptionConfig validated, with every default the
service applies written in ("KO" is "ko", an unset preset is PRESET_ACCURATE, an unset VAD is on,
an empty model is the served one).

The gateway computes it once per request and sends it on: the scheduler keys the result cache
on it and stores it in the job, and the transcriber decodes by it, so no two places can disagree
about what "the same request" is. A transcriber called directly (grpcurl, tests) gets a raw
config and applies the same function; for an effective config it changes nothing.

Every failure is INVALID_ARGUMENT naming the field, so callers can fix the request.
"""

from __future__ import annotations

from sayit.common.v1 import transcription_pb2 as tpb
from services.common.errors import InvalidArgument
from services.common.languages import LANGUAGES

MAX_PROMPT_CHARS = 1000
MAX_HOTWORDS_CHARS = 1000
PRESETS = (tpb.PRESET_UNSPECIFIED, tpb.PRESET_ACCURATE, tpb.PRESET_FAST)
TASKS = (tpb.TASK_UNSPECIFIED, tpb.TASK_TRANSCRIBE, tpb.TASK_TRANSLATE)


def normalize_language(code: str) -> str:
    """ "ko", "KO" or "ko-KR" -> "ko"; "" or "auto" -> "" (detect). Unknown -> InvalidArgument."""
    value = code.strip().lower().replace("_", "-")
    if value in ("", "auto"):
        return ""
    primary = value.split("-", 1)[0]
    if primary not in LANGUAGES:
        raise InvalidArgument(
            f"unknown language code {code[:40]!r}: use a Whisper language code such as 'ko' or "
            "'en', or leave it empty to detect the language",
            field="config.language_code",
        )
    return primary


def effective_config(config: tpb.TranscriptionConfig, served_model: str) -> tpb.TranscriptionConfig:
    """`config` validated and with the service's defaults written in; InvalidArgument naming
    the first bad field (language, preset, task, model, prompt, hotwords)."""
    language = normalize_language(config.language_code)
    if config.preset not in PRESETS:
        raise InvalidArgument(
            f"unknown preset {config.preset}; use PRESET_ACCURATE or PRESET_FAST",
            field="config.preset",
        )
    if config.task not in TASKS:
        raise InvalidArgument(
            f"unknown task {config.task}; use TASK_TRANSCRIBE or TASK_TRANSLATE",
            field="config.task",
        )
    if config.model and config.model != served_model:
        raise InvalidArgument(
            f"model {config.model[:80]!r} is not served here (served: {served_model}); "
            "leave config.model empty for the default",
            field="config.model",
        )
    for name, value, limit in (
        ("initial_prompt", config.initial_prompt, MAX_PROMPT_CHARS),
        ("hotwords", config.hotwords, MAX_HOTWORDS_CHARS),
    ):
        if len(value) > limit:
            raise InvalidArgument(
                f"{name} is {len(value)} characters; the limit is {limit}",
                field=f"config.{name}",
            )
    return tpb.TranscriptionConfig(
        language_code=language,
        preset=config.preset or tpb.PRESET_ACCURATE,
        model=served_model,
        task=config.task or tpb.TASK_TRANSCRIBE,
        word_timestamps=config.word_timestamps,
        vad_filter=config.vad_filter if config.HasField("vad_filter") else True,
        initial_prompt=config.initial_prompt,
        hotwords=config.hotwords,
    )
