"""The bad-input corpus, part 1: audio. Odd but valid audio that must transcribe, and audio
that is not audio, is broken or is a bomb."""

from __future__ import annotations

import gzip
import json

import numpy as np

from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from tests.support.bad_input_case import (
    INVALID,
    OK,
    Case,
    bad_audio,
    is_a_transcript,
    lazy,
    must_transcribe,
    queued_long_job,
    says_nothing,
    says_platforms,
    transcribe,
)
from tests.support.bad_input_material import (
    MIB,
    at,
    cheetah,
    half,
    noise_wav,
    noisy_tone,
    random_text,
    wav_with_data_size,
    zip_of_zeros,
)
from tests.support.encode import av_bytes, resample, sf_bytes, silent_flac, video_only

NOT_AUDIO = "not a recognised audio format (supported: WAV, FLAC, OGG/Opus"
TEXT = b"Meeting notes: this is not audio at all.\n" * 50

AUDIO_CASES = [
    # Odd but valid audio: must transcribe.
    must_transcribe("wav-8-bit", lambda: sf_bytes(cheetah(), 16_000, "WAV", "PCM_U8")),
    must_transcribe("wav-24-bit", lambda: sf_bytes(cheetah(), 16_000, "WAV", "PCM_24")),
    must_transcribe("wav-32-bit-float", lambda: sf_bytes(cheetah(), 16_000, "WAV", "FLOAT")),
    must_transcribe("wav-8-khz", lambda: sf_bytes(at(8000), 8000, "WAV", "PCM_16")),
    must_transcribe("wav-48-khz", lambda: sf_bytes(at(48_000), 48_000, "WAV", "PCM_16")),
    must_transcribe(
        "wav-6-channels",
        lambda: sf_bytes(np.repeat(cheetah()[:, None], 6, axis=1), 16_000, "WAV", "PCM_16"),
    ),
    must_transcribe("flac-44-khz", lambda: sf_bytes(at(44_100), 44_100, "FLAC", "PCM_16")),
    must_transcribe("ogg-opus", lambda: sf_bytes(at(48_000), 48_000, "OGG", "OPUS")),
    must_transcribe("mp3", lambda: sf_bytes(cheetah(), 16_000, "MP3", "MPEG_LAYER_III")),
    must_transcribe(
        "m4a-aac-5.1",
        lambda: av_bytes(np.repeat(at(48_000)[:, None], 6, axis=1), 48_000, "mp4", "aac"),
        "talk.m4a",
    ),
    must_transcribe("webm-opus", lambda: av_bytes(at(48_000), 48_000, "webm", "libopus")),
    must_transcribe(
        "video-with-audio-track",
        lambda: av_bytes(at(44_100), 44_100, "mp4", "aac", video=True),
        "meeting.mp4",
    ),
    Case(
        "unicode-prompt-korean-emoji",
        "Transcribe",
        lambda: transcribe(
            sf_bytes(cheetah(), 16_000, "WAV", "PCM_16"),
            "발표 🎤.wav",
            language_code="en",
            initial_prompt="회의록 📝: 플랫폼 one and three — «quotes» ‘curly’ 中文 العربية",
            hotwords="platforms, 🚉, naïve, Ｆｕｌｌｗｉｄｔｈ",
        )(),
        OK,
        check=says_platforms,
    ),
    Case(
        "unicode-prompt-control-and-combining",
        "Transcribe",
        lambda: transcribe(
            sf_bytes(cheetah(), 16_000, "WAV", "PCM_16"),
            language_code="EN-us",
            initial_prompt="zero\u200bwidth, e\u0301, bidi \u202eevil\u202c, tab\tnewline\n",
            hotwords="\U0001f600" * 200,
        )(),
        OK,
        check=says_platforms,
    ),
    # Found by the fuzzer: prompt + hotwords at their character limits overflowed Whisper's 448
    # positions (INTERNAL) and made one second of audio take a minute to decode.
    Case(
        "prompt-and-hotwords-at-the-limit",
        "Transcribe",
        lambda: transcribe(
            sf_bytes(cheetah()[16_000:32_000], 16_000, "WAV", "PCM_16"),
            initial_prompt=random_text(1000, 1),
            hotwords=random_text(1000, 2),
            preset=tpb.PRESET_FAST,  # the overflow does not depend on it; keeps the test quick
        )(),
        OK,
        check=is_a_transcript,
    ),
    Case(
        "pure-silence",
        "Transcribe",
        lambda: transcribe(sf_bytes(np.zeros(5 * 16_000, np.float32), 16_000, "WAV", "PCM_16"))(),
        OK,
        check=says_nothing,
    ),
    Case(
        "ten-minutes-of-noise",
        "Transcribe",
        lazy(lambda: noise_wav(600.0), "noise.wav"),
        OK,
        check=queued_long_job,
    ),
    # Not audio, or broken audio.
    bad_audio(
        "random-bytes",
        lambda: np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes(),
        NOT_AUDIO,
    ),
    Case(
        "empty-content",
        "Transcribe",
        transcribe(b""),
        INVALID,
        "audio.content is empty",
        field="audio.content",
    ),
    Case(
        "no-audio-message",
        "Transcribe",
        lambda: pb.TranscribeRequest(),
        INVALID,
        "audio.content is empty",
    ),
    bad_audio(
        "wav-header-without-samples",
        lambda: sf_bytes(np.zeros((0, 1), np.float32), 16_000, "WAV", "PCM_16"),
        "audio contains no samples",
    ),
    bad_audio(
        "wav-header-lies-about-length",
        lambda: wav_with_data_size(3 * 32_000, 32_000),
        "audio is truncated: the header declares 3 s but only 1 s could be decoded",
    ),
    bad_audio(
        "wav-header-only",
        lambda: sf_bytes(noisy_tone(), 44_100, "WAV", "PCM_16")[:44],
        "audio is truncated: the header declares 4 s but only 0 s could be decoded",
    ),
    bad_audio(
        "truncated-mp3",
        lambda: half(av_bytes(noisy_tone(), 44_100, "mp3", "libmp3lame")),
        "audio is truncated: the header declares 4",
    ),
    bad_audio(
        "mp3-first-300-bytes",
        lambda: av_bytes(noisy_tone(), 44_100, "mp3", "libmp3lame")[:300],
        "the data looks like MP3 but is damaged or truncated",
    ),
    bad_audio(
        "truncated-flac",
        lambda: half(sf_bytes(noisy_tone(), 44_100, "FLAC", "PCM_16")),
        "audio is truncated: the header declares 4",
    ),
    bad_audio(
        "flac-first-300-bytes",
        lambda: sf_bytes(noisy_tone(), 44_100, "FLAC", "PCM_16")[:300],
        "audio is truncated: the header declares 4 s but only 0 s could be decoded",
    ),
    bad_audio(
        "truncated-ogg-vorbis",
        lambda: sf_bytes(noisy_tone(), 44_100, "OGG", "VORBIS")[:300],
        "the data looks like OGG but is damaged or truncated",
    ),
    bad_audio(
        "truncated-ogg-opus",
        lambda: sf_bytes(resample(noisy_tone(4.0, 16_000), 48_000), 48_000, "OGG", "OPUS")[:300],
        "the data looks like OGG but is damaged or truncated",
    ),
    bad_audio(
        "truncated-m4a",
        lambda: half(av_bytes(noisy_tone(), 44_100, "mp4", "aac")),
        "the data looks like MP4/M4A but is damaged or truncated",
    ),
    bad_audio(
        "mp4-without-audio-stream",
        lambda: video_only("mp4", "mpeg4"),
        "could not decode audio 'clip.mp4': the mp4 file has no audio stream",
        "clip.mp4",
    ),
    bad_audio(
        "webm-without-audio-stream",
        lambda: video_only("webm", "libvpx"),
        "the webm file has no audio stream",
    ),
    bad_audio(
        "text-renamed-wav",
        lambda: TEXT,
        f"could not decode audio 'notes.wav': {NOT_AUDIO}",
        "notes.wav",
    ),
    bad_audio(
        "json-renamed-mp3",
        lambda: json.dumps({"audio": "base64?" * 100}).encode(),
        NOT_AUDIO,
        "speech.mp3",
    ),
    bad_audio(
        "gzip-bomb-renamed-wav",
        lambda: gzip.compress(bytes(50 * MIB)),
        "could not decode audio 'x.wav'",
        "x.wav",
    ),
    bad_audio("zip-bomb", zip_of_zeros, "could not decode audio", "audio.zip"),
    bad_audio(
        "flac-bomb-5-hours-of-silence",
        lambda: silent_flac(5 * 3600),
        "audio is 18000 s long; the limit is 14400 s (4 h)",
    ),
    bad_audio(
        "wav-header-declares-5-hours",
        lambda: wav_with_data_size(5 * 3600 * 32_000, 32_000),
        "audio is truncated: the header declares 18000 s but only 1 s",
    ),
]
