from sayit.common.v1 import audio_pb2 as _audio_pb2
from sayit.common.v1 import event_pb2 as _event_pb2
from sayit.common.v1 import job_pb2 as _job_pb2
from sayit.common.v1 import streaming_pb2 as _streaming_pb2
from sayit.common.v1 import transcription_pb2 as _transcription_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTH_MODE_UNSPECIFIED: _ClassVar[AuthMode]
    AUTH_MODE_API_KEYS: _ClassVar[AuthMode]
    AUTH_MODE_OFF: _ClassVar[AuthMode]
AUTH_MODE_UNSPECIFIED: AuthMode
AUTH_MODE_API_KEYS: AuthMode
AUTH_MODE_OFF: AuthMode

class TranscribeRequest(_message.Message):
    __slots__ = ("audio", "config")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    audio: _audio_pb2.Audio
    config: _transcription_pb2.TranscriptionConfig
    def __init__(self, audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., config: _Optional[_Union[_transcription_pb2.TranscriptionConfig, _Mapping]] = ...) -> None: ...

class TranscribeResponse(_message.Message):
    __slots__ = ("transcript", "job", "job_name")
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    transcript: _transcription_pb2.Transcript
    job: _job_pb2.TranscriptionJob
    job_name: str
    def __init__(self, transcript: _Optional[_Union[_transcription_pb2.Transcript, _Mapping]] = ..., job: _Optional[_Union[_job_pb2.TranscriptionJob, _Mapping]] = ..., job_name: _Optional[str] = ...) -> None: ...

class TranscribeWithProgressRequest(_message.Message):
    __slots__ = ("audio", "config")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    audio: _audio_pb2.Audio
    config: _transcription_pb2.TranscriptionConfig
    def __init__(self, audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., config: _Optional[_Union[_transcription_pb2.TranscriptionConfig, _Mapping]] = ...) -> None: ...

class TranscribeWithProgressResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.JobEvent
    def __init__(self, event: _Optional[_Union[_event_pb2.JobEvent, _Mapping]] = ...) -> None: ...

class CreateJobRequest(_message.Message):
    __slots__ = ("audio", "config", "idempotency_key")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    audio: _audio_pb2.Audio
    config: _transcription_pb2.TranscriptionConfig
    idempotency_key: str
    def __init__(self, audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., config: _Optional[_Union[_transcription_pb2.TranscriptionConfig, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.TranscriptionJob
    def __init__(self, job: _Optional[_Union[_job_pb2.TranscriptionJob, _Mapping]] = ...) -> None: ...

class UploadJobRequest(_message.Message):
    __slots__ = ("header", "audio_chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadJobHeader
    audio_chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadJobHeader, _Mapping]] = ..., audio_chunk: _Optional[bytes] = ...) -> None: ...

class UploadJobHeader(_message.Message):
    __slots__ = ("filename", "config", "idempotency_key", "total_bytes")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    filename: str
    config: _transcription_pb2.TranscriptionConfig
    idempotency_key: str
    total_bytes: int
    def __init__(self, filename: _Optional[str] = ..., config: _Optional[_Union[_transcription_pb2.TranscriptionConfig, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class UploadJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.TranscriptionJob
    def __init__(self, job: _Optional[_Union[_job_pb2.TranscriptionJob, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.TranscriptionJob
    def __init__(self, job: _Optional[_Union[_job_pb2.TranscriptionJob, _Mapping]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("name", "after_sequence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    after_sequence: int
    def __init__(self, name: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.JobEvent
    def __init__(self, event: _Optional[_Union[_event_pb2.JobEvent, _Mapping]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.TranscriptionJob
    def __init__(self, job: _Optional[_Union[_job_pb2.TranscriptionJob, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "view")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    view: _job_pb2.JobView
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., view: _Optional[_Union[_job_pb2.JobView, str]] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.TranscriptionJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.TranscriptionJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("version", "auth_mode", "tenant", "model", "max_audio_seconds", "max_request_bytes", "max_upload_bytes", "tenant_requests_per_second", "tenant_request_burst", "tenant_audio_seconds_per_day")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    AUTH_MODE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MAX_AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_UPLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    TENANT_REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TENANT_REQUEST_BURST_FIELD_NUMBER: _ClassVar[int]
    TENANT_AUDIO_SECONDS_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    version: str
    auth_mode: AuthMode
    tenant: str
    model: str
    max_audio_seconds: float
    max_request_bytes: int
    max_upload_bytes: int
    tenant_requests_per_second: float
    tenant_request_burst: int
    tenant_audio_seconds_per_day: float
    def __init__(self, version: _Optional[str] = ..., auth_mode: _Optional[_Union[AuthMode, str]] = ..., tenant: _Optional[str] = ..., model: _Optional[str] = ..., max_audio_seconds: _Optional[float] = ..., max_request_bytes: _Optional[int] = ..., max_upload_bytes: _Optional[int] = ..., tenant_requests_per_second: _Optional[float] = ..., tenant_request_burst: _Optional[int] = ..., tenant_audio_seconds_per_day: _Optional[float] = ...) -> None: ...

class StreamingRecognizeRequest(_message.Message):
    __slots__ = ("streaming_config", "audio_content")
    STREAMING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONTENT_FIELD_NUMBER: _ClassVar[int]
    streaming_config: _streaming_pb2.StreamingRecognitionConfig
    audio_content: bytes
    def __init__(self, streaming_config: _Optional[_Union[_streaming_pb2.StreamingRecognitionConfig, _Mapping]] = ..., audio_content: _Optional[bytes] = ...) -> None: ...

class StreamingRecognizeResponse(_message.Message):
    __slots__ = ("job_name", "result", "speech_event")
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SPEECH_EVENT_FIELD_NUMBER: _ClassVar[int]
    job_name: str
    result: _streaming_pb2.StreamingRecognitionResult
    speech_event: _streaming_pb2.SpeechEvent
    def __init__(self, job_name: _Optional[str] = ..., result: _Optional[_Union[_streaming_pb2.StreamingRecognitionResult, _Mapping]] = ..., speech_event: _Optional[_Union[_streaming_pb2.SpeechEvent, _Mapping]] = ...) -> None: ...
