"""SubmitJobRequest's wire bytes built around the caller's audio bytes, so a large inline file
is copied once on its way to the scheduler.

Building the message would copy the audio into it, and serialising it would copy it again (a
100 MiB request cost the gateway two extra 100 MiB copies that way). Protobuf readers accept
fields in any order, so the small fields are serialised as a message and the Audio field is
appended by hand.
"""

from __future__ import annotations

from sayit.scheduler.v1 import scheduler_service_pb2 as spb

_LENGTH_DELIMITED = 2
_SUBMIT_AUDIO_FIELD = spb.SubmitJobRequest.DESCRIPTOR.fields_by_name["audio"].number
_CONTENT_FIELD = (
    spb.SubmitJobRequest.DESCRIPTOR.fields_by_name["audio"]
    .message_type.fields_by_name["content"]
    .number
)
_FILENAME_FIELD = (
    spb.SubmitJobRequest.DESCRIPTOR.fields_by_name["audio"]
    .message_type.fields_by_name["filename"]
    .number
)


def submit_request_bytes(fields: spb.SubmitJobRequest, content: bytes, filename: str) -> bytes:
    """The wire form of `fields` (a request without audio) with audio {content, filename}."""
    if fields.HasField("audio"):
        raise ValueError("fields must not carry audio: it is appended here")
    name = filename.encode()
    audio = [_key(_CONTENT_FIELD), _varint(len(content)), content]
    if name:
        audio += [_key(_FILENAME_FIELD), _varint(len(name)), name]
    audio_size = sum(len(part) for part in audio)
    head = fields.SerializeToString()
    return b"".join([head, _key(_SUBMIT_AUDIO_FIELD), _varint(audio_size), *audio])


def _key(field: int) -> bytes:
    return _varint(field << 3 | _LENGTH_DELIMITED)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
