"""Public SpeechService messages <-> scheduler calls, and job outcomes -> responses/errors."""

from __future__ import annotations

from sayit.common.v1 import job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from services.common.effective_config import effective_config
from services.common.errors import (
    Cancelled,
    InvalidArgument,
    QuotaViolation,
    ResourceExhausted,
    SayItError,
    status_code_from_number,
)

MAX_FILENAME_CHARS = 255
MAX_PAGE_TOKEN_CHARS = 512
MAX_PAGE_SIZE = 100
MAX_IDEMPOTENCY_KEY_CHARS = 128
MIB = 1024 * 1024


def validate_content(content: bytes, max_bytes: int) -> None:
    """The inline audio's checks (`content` is read from the request once: each read of a
    bytes field copies it)."""
    if not content:
        raise InvalidArgument(
            "audio.content is empty: send the audio file's bytes", field="audio.content"
        )
    if len(content) > max_bytes:
        raise ResourceExhausted(
            f"audio.content is {size(len(content))}; the limit is {size(max_bytes)} "
            "(SAYIT_MAX_REQUEST_BYTES): send it compressed (FLAC, Opus, MP3) or use UploadJob",
            violations=[QuotaViolation("request", f"audio.content bytes: {max_bytes}")],
        )


def validate_submission(
    filename: str, config: tpb.TranscriptionConfig, model: str
) -> tpb.TranscriptionConfig:
    """Everything besides the audio bytes that can be checked without looking inside the
    audio; the effective config (services.common.effective_config), which is what goes on to
    the scheduler."""
    if len(filename) > MAX_FILENAME_CHARS:
        raise InvalidArgument(
            f"audio.filename is {len(filename)} characters; the limit is {MAX_FILENAME_CHARS}",
            field="audio.filename",
        )
    return effective_config(config, model)


def validate_idempotency_key(key: str) -> None:
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidArgument(
            f"idempotency_key is {len(key)} characters; the limit is {MAX_IDEMPOTENCY_KEY_CHARS}",
            field="idempotency_key",
        )


def validate_page(page_size: int, page_token: str) -> None:
    if not 0 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be between 0 and {MAX_PAGE_SIZE} (0 = 20); got {page_size}",
            field="page_size",
        )
    if len(page_token) > MAX_PAGE_TOKEN_CHARS:
        raise InvalidArgument(
            "page_token is not a token returned by ListJobs; pass next_page_token unchanged",
            field="page_token",
        )


def validate_after_sequence(after_sequence: int) -> None:
    if after_sequence < 0:
        raise InvalidArgument(
            f"after_sequence must be 0 (from the start) or a sequence number; got {after_sequence}",
            field="after_sequence",
        )


def size(count: int) -> str:
    return f"{count / MIB:.1f} MiB ({count} bytes)"


def job_error(job: job_pb2.TranscriptionJob) -> SayItError:
    """The error to return to a caller that waited for a job that did not succeed."""
    if job.state == job_pb2.JOB_STATE_CANCELLED:
        return Cancelled(f"{job.name} was cancelled")
    error = SayItError(job.error.message or f"{job.name} failed")
    error.code = status_code_from_number(job.error.code)
    if error.code.name in ("OK", "UNKNOWN"):
        error.code = SayItError.code  # INTERNAL: never UNKNOWN
    return error


def transcribe_response(job: job_pb2.TranscriptionJob) -> pb.TranscribeResponse:
    """Short audio that ended: its transcript (or its error raised); long audio: the job."""
    if job.state == job_pb2.JOB_STATE_SUCCEEDED:
        return pb.TranscribeResponse(transcript=job.transcript, job_name=job.name)
    if job.state in (job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED):
        raise job_error(job)
    return pb.TranscribeResponse(job=job, job_name=job.name)
