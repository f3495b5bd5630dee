"""HTTP edge settings (SAYIT_* variables), read once in __main__."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import HostPort, Int, OptionalHostPort
from services.common.shared_settings import ClientTLSSettings, LogSettings

DEFAULT_ADDR = "127.0.0.1:8080"
MiB = 1024 * 1024


class HttpEdgeSettings(LogSettings, ClientTLSSettings):
    used_by = "HTTP edge"

    http_addr: HostPort = Field(DEFAULT_ADDR, description="for the HTTP edge, its listen address")
    gateway_addr: str = Field(
        "127.0.0.1:50051",
        description="for the HTTP edge, the gateway it calls (TLS when `SAYIT_TLS_CA_FILE` is set)",
    )
    http_metrics_addr: OptionalHostPort = Field(
        "",
        description="Prometheus `/metrics` listen address of the HTTP edge (never its public "
        "port); empty = off",
    )
    http_max_body_bytes: Int = Field(
        2 * 1024**3 + MiB,
        ge=1024,
        description="largest request body the HTTP edge reads (multipart overhead included); a "
        "larger `Content-Length` is refused with 413 before any byte is read, and a body that "
        "grows past it is cut off with 413",
    )
    http_inline_bytes: Int = Field(
        16 * MiB,
        ge=0,
        description="files up to this size go to the gateway in one message (`Transcribe`); "
        "larger ones are streamed in chunks (`UploadJob`); keep it under the gateway's "
        "`SAYIT_MAX_REQUEST_BYTES`",
    )
    http_transcription_wait_seconds: float = Field(
        600.0,
        ge=1.0,
        description="how long `POST /v1/audio/transcriptions` waits for a long file's job; "
        "after that it answers 504 naming the job, which goes on (follow it at `/v1/jobs/{id}`)",
    )
    http_max_concurrent_requests: Int = Field(
        512,
        ge=1,
        description="requests the HTTP edge serves at once (open event streams included); "
        "more are refused with 503",
    )
    http_max_open_streams: Int = Field(
        400,
        ge=1,
        description="server-sent event streams the HTTP edge keeps open at once; more are "
        "refused with 429 and `Retry-After`",
    )
    http_heartbeat_seconds: float = Field(
        15.0,
        gt=0.0,
        description="an idle server-sent event stream gets a comment this often, so proxies "
        "keep it open",
    )
    http_spool_dir: str = Field(
        "",
        description="where uploaded files wait while they are read (empty = the system's "
        "temporary directory)",
    )
