"""The OpenAI-shaped error answers about a job or a failed gateway call, shared by the plain
and the streaming flows so both say the same thing. Every answer about a job carries
`X-SayIt-Job: jobs/{id}`.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from fastapi.responses import JSONResponse

from services.http_edge import errors

JOB_HEADER = "X-SayIt-Job"

# The gateway's field paths -> the form fields of the audio routes.
PARAM_NAMES = {
    "config.language_code": "language",
    "config.model": "model",
    "config.initial_prompt": "prompt",
    "config.hotwords": "hotwords",
    "config.preset": "preset",
    "audio.content": "file",
    "audio.filename": "file",
    "audio_chunk": "file",
    "header": "file",
    "header.total_bytes": "file",
}
_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def job_id(name: str) -> str:
    return name.removeprefix("jobs/")


def status_code_of(number: int) -> grpc.StatusCode:
    """A google.rpc.Code number (JobError.code) as a grpc.StatusCode (UNKNOWN if not one)."""
    return _STATUS_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def rpc_error_response(error: grpc.RpcError, job_name: str = "") -> JSONResponse:
    """A failed gateway call in OpenAI's shape, field paths named as this route's caller
    named them."""
    answer = errors.from_rpc_error(error, PARAM_NAMES)
    if job_name:
        answer.headers[JOB_HEADER] = job_name
    return answer


def job_error_response(name: str, error: Any) -> JSONResponse:
    """The answer for a job that failed with `error` (a JobError)."""
    answer = errors.from_status(
        status_code_of(error.code), error.message or "the job failed", param_names=PARAM_NAMES
    )
    answer.headers[JOB_HEADER] = name
    return answer


def cancelled_response(name: str, reason: str) -> JSONResponse:
    message = f"job {name} was cancelled" + (f": {reason}" if reason else "")
    return errors.response(409, message, code="job_cancelled", headers={JOB_HEADER: name})


def still_running_response(name: str, waited: float) -> JSONResponse:
    """504 `job_still_running` with the job's Location: the job goes on, and
    `x-should-retry: false` keeps the openai SDK from resubmitting it."""
    return errors.response(
        504,
        f"job {name} is still running after {waited:g} s; it goes on: follow it at "
        f"/v1/jobs/{job_id(name)} (GET, or its /events)",
        code="job_still_running",
        error_type="timeout",
        headers={
            "Location": f"/v1/jobs/{job_id(name)}",
            "x-should-retry": "false",
            JOB_HEADER: name,
        },
    )


def error_dict(answer: JSONResponse) -> dict[str, Any]:
    """An answer's body, for a server-sent error event."""
    data: dict[str, Any] = json.loads(bytes(answer.body))
    return data
