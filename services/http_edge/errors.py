"""Errors as HTTP: gRPC status codes mapped to HTTP statuses the usual way, in OpenAI's error
body shape ({"error": {"message", "type", "param", "code"}}), with `Retry-After` when the
gateway sent a retry hint."""

from __future__ import annotations

import math
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.rpc import error_details_pb2, status_pb2
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common import logs

STATUS_DETAILS_KEY = "grpc-status-details-bin"

# gRPC code -> (HTTP status, OpenAI error type).
_MAPPING: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_request_error"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "invalid_request_error"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "invalid_request_error"),
    grpc.StatusCode.ABORTED: (409, "invalid_request_error"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "authentication_error"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found_error"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limit_error"),
    grpc.StatusCode.CANCELLED: (499, "cancelled"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "server_error"),
    grpc.StatusCode.UNAVAILABLE: (503, "service_unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout"),
}
_DEFAULT = (500, "server_error")
_TYPES_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
    504: "timeout",
}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error shape."""

    error: ErrorDetail


# For routes' `responses=`: every error status a route can answer, documented in the OpenAPI
# document with the error body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Invalid request (INVALID_ARGUMENT)"),
        (401, "No API key, or an unknown one (UNAUTHENTICATED)"),
        (403, "The key lacks the right (PERMISSION_DENIED)"),
        (404, "No such job (NOT_FOUND)"),
        (409, "The job has already ended (FAILED_PRECONDITION)"),
        (413, "The body is over the size limit"),
        (429, "Over a quota or limit (RESOURCE_EXHAUSTED); see Retry-After"),
        (500, "Internal error"),
        (503, "Temporarily unavailable (UNAVAILABLE); see Retry-After"),
        (504, "Still running after the wait limit (the job goes on)"),
    )
}


class ApiError(Exception):
    """An error the edge itself answers (not from the gateway)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


def body(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    error_type: str | None = None,
) -> dict[str, Any]:
    kind = error_type or _TYPES_BY_STATUS.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def response(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    error_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        body(status, message, param=param, code=code, error_type=error_type),
        status_code=status,
        headers=headers,
    )


def retry_after_headers(seconds: float | None) -> dict[str, str]:
    """Retry-After (whole seconds, rounded up, at least 1) and OpenAI's retry-after-ms."""
    if seconds is None:
        return {}
    return {
        "Retry-After": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, round(seconds * 1000))),
    }


def _status_details(error: grpc.RpcError) -> tuple[float | None, str | None]:
    """The RetryInfo delay and the first BadRequest field the gateway sent, if any."""
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    delay: float | None = None
    field: str | None = None
    for key, value in trailing or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            details = status_pb2.Status.FromString(value).details
        except Exception:  # a malformed trailer: no hints
            return None, None
        for item in details:
            info = error_details_pb2.RetryInfo()
            if item.Unpack(info):
                delay = info.retry_delay.ToNanoseconds() / 1e9
            bad = error_details_pb2.BadRequest()
            if item.Unpack(bad) and bad.field_violations and field is None:
                field = bad.field_violations[0].field
    return delay, field


def from_rpc_error(error: grpc.RpcError, param_names: dict[str, str] | None = None) -> JSONResponse:
    """The HTTP answer to a failed gateway call. `param_names` maps the gateway's field paths
    (`config.language_code`) to the names this route's caller used (`language`)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else "") or code.name
    delay, field = _status_details(error)
    if code == grpc.StatusCode.UNAVAILABLE and delay is None:
        # Every UNAVAILABLE of the gateway carries RetryInfo; one without it is this edge's
        # own channel failing, whose message names internal addresses.
        message = "the SayIt gateway is unavailable; try again shortly"
    elif code == grpc.StatusCode.UNKNOWN:
        # The gateway never answers UNKNOWN: a local failure of the call, not for callers.
        message = "internal error; the request id is in the X-Request-Id header"
    return from_status(code, message, param=field, param_names=param_names, retry_after=delay)


def from_status(
    code: grpc.StatusCode,
    message: str,
    *,
    param: str | None = None,
    param_names: dict[str, str] | None = None,
    retry_after: float | None = None,
) -> JSONResponse:
    """The HTTP answer for a gRPC status whose message is for callers (a gateway's answer, a
    job's error)."""
    status, kind = _MAPPING.get(code, _DEFAULT)
    if param is not None and param_names:
        param = param_names.get(param, param)
    headers = {}
    if status in (429, 503):
        headers = retry_after_headers(1.0 if retry_after is None else retry_after)
    return response(
        status, message, param=param, code=code.name.lower(), error_type=kind, headers=headers
    )


def install(app: FastAPI) -> None:
    """Every error the app raises answers in OpenAI's shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return response(
            error.status, error.message, param=error.param, code=error.code, headers=error.headers
        )

    @app.exception_handler(grpc.RpcError)
    async def _rpc_error(_: Request, error: grpc.RpcError) -> JSONResponse:
        return from_rpc_error(error)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        # OpenAI answers a bad parameter with 400 (FastAPI's default is 422).
        first = error.errors()[0] if error.errors() else {}
        location = [
            str(part)
            for part in first.get("loc", ())
            if part not in ("body", "query", "path", "header")
        ]
        param = ".".join(location) or None
        message = f"{param}: {first.get('msg', 'invalid')}" if param else str(first.get("msg"))
        return response(400, message, param=param, code="invalid_argument")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return response(error.status_code, str(error.detail), headers=dict(error.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logs.get_logger("sayit.http_edge").exception("unexpected_error", path=request.url.path)
        return response(500, "internal error; the request id is in the X-Request-Id header")
