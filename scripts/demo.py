"""`make run`: one short Korean clip (answered at once) and one long clip (queued, progress
streamed) through the gateway; prints both transcripts. The key is SAYIT_API_KEY, else the one
`make up` wrote to .run/dev-api-key."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import grpc

from devsupport import dev_keys, evalset
from devsupport.settings import DemoSettings
from sayit.common.v1 import audio_pb2, job_pb2, transcription_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.client.credentials import find_api_key

SHORT, LONG = "ko_deeply_sub100111a00054", "en_long_ljspeech_LJ001"
ROOT = Path(__file__).resolve().parent.parent


def _request(clip: evalset.Clip) -> dict[str, object]:
    return {
        "audio": audio_pb2.Audio(content=clip.read(), filename=clip.path.name),
        "config": transcription_pb2.TranscriptionConfig(language_code=clip.language),
    }


def main() -> int:
    settings = DemoSettings.from_env(os.environ)
    key = find_api_key(settings.api_key, {}, ROOT)
    stub = pb_grpc.SpeechServiceStub(
        dev_keys.keyed(grpc.insecure_channel(settings.gateway_addr), key)
    )
    try:
        short = evalset.clip(SHORT)
        started = time.monotonic()
        reply = stub.Transcribe(pb.TranscribeRequest(**_request(short)), timeout=120)  # type: ignore[arg-type]
        print(
            f"[{short.language}] {short.path.name}: {short.duration_seconds:.1f} s audio, "
            f"answered in {time.monotonic() - started:.1f} s ({reply.job_name})"
        )
        print(f"  {reply.transcript.text}\n")

        long = evalset.clip(LONG)
        started = time.monotonic()
        print(f"[{long.language}] {long.path.name}: {long.duration_seconds:.0f} s audio")
        request = pb.TranscribeWithProgressRequest(**_request(long))  # type: ignore[arg-type]
        shown = -1
        for response in stub.TranscribeWithProgress(request, timeout=1800):
            event = response.event
            kind = event.WhichOneof("kind")
            elapsed = time.monotonic() - started
            if kind == "accepted":
                queued = event.accepted.routing == job_pb2.ROUTING_QUEUED
                routing = "queued" if queued else "direct"
                print(f"  {elapsed:5.1f} s  accepted ({routing}) {event.name}")
            elif kind == "progress" and int(event.progress.fraction * 10) > shown:
                p = event.progress
                shown = int(p.fraction * 10)  # one line per tenth of the audio
                print(
                    f"  {elapsed:5.1f} s  {p.fraction:6.1%}  "
                    f"{p.audio_seconds_done:6.1f} / {p.audio_seconds_total:.1f} s of audio"
                )
            elif kind == "completed":
                print(f"  {elapsed:5.1f} s  completed\n  {event.completed.transcript.text}")
            elif kind in ("failed", "cancelled"):
                print(f"  {kind}: {getattr(event, kind)}", file=sys.stderr)
                return 1
    except grpc.RpcError as error:
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
