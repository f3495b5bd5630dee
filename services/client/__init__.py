"""The Python client for SayIt's public API, and writers for its transcripts.

from services.client import SayItClient

with SayItClient("127.0.0.1:50051", api_key="...") as client:
    transcript = client.transcribe("meeting.flac", language="ko")
    print(transcript.text)
"""

from services.client.client import SayItClient
from services.client.errors import ClientError, JobError
from services.client.formats import FORMATS, render, to_json, to_srt, to_text, to_vtt
from services.client.inputs import make_config
from services.client.retry import RetryPolicy

__all__ = [
    "FORMATS",
    "ClientError",
    "JobError",
    "RetryPolicy",
    "SayItClient",
    "make_config",
    "render",
    "to_json",
    "to_srt",
    "to_text",
    "to_vtt",
]
