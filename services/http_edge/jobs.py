"""Jobs over HTTP: /v1/jobs and its server-sent events."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
