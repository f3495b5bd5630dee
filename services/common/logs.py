"""Structured logging: structlog, JSON when stderr is not a terminal.

Request and job ids live in contextvars (one context per RPC task), so every line logged while
handling a call carries them without passing them around. Standard-library loggers (rq, grpc)
go through the same renderer.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from services.common.config import LogConfig

get_logger = structlog.get_logger
bind = structlog.contextvars.bind_contextvars
unbind = structlog.contextvars.unbind_contextvars
current = structlog.contextvars.get_contextvars


def configure(service: str, config: LogConfig) -> None:
    use_json = config.format == "json" or (config.format == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.level.upper())


def _add_service(service: str) -> Any:
    def processor(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("service", service)
        return event

    return processor
