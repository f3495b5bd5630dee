"""Public SpeechService messages <-> scheduler calls, and job outcomes -> responses/errors."""

from __future__ import annotations

from sayit.common.v1 import audio_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from services.common.errors import Cancelled, InvalidArgument, SayItError, status_code_from_number
from services.common.validation import validate_config


def validate_submission(
    audio: audio_pb2.Audio, config: tpb.TranscriptionConfig, model: str
) -> None:
    if not audio.content:
        raise InvalidArgument(
            "audio.content is empty: send the audio file's bytes", field="audio.content"
        )
    validate_config(config, [model])


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
