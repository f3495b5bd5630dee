from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Task(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_UNSPECIFIED: _ClassVar[Task]
    TASK_TRANSCRIBE: _ClassVar[Task]
    TASK_TRANSLATE: _ClassVar[Task]

class Preset(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRESET_UNSPECIFIED: _ClassVar[Preset]
    PRESET_ACCURATE: _ClassVar[Preset]
    PRESET_FAST: _ClassVar[Preset]

class SegmentFlag(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENT_FLAG_UNSPECIFIED: _ClassVar[SegmentFlag]
    SEGMENT_FLAG_HIGH_NO_SPEECH_PROB: _ClassVar[SegmentFlag]
    SEGMENT_FLAG_LOW_AVG_LOGPROB: _ClassVar[SegmentFlag]
    SEGMENT_FLAG_HIGH_COMPRESSION_RATIO: _ClassVar[SegmentFlag]
    SEGMENT_FLAG_REPETITION: _ClassVar[SegmentFlag]
    SEGMENT_FLAG_SUSPECTED_HALLUCINATION: _ClassVar[SegmentFlag]
TASK_UNSPECIFIED: Task
TASK_TRANSCRIBE: Task
TASK_TRANSLATE: Task
PRESET_UNSPECIFIED: Preset
PRESET_ACCURATE: Preset
PRESET_FAST: Preset
SEGMENT_FLAG_UNSPECIFIED: SegmentFlag
SEGMENT_FLAG_HIGH_NO_SPEECH_PROB: SegmentFlag
SEGMENT_FLAG_LOW_AVG_LOGPROB: SegmentFlag
SEGMENT_FLAG_HIGH_COMPRESSION_RATIO: SegmentFlag
SEGMENT_FLAG_REPETITION: SegmentFlag
SEGMENT_FLAG_SUSPECTED_HALLUCINATION: SegmentFlag

class TranscriptionConfig(_message.Message):
    __slots__ = ("language_code", "preset", "model", "task", "word_timestamps", "vad_filter", "initial_prompt", "hotwords")
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    WORD_TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    VAD_FILTER_FIELD_NUMBER: _ClassVar[int]
    INITIAL_PROMPT_FIELD_NUMBER: _ClassVar[int]
    HOTWORDS_FIELD_NUMBER: _ClassVar[int]
    language_code: str
    preset: Preset
    model: str
    task: Task
    word_timestamps: bool
    vad_filter: bool
    initial_prompt: str
    hotwords: str
    def __init__(self, language_code: _Optional[str] = ..., preset: _Optional[_Union[Preset, str]] = ..., model: _Optional[str] = ..., task: _Optional[_Union[Task, str]] = ..., word_timestamps: _Optional[bool] = ..., vad_filter: _Optional[bool] = ..., initial_prompt: _Optional[str] = ..., hotwords: _Optional[str] = ...) -> None: ...

class Word(_message.Message):
    __slots__ = ("start_seconds", "end_seconds", "word", "probability")
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WORD_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    start_seconds: float
    end_seconds: float
    word: str
    probability: float
    def __init__(self, start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., word: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("id", "start_seconds", "end_seconds", "text", "avg_logprob", "no_speech_prob", "compression_ratio", "temperature", "words", "flags")
    ID_FIELD_NUMBER: _ClassVar[int]
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AVG_LOGPROB_FIELD_NUMBER: _ClassVar[int]
    NO_SPEECH_PROB_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    id: int
    start_seconds: float
    end_seconds: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    words: _containers.RepeatedCompositeFieldContainer[Word]
    flags: _containers.RepeatedScalarFieldContainer[SegmentFlag]
    def __init__(self, id: _Optional[int] = ..., start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., text: _Optional[str] = ..., avg_logprob: _Optional[float] = ..., no_speech_prob: _Optional[float] = ..., compression_ratio: _Optional[float] = ..., temperature: _Optional[float] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ..., flags: _Optional[_Iterable[_Union[SegmentFlag, str]]] = ...) -> None: ...

class Transcript(_message.Message):
    __slots__ = ("text", "language_code", "language_probability", "audio_duration_seconds", "segments", "model", "processing_seconds", "from_cache", "preset")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FROM_CACHE_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    text: str
    language_code: str
    language_probability: float
    audio_duration_seconds: float
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    model: str
    processing_seconds: float
    from_cache: bool
    preset: Preset
    def __init__(self, text: _Optional[str] = ..., language_code: _Optional[str] = ..., language_probability: _Optional[float] = ..., audio_duration_seconds: _Optional[float] = ..., segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., model: _Optional[str] = ..., processing_seconds: _Optional[float] = ..., from_cache: _Optional[bool] = ..., preset: _Optional[_Union[Preset, str]] = ...) -> None: ...
