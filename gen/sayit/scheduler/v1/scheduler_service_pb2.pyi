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

class RoutingPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTING_POLICY_UNSPECIFIED: _ClassVar[RoutingPolicy]
    ROUTING_POLICY_AUTO: _ClassVar[RoutingPolicy]
    ROUTING_POLICY_QUEUE: _ClassVar[RoutingPolicy]
ROUTING_POLICY_UNSPECIFIED: RoutingPolicy
ROUTING_POLICY_AUTO: RoutingPolicy
ROUTING_POLICY_QUEUE: RoutingPolicy

class SubmitJobRequest(_message.Message):
    __slots__ = ("tenant", "audio", "config", "routing_policy", "wait_if_short", "idempotency_key", "audio_duration_seconds")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    ROUTING_POLICY_FIELD_NUMBER: _ClassVar[int]
    WAIT_IF_SHORT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    audio: _audio_pb2.Audio
    config: _transcription_pb2.TranscriptionConfig
    routing_policy: RoutingPolicy
    wait_if_short: bool
    idempotency_key: str
    audio_duration_seconds: float
    def __init__(self, tenant: _Optional[str] = ..., audio: _Optional[_Union[_audio_pb2.Audio, _Mapping]] = ..., config: _Optional[_Union[_transcription_pb2.TranscriptionConfig, _Mapping]] = ..., routing_policy: _Optional[_Union[RoutingPolicy, str]] = ..., wait_if_short: _Optional[bool] = ..., idempotency_key: _Optional[str] = ..., audio_duration_seconds: _Optional[float] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
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
    __slots__ = ("tenant", "filename", "config", "idempotency_key", "audio_duration_seconds")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    filename: str
    config: _transcription_pb2.TranscriptionConfig
    idempotency_key: str
    audio_duration_seconds: float
    def __init__(self, tenant: _Optional[str] = ..., filename: _Optional[str] = ..., config: _Optional[_Union[_transcription_pb2.TranscriptionConfig, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., audio_duration_seconds: _Optional[float] = ...) -> None: ...

class UploadJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.TranscriptionJob
    def __init__(self, job: _Optional[_Union[_job_pb2.TranscriptionJob, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("tenant", "job_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    job_id: str
    def __init__(self, tenant: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.TranscriptionJob
    def __init__(self, job: _Optional[_Union[_job_pb2.TranscriptionJob, _Mapping]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("tenant", "job_id", "after_sequence")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    job_id: str
    after_sequence: int
    def __init__(self, tenant: _Optional[str] = ..., job_id: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.JobEvent
    def __init__(self, event: _Optional[_Union[_event_pb2.JobEvent, _Mapping]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("tenant", "job_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    job_id: str
    def __init__(self, tenant: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.TranscriptionJob
    def __init__(self, job: _Optional[_Union[_job_pb2.TranscriptionJob, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("tenant", "page_size", "page_token", "view")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    page_size: int
    page_token: str
    view: _job_pb2.JobView
    def __init__(self, tenant: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., view: _Optional[_Union[_job_pb2.JobView, str]] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.TranscriptionJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.TranscriptionJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StreamingSessionHeader(_message.Message):
    __slots__ = ("tenant", "streaming_config")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    STREAMING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    streaming_config: _streaming_pb2.StreamingRecognitionConfig
    def __init__(self, tenant: _Optional[str] = ..., streaming_config: _Optional[_Union[_streaming_pb2.StreamingRecognitionConfig, _Mapping]] = ...) -> None: ...

class StreamingRecognizeRequest(_message.Message):
    __slots__ = ("header", "audio_content")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CONTENT_FIELD_NUMBER: _ClassVar[int]
    header: StreamingSessionHeader
    audio_content: bytes
    def __init__(self, header: _Optional[_Union[StreamingSessionHeader, _Mapping]] = ..., audio_content: _Optional[bytes] = ...) -> None: ...

class StreamingRecognizeResponse(_message.Message):
    __slots__ = ("job_name", "result", "speech_event")
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SPEECH_EVENT_FIELD_NUMBER: _ClassVar[int]
    job_name: str
    result: _streaming_pb2.StreamingRecognitionResult
    speech_event: _streaming_pb2.SpeechEvent
    def __init__(self, job_name: _Optional[str] = ..., result: _Optional[_Union[_streaming_pb2.StreamingRecognitionResult, _Mapping]] = ..., speech_event: _Optional[_Union[_streaming_pb2.SpeechEvent, _Mapping]] = ...) -> None: ...
