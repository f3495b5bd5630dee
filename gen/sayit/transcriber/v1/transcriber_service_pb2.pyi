from sayit.common.v1 import audio_pb2 as _audio_pb2
from sayit.common.v1 import transcription_pb2 as _transcription_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TranscribeStreamRequest(_message.Message):
    __slots__ = ("audio", "config", "job_id", "audio_duration_seconds")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    audio: _audio_pb2.Audio
    config: _transcription_pb2.TranscriptionConfig
    job_id: str
    audio_duration_seconds: float
    def __init__(self, audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., config: _Optional[_Union[_transcription_pb2.TranscriptionConfig, _Mapping]] = ..., job_id: _Optional[str] = ..., audio_duration_seconds: _Optional[float] = ...) -> None: ...

class TranscribeProgress(_message.Message):
    __slots__ = ("fraction", "audio_seconds_done", "audio_seconds_total")
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SECONDS_DONE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SECONDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    fraction: float
    audio_seconds_done: float
    audio_seconds_total: float
    def __init__(self, fraction: _Optional[float] = ..., audio_seconds_done: _Optional[float] = ..., audio_seconds_total: _Optional[float] = ...) -> None: ...

class TranscribeStreamResponse(_message.Message):
    __slots__ = ("progress", "segment", "transcript")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    progress: TranscribeProgress
    segment: _transcription_pb2.Segment
    transcript: _transcription_pb2.Transcript
    def __init__(self, progress: _Optional[_Union[TranscribeProgress, _Mapping]] = ..., segment: _Optional[_Union[_transcription_pb2.Segment, _Mapping]] = ..., transcript: _Optional[_Union[_transcription_pb2.Transcript, _Mapping]] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("model", "model_path", "slots_total", "slots_busy", "segments_decoded_total", "calls_completed_total", "calls_cancelled_total", "cpu_threads", "calls_waiting")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    SLOTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SLOTS_BUSY_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_DECODED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CALLS_COMPLETED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CALLS_CANCELLED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CPU_THREADS_FIELD_NUMBER: _ClassVar[int]
    CALLS_WAITING_FIELD_NUMBER: _ClassVar[int]
    model: str
    model_path: str
    slots_total: int
    slots_busy: int
    segments_decoded_total: int
    calls_completed_total: int
    calls_cancelled_total: int
    cpu_threads: int
    calls_waiting: int
    def __init__(self, model: _Optional[str] = ..., model_path: _Optional[str] = ..., slots_total: _Optional[int] = ..., slots_busy: _Optional[int] = ..., segments_decoded_total: _Optional[int] = ..., calls_completed_total: _Optional[int] = ..., calls_cancelled_total: _Optional[int] = ..., cpu_threads: _Optional[int] = ..., calls_waiting: _Optional[int] = ...) -> None: ...
