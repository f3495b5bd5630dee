"""The structured JSON log lines a service writes to stderr, captured for one test."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import pytest

from services.common import logs
from services.common.config import LogConfig


class _CurrentStderr:
    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class LogCapture:
    """The JSON lines logged to stderr during one test."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.lines: list[dict[str, Any]] = []

    def configure(self, level: str) -> None:
        logs.configure("test-service", LogConfig(level=level, format="json"))
        # pytest swaps sys.stderr between the setup and call phases; write to whichever is
        # current so that capsys sees the lines.
        [handler] = logging.getLogger().handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(_CurrentStderr())

    def _read(self) -> None:
        for line in self._capsys.readouterr().err.splitlines():
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def events(self, event: str) -> list[dict[str, Any]]:
        self._read()
        return [line for line in self.lines if line.get("event") == event]

    async def finished(self, count: int = 1) -> list[dict[str, Any]]:
        """The rpc_finished lines, once at least `count` are there (briefly waits)."""
        for _ in range(100):
            lines = self.events("rpc_finished")
            if len(lines) >= count:
                await asyncio.sleep(0.02)  # and no more than that
                return self.events("rpc_finished")
            await asyncio.sleep(0.01)
        return self.events("rpc_finished")
