import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sayit.common.v1 import job_pb2 as _job_pb2
from sayit.common.v1 import transcription_pb2 as _transcription_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobEvent(_message.Message):
    __slots__ = ("name", "job_id", "sequence", "time", "accepted", "progress", "segment", "completed", "failed", "cancelled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    name: str
    job_id: str
    sequence: int
    time: _timestamp_pb2.Timestamp
    accepted: JobAccepted
    progress: _job_pb2.JobProgress
    segment: _transcription_pb2.Segment
    completed: JobCompleted
    failed: JobFailed
    cancelled: JobCancelled
    def __init__(self, name: _Optional[str] = ..., job_id: _Optional[str] = ..., sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., accepted: _Optional[_Union[JobAccepted, _Mapping]] = ..., progress: _Optional[_Union[_job_pb2.JobProgress, _Mapping]] = ..., segment: _Optional[_Union[_transcription_pb2.Segment, _Mapping]] = ..., completed: _Optional[_Union[JobCompleted, _Mapping]] = ..., failed: _Optional[_Union[JobFailed, _Mapping]] = ..., cancelled: _Optional[_Union[JobCancelled, _Mapping]] = ...) -> None: ...

class JobAccepted(_message.Message):
    __slots__ = ("routing", "audio_duration_seconds")
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    routing: _job_pb2.Routing
    audio_duration_seconds: float
    def __init__(self, routing: _Optional[_Union[_job_pb2.Routing, str]] = ..., audio_duration_seconds: _Optional[float] = ...) -> None: ...

class JobCompleted(_message.Message):
    __slots__ = ("transcript",)
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    transcript: _transcription_pb2.Transcript
    def __init__(self, transcript: _Optional[_Union[_transcription_pb2.Transcript, _Mapping]] = ...) -> None: ...

class JobFailed(_message.Message):
    __slots__ = ("error",)
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: _job_pb2.JobError
    def __init__(self, error: _Optional[_Union[_job_pb2.JobError, _Mapping]] = ...) -> None: ...

class JobCancelled(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...
