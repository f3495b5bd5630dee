"""The Python client for SayIt's public API, and writers for its transcripts.

from services.client import SayItClient

with SayItClient("127.0.0.1:50051", api_key="...") as client:
    transcript = client.transcribe("meeting.flac", language="ko")
    print(transcript.text)

    # Live recognition: a file at real-time pace (or any iterable of raw PCM chunks)
    for result in client.stream_file("call.wav", language="ko").results(interim=False):
        print(result.text)
"""

from services.client.client import SayItClient
from services.client.errors import ClientError, JobError
from services.client.formats import FORMATS, render, to_json, to_srt, to_text, to_vtt
from services.client.inputs import make_config
from services.client.live import (
    LiveResult,
    LiveSession,
    LiveUpdate,
    SessionStarted,
    SpeechEnded,
    SpeechStarted,
)
from services.client.retry import RetryPolicy

__all__ = [
    "FORMATS",
    "ClientError",
    "JobError",
    "LiveResult",
    "LiveSession",
    "LiveUpdate",
    "RetryPolicy",
    "SayItClient",
    "SessionStarted",
    "SpeechEnded",
    "SpeechStarted",
    "make_config",
    "render",
    "to_json",
    "to_srt",
    "to_text",
    "to_vtt",
]
