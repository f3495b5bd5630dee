"""Gateway errors as OpenAI error answers: real grpc statuses (with google.rpc details), the
gateway's field paths named as the caller named them, failed jobs and the wait limit."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from fastapi.responses import JSONResponse

from sayit.common.v1 import job_pb2
from services.common.errors import InvalidArgument, NotFound, ResourceExhausted, SayItError
from services.common.status import to_status
from services.http_edge import openai_answers, openai_calls


def rpc_error(error: SayItError) -> grpc.aio.AioRpcError:
    status = to_status(error)
    return grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )


def parsed(answer: JSONResponse) -> dict:  # type: ignore[type-arg]
    return json.loads(bytes(answer.body))["error"]


def test_a_bad_language_names_the_form_field() -> None:
    error = rpc_error(InvalidArgument("unknown language code 'xx'", field="config.language_code"))
    answer = openai_answers.rpc_error_response(error)
    assert answer.status_code == 400
    assert parsed(answer) == {
        "message": "unknown language code 'xx'",
        "type": "invalid_request_error",
        "param": "language",
        "code": "invalid_argument",
    }
    for path, param in (
        ("audio.content", "file"),
        ("config.initial_prompt", "prompt"),
        ("config.hotwords", "hotwords"),
        ("header.total_bytes", "file"),
    ):
        answer = openai_answers.rpc_error_response(rpc_error(InvalidArgument("bad", field=path)))
        assert parsed(answer)["param"] == param


def test_rate_limit_has_retry_after_and_not_found_no_param() -> None:
    answer = openai_answers.rpc_error_response(
        rpc_error(ResourceExhausted("tenant tiny is over 0.5 requests/s", retry_after_seconds=1.6))
    )
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "2" and answer.headers["retry-after-ms"] == "1600"
    assert parsed(answer)["type"] == "rate_limit_error"
    missing = openai_answers.rpc_error_response(rpc_error(NotFound("no job jobs/abc")), "jobs/abc")
    assert missing.status_code == 404 and parsed(missing)["param"] is None
    assert missing.headers["x-sayit-job"] == "jobs/abc"


def test_a_failed_job_answers_its_error_code() -> None:
    assert openai_answers.status_code_of(3) is grpc.StatusCode.INVALID_ARGUMENT
    assert openai_answers.status_code_of(14) is grpc.StatusCode.UNAVAILABLE
    assert openai_answers.status_code_of(0) is grpc.StatusCode.OK
    assert openai_answers.status_code_of(999) is grpc.StatusCode.UNKNOWN
    failed = openai_answers.job_error_response(
        "jobs/j1", job_pb2.JobError(code=3, message="could not decode the audio")
    )
    assert failed.status_code == 400 and failed.headers["x-sayit-job"] == "jobs/j1"
    assert parsed(failed)["message"] == "could not decode the audio"
    unavailable = openai_answers.job_error_response("jobs/j1", job_pb2.JobError(code=14))
    assert unavailable.status_code == 503 and unavailable.headers["retry-after"] == "1"
    assert parsed(unavailable)["message"] == "the job failed"
    cancelled = openai_answers.cancelled_response("jobs/j1", "cancelled by the caller")
    assert cancelled.status_code == 409 and parsed(cancelled)["code"] == "job_cancelled"


def test_still_running_is_504_with_the_jobs_location() -> None:
    answer = openai_answers.still_running_response("jobs/abc123", 600.0)
    assert answer.status_code == 504
    assert answer.headers["location"] == "/v1/jobs/abc123"
    assert answer.headers["x-should-retry"] == "false"
    assert answer.headers["x-sayit-job"] == "jobs/abc123"
    error = parsed(answer)
    assert error["code"] == "job_still_running" and "jobs/abc123" in error["message"]


class Caller:
    """A request whose receive() says the caller has gone once `gone` is set."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, str]:
        await self.gone.wait()
        return {"type": "http.disconnect"}


async def test_a_disconnect_cancels_the_call_and_a_wait_runs_out() -> None:
    cancelled: list[str] = []
    started = asyncio.Event()

    async def forever() -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    caller = Caller()
    work = asyncio.ensure_future(
        openai_calls.guarded(caller, forever(), lambda: cancelled.append("call"))  # type: ignore[arg-type]
    )
    await started.wait()
    caller.gone.set()
    with pytest.raises(openai_calls.ClientGone):
        await work
    assert cancelled == ["call"]

    with pytest.raises(openai_calls.WaitExpired):
        await openai_calls.guarded(
            Caller(),  # type: ignore[arg-type]
            forever(),
            lambda: cancelled.append("wait"),
            seconds=0.05,
        )
    assert cancelled == ["call", "wait"]

    async def quick() -> str:
        return "transcript"

    assert await openai_calls.guarded(Caller(), quick(), lambda: cancelled.append("no")) == (  # type: ignore[arg-type]
        "transcript"
    )
    assert cancelled == ["call", "wait"]
