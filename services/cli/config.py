"""What the `sayit` command reads from the environment (once, in __main__)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from services.client.client import DEFAULT_ADDR
from services.client.uploads import DEFAULT_UPLOAD_THRESHOLD_BYTES
from services.common.settings import ExpandedPath, Int, Settings, doc


@dataclass(frozen=True)
class CliConfig:
    # The gateway: SAYIT_ADDR, else SAYIT_GATEWAY_ADDR (what `make up` listens on), else default.
    addr: str
    api_key: str | None
    ca_file: Path | None
    # Files over this many bytes are streamed (UploadJob) rather than sent in one message.
    upload_threshold_bytes: int = DEFAULT_UPLOAD_THRESHOLD_BYTES


class CliSettings(Settings):
    used_by = "`sayit` CLI"

    addr: str | None = Field(
        None,
        description="the gateway to call (`--addr`)",
        json_schema_extra=doc("`SAYIT_GATEWAY_ADDR`"),
    )
    gateway_addr: str = Field(
        DEFAULT_ADDR, description="for the `sayit` CLI, the gateway when `SAYIT_ADDR` is unset"
    )
    api_key: str | None = Field(
        None,
        repr=False,  # never in a log line or traceback
        description="API key sent as `authorization: Bearer <key>` (the CLI's `--api-key`); "
        "unset = `./.run/dev-api-key` when there is one (the key `make up` made)",
    )
    ca_file: ExpandedPath | None = Field(
        None,
        description="CA certificate (PEM) to verify the gateway's TLS certificate; implies TLS "
        "(`--ca-file`)",
    )

    upload_threshold_bytes: Int = Field(
        DEFAULT_UPLOAD_THRESHOLD_BYTES,
        ge=0,
        description="for the `sayit` CLI, files over this many bytes are streamed in chunks "
        "(`UploadJob`) rather than sent in one message",
    )

    def config(self) -> CliConfig:
        return CliConfig(
            addr=self.addr or self.gateway_addr,
            api_key=self.api_key,
            ca_file=self.ca_file,
            upload_threshold_bytes=self.upload_threshold_bytes,
        )


def load_config(environ: Mapping[str, str]) -> CliConfig:
    return CliSettings.from_env(environ).config()
