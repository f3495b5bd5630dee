from sayit.common.v1 import audio_pb2 as _audio_pb2
from sayit.common.v1 import streaming_pb2 as _streaming_pb2
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
    __slots__ = ("model", "model_path", "slots_total", "slots_busy", "segments_decoded_total", "calls_completed_total", "calls_cancelled_total", "cpu_threads", "calls_waiting", "sessions_total", "sessions_active")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    SLOTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SLOTS_BUSY_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_DECODED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CALLS_COMPLETED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CALLS_CANCELLED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CPU_THREADS_FIELD_NUMBER: _ClassVar[int]
    CALLS_WAITING_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    model: str
    model_path: str
    slots_total: int
    slots_busy: int
    segments_decoded_total: int
    calls_completed_total: int
    calls_cancelled_total: int
    cpu_threads: int
    calls_waiting: int
    sessions_total: int
    sessions_active: int
    def __init__(self, model: _Optional[str] = ..., model_path: _Optional[str] = ..., slots_total: _Optional[int] = ..., slots_busy: _Optional[int] = ..., segments_decoded_total: _Optional[int] = ..., calls_completed_total: _Optional[int] = ..., calls_cancelled_total: _Optional[int] = ..., cpu_threads: _Optional[int] = ..., calls_waiting: _Optional[int] = ..., sessions_total: _Optional[int] = ..., sessions_active: _Optional[int] = ...) -> None: ...

class StreamTranscribeSetup(_message.Message):
    __slots__ = ("streaming_config", "job_id")
    STREAMING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    streaming_config: _streaming_pb2.StreamingRecognitionConfig
    job_id: str
    def __init__(self, streaming_config: _Optional[_Union[_streaming_pb2.StreamingRecognitionConfig, _Mapping]] = ..., job_id: _Optional[str] = ...) -> None: ...

class StreamTranscribeRequest(_message.Message):
    __slots__ = ("setup", "audio_content")
    SETUP_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONTENT_FIELD_NUMBER: _ClassVar[int]
    setup: StreamTranscribeSetup
    audio_content: bytes
    def __init__(self, setup: _Optional[_Union[StreamTranscribeSetup, _Mapping]] = ..., audio_content: _Optional[bytes] = ...) -> None: ...

class StreamTranscribeResponse(_message.Message):
    __slots__ = ("result", "speech_event", "segment", "summary")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SPEECH_EVENT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    result: _streaming_pb2.StreamingRecognitionResult
    speech_event: _streaming_pb2.SpeechEvent
    segment: _transcription_pb2.Segment
    summary: StreamTranscribeSummary
    def __init__(self, result: _Optional[_Union[_streaming_pb2.StreamingRecognitionResult, _Mapping]] = ..., speech_event: _Optional[_Union[_streaming_pb2.SpeechEvent, _Mapping]] = ..., segment: _Optional[_Union[_transcription_pb2.Segment, _Mapping]] = ..., summary: _Optional[_Union[StreamTranscribeSummary, _Mapping]] = ...) -> None: ...

class StreamTranscribeSummary(_message.Message):
    __slots__ = ("audio_seconds", "language_code", "language_probability", "model", "preset", "processing_seconds")
    AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    audio_seconds: float
    language_code: str
    language_probability: float
    model: str
    preset: _transcription_pb2.Preset
    processing_seconds: float
    def __init__(self, audio_seconds: _Optional[float] = ..., language_code: _Optional[str] = ..., language_probability: _Optional[float] = ..., model: _Optional[str] = ..., preset: _Optional[_Union[_transcription_pb2.Preset, str]] = ..., processing_seconds: _Optional[float] = ...) -> None: ...
