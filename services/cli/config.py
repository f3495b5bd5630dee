"""What the `sayit` command reads from the environment (once, in __main__)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.client.client import DEFAULT_ADDR
from services.common.config import Env


@dataclass(frozen=True)
class CliConfig:
    # The gateway: SAYIT_ADDR, else SAYIT_GATEWAY_ADDR (what `make up` listens on), else default.
    addr: str
    api_key: str | None
    ca_file: Path | None


def load_config(environ: Mapping[str, str]) -> CliConfig:
    env = Env(environ)
    return CliConfig(
        addr=env.get_str("SAYIT_ADDR", env.get_str("SAYIT_GATEWAY_ADDR", DEFAULT_ADDR)),
        api_key=env.get_str("SAYIT_API_KEY", "") or None,
        ca_file=env.get_path("SAYIT_CA_FILE", None),
    )
