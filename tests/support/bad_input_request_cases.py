"""The bad-input corpus, part 2: requests. Oversized messages, bad configuration, bad job names
and page tokens, and bytes that are not the method's message at all."""

from __future__ import annotations

from sayit.common.v1 import audio_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from tests.support.bad_input_case import EXHAUSTED, INVALID, NOT_FOUND, Case, transcribe
from tests.support.bad_input_material import MIB

DEFAULT_MAX_BYTES = 100 * MIB  # SAYIT_MAX_REQUEST_BYTES's default
UNKNOWN_JOB = "jobs/" + "0" * 32


REQUEST_CASES = [
    # Oversized messages.
    Case(
        "audio-just-over-the-request-limit",
        "Transcribe",
        transcribe(b"\0" * (DEFAULT_MAX_BYTES + 1)),
        EXHAUSTED,
        "audio.content is 100.0 MiB (104857601 bytes); the limit is 100.0 MiB (104857600 bytes) "
        "(SAYIT_MAX_REQUEST_BYTES)",
    ),
    Case(
        "message-far-over-the-limit",
        "Transcribe",
        transcribe(b"\0" * (DEFAULT_MAX_BYTES + 2 * MIB)),
        EXHAUSTED,
        # grpc's own words, before any handler runs: the transport limit is 1 MiB above
        # SAYIT_MAX_REQUEST_BYTES (room for the rest of the message).
        "Received message larger than max (106954764 vs. 105906176)",
    ),
    Case(
        "filename-too-long",
        "Transcribe",
        transcribe(b"RIFF", "a" * 300 + ".wav"),
        INVALID,
        "audio.filename is 304 characters; the limit is 255",
        field="audio.filename",
    ),
    # Bad configuration.
    Case(
        "unknown-language",
        "Transcribe",
        transcribe(b"x", language_code="xx"),
        INVALID,
        "unknown language code 'xx'",
        field="config.language_code",
    ),
    Case(
        "language-name-not-code",
        "Transcribe",
        transcribe(b"x", language_code="korean"),
        INVALID,
        "unknown language code 'korean'",
    ),
    Case(
        "language-with-nul",
        "Transcribe",
        transcribe(b"x", language_code="ko\0"),
        INVALID,
        "unknown language code",
    ),
    Case(
        "unknown-preset-enum",
        "Transcribe",
        transcribe(b"x", preset=99),
        INVALID,
        "unknown preset 99; use PRESET_ACCURATE or PRESET_FAST",
        field="config.preset",
    ),
    Case(
        "negative-task-enum",
        "Transcribe",
        transcribe(b"x", task=-1),
        INVALID,
        "unknown task -1",
        field="config.task",
    ),
    Case(
        "model-not-served",
        "Transcribe",
        transcribe(b"x", model="large-v9"),
        INVALID,
        "model 'large-v9' is not served here (served: base)",
        field="config.model",
    ),
    Case(
        "prompt-too-long-unicode",
        "Transcribe",
        transcribe(b"x", initial_prompt="가" * 1001),
        INVALID,
        "initial_prompt is 1001 characters; the limit is 1000",
        field="config.initial_prompt",
    ),
    Case(
        "hotwords-too-long",
        "Transcribe",
        transcribe(b"x", hotwords="w," * 501),
        INVALID,
        "hotwords is 1002 characters",
        field="config.hotwords",
    ),
    Case(
        "idempotency-key-too-long",
        "CreateJob",
        lambda: pb.CreateJobRequest(audio=audio_pb2.Audio(content=b"x"), idempotency_key="k" * 129),
        INVALID,
        "idempotency_key is 129 characters; the limit is 128",
        field="idempotency_key",
    ),
    # Bad ids, names and page tokens.
    Case(
        "job-name-not-hex",
        "GetJob",
        lambda: pb.GetJobRequest(name="jobs/xyz"),
        INVALID,
        "name must look like 'jobs/<32 lowercase hex characters>'",
        field="name",
    ),
    Case(
        "job-name-empty",
        "GetJob",
        lambda: pb.GetJobRequest(),
        INVALID,
        "name must look like",
        field="name",
    ),
    Case(
        "job-name-uppercase",
        "GetJob",
        lambda: pb.GetJobRequest(name="jobs/" + "A" * 32),
        INVALID,
        "name must look like",
    ),
    Case(
        "job-name-path-traversal",
        "CancelJob",
        lambda: pb.CancelJobRequest(name="jobs/../../etc/passwd"),
        INVALID,
        "got 'jobs/../../etc/passwd'",
    ),
    Case(
        "job-name-unicode",
        "WatchJob",
        lambda: pb.WatchJobRequest(name="jobs/잡🙂"),
        INVALID,
        "name must look like",
    ),
    Case(
        "job-name-huge",
        "GetJob",
        lambda: pb.GetJobRequest(name="jobs/" + "f" * 100_000),
        INVALID,
        "name must look like",
    ),
    Case(
        "job-unknown",
        "GetJob",
        lambda: pb.GetJobRequest(name=UNKNOWN_JOB),
        NOT_FOUND,
        f"job {UNKNOWN_JOB} not found",
    ),
    Case(
        "cancel-unknown-job",
        "CancelJob",
        lambda: pb.CancelJobRequest(name=UNKNOWN_JOB),
        NOT_FOUND,
        "not found",
    ),
    Case(
        "watch-unknown-job",
        "WatchJob",
        lambda: pb.WatchJobRequest(name=UNKNOWN_JOB),
        NOT_FOUND,
        "not found",
    ),
    Case(
        "watch-negative-sequence",
        "WatchJob",
        lambda: pb.WatchJobRequest(name=UNKNOWN_JOB, after_sequence=-1),
        INVALID,
        "after_sequence must be 0",
        field="after_sequence",
    ),
    Case(
        "page-token-garbage",
        "ListJobs",
        lambda: pb.ListJobsRequest(page_token="garbage!"),
        INVALID,
        "page_token is not a token returned by ListJobs",
        field="page_token",
    ),
    Case(
        "page-token-forged",
        "ListJobs",
        lambda: pb.ListJobsRequest(page_token="WzEsICIuLi8uLiJd"),
        INVALID,
        "pass next_page_token unchanged",
    ),
    Case(
        "page-token-huge",
        "ListJobs",
        lambda: pb.ListJobsRequest(page_token="A" * 10_000),
        INVALID,
        "page_token is not a token",
        field="page_token",
    ),
    Case(
        "page-size-negative",
        "ListJobs",
        lambda: pb.ListJobsRequest(page_size=-1),
        INVALID,
        "page_size must be between 0 and 100",
        field="page_size",
    ),
    Case(
        "page-size-too-big",
        "ListJobs",
        lambda: pb.ListJobsRequest(page_size=101),
        INVALID,
        "page_size must be between 0 and 100 (0 = 20); got 101",
    ),
    # Bytes that are not the method's message at all.
    Case(
        "request-with-invalid-utf8",
        "raw:GetJob",
        lambda: b"\x0a\x02\xff\xfe",
        INVALID,
        "the request is not a valid protobuf message for this method",
    ),
    Case(
        "request-wire-garbage",
        "raw:Transcribe",
        lambda: b"\xff\xff\xff\xff",
        INVALID,
        "not a valid protobuf message",
    ),
]
