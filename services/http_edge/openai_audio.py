"""OpenAI's audio API: POST /v1/audio/transcriptions and /v1/audio/translations, GET /v1/models."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
