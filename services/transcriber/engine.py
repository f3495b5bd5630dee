"""The speech engine: faster-whisper on CTranslate2 int8, CPU. The only faster_whisper importer.

One WhisperModel per process, shared by `slots` concurrent calls (CTranslate2 runs that many
decodes in parallel, each on `cpu_threads` threads). Long audio can be decoded batched
(faster-whisper's BatchedInferencePipeline: the VAD's speech regions, up to 30 s each, go
through the model `batch_size` at a time, with no timestamps inside a region), which trades
segment granularity, conditioning on earlier text and accuracy for throughput; see
bench/batched.py and docs/presets.md for what it gains and costs (off by default).
`transcribe` is a blocking generator meant to run in a worker thread; the caller stops it by
simply not asking for the next item and closing it, which ends decoding at the current window.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens
from faster_whisper.utils import get_assets_path
from faster_whisper.vad import VadOptions, get_speech_timestamps

from services.transcriber import regions, skips
from services.transcriber.presets import DecodePreset

SAMPLE_RATE = 16_000


# Whisper's decoder sees at most 448 positions. faster-whisper puts the hotwords (up to 223
# tokens) *and* the previous text (up to 223) before each window, so long hotwords alone can
# push the prompt past 448 and the decode fails ("No position encodings ... >= 448"). Hotwords
# are therefore kept to their first HOTWORDS_TOKENS tokens: the prompt is then at most
# 1 + 64 + 223 + 5 = 293 positions, leaving room to generate.
HOTWORDS_TOKENS = 64
# Generation room that is safe whatever the prompt (448 - 293, with a margin).
SAFE_NEW_TOKENS = 150
# Speech carries at most ~30 tokens a second (fast Korean, byte-level tokens, timestamps).
# For very short audio the generation is capped to that, so a hostile or nonsensical prompt
# cannot make one second of audio decode 6 fallback temperatures x 220 tokens (> 60 s of CPU).
TOKENS_PER_SECOND = 30
TOKENS_MIN = 32


def max_new_tokens(audio_seconds: float) -> int | None:
    """The cap on tokens generated per window, or None (faster-whisper's default)."""
    cap = math.ceil(audio_seconds * TOKENS_PER_SECOND) + TOKENS_MIN
    return cap if cap <= SAFE_NEW_TOKENS else None


# Interim decodes (live sessions) look at the audio so far plus this much of the padding after
# it, instead of Whisper's whole 30 s window: the encoder's cost grows with its input (0.55 s
# for 30 s, 0.1 s for 10 s, 2 threads), and an interim result only has to be good enough to
# show while the speaker goes on; the final decode of an utterance uses the whole window.
INTERIM_PADDING_FRAMES = 100  # 1 s of 10 ms feature frames
WINDOW_FRAMES = 3000
# An interim decode's token cap: about 12 tokens a second covers fast Korean without timestamps,
# and a greedy decode that loops ("그는 1절이 피하면서" x 7 on 2 s of audio) stops early.
INTERIM_TOKENS_PER_SECOND = 15
INTERIM_TOKENS_MIN = 10


def silero_vad_path() -> str:
    """The Silero VAD model (ONNX) that faster-whisper's wheel ships."""
    return os.path.join(get_assets_path(), "silero_vad_v6.onnx")


@dataclass(frozen=True)
class InterimDecode:
    text: str
    language: str
    language_probability: float


@dataclass(frozen=True)
class EngineRequest:
    language: str  # "" = detect
    task: str  # "transcribe" | "translate"
    preset: DecodePreset
    word_timestamps: bool
    vad_filter: bool
    initial_prompt: str | None = None
    hotwords: str | None = None
    # Decode batched when the engine has a batch size (needs the VAD's speech regions).
    batched: bool = False


@dataclass(frozen=True)
class Analysis:
    """What is known before the first segment: language and durations."""

    language: str
    language_probability: float
    duration: float
    duration_after_vad: float


@dataclass(frozen=True)
class DecodedWord:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class DecodedSegment:
    id: int
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    words: tuple[DecodedWord, ...]


class Engine:
    def __init__(
        self, model_path: Path, *, cpu_threads: int, slots: int, batch_size: int = 0
    ) -> None:
        self._model = WhisperModel(
            str(model_path),
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads,
            num_workers=slots,
        )
        self.batch_size = batch_size
        self._batched = BatchedInferencePipeline(self._model) if batch_size > 1 else None

    def fit_hotwords(self, hotwords: str | None) -> str | None:
        """The hotwords cut to their first HOTWORDS_TOKENS tokens (see above)."""
        if not hotwords:
            return None
        tokenizer = self._model.hf_tokenizer
        ids = tokenizer.encode(" " + hotwords.strip(), add_special_tokens=False).ids
        keep = HOTWORDS_TOKENS
        while len(ids) > HOTWORDS_TOKENS and keep > 0:
            # Decoding a cut multi-byte character can re-encode longer: shrink until it fits.
            cut = tokenizer.decode(ids[:keep]).strip()
            if len(tokenizer.encode(" " + cut, add_special_tokens=False).ids) <= HOTWORDS_TOKENS:
                return cut or None
            keep -= 8
        return hotwords if len(ids) <= HOTWORDS_TOKENS else None

    def decode_interim(
        self, audio: np.ndarray, *, language: str = "", task: str = "transcribe"
    ) -> InterimDecode:
        """A quick decode of a short piece (live interim results): greedy, temperature 0 only,
        no timestamps, capped tokens, and the encoder fed only the audio plus
        INTERIM_PADDING_FRAMES (see above). `language` "" = detect on this audio. Blocking."""
        model = self._model
        features = model.feature_extractor(audio[: WINDOW_FRAMES * 160])
        frames = min(WINDOW_FRAMES, features.shape[-1] + INTERIM_PADDING_FRAMES)
        window = np.zeros((features.shape[0], frames), dtype=np.float32)
        used = min(frames, features.shape[-1])
        window[:, :used] = features[:, :used]
        encoded = model.encode(window)
        probability = 1.0
        if not language:
            ranked = model.model.detect_language(encoded)[0]
            token, probability = ranked[0]
            language = token[2:-2]
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task=task, language=language
        )
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        seconds = len(audio) / SAMPLE_RATE
        cap = min(
            SAFE_NEW_TOKENS, math.ceil(seconds * INTERIM_TOKENS_PER_SECOND) + INTERIM_TOKENS_MIN
        )
        result = model.model.generate(
            encoded,
            [prompt],
            beam_size=1,
            max_length=len(prompt) + cap,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        return InterimDecode(tokenizer.decode(tokens).strip(), language, float(probability))

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The language of a short piece (its first 30 s) and its probability. Blocking."""
        language, probability, _ = self._model.detect_language(
            audio=audio, language_detection_segments=1
        )
        return language, float(probability)

    @staticmethod
    def _speech_spans(audio: np.ndarray, preset: DecodePreset) -> list[tuple[float, float]]:
        """The VAD's speech spans, or [] to let faster-whisper's VAD do it."""
        limit = preset.vad_region_max_seconds
        if limit is None:
            return []
        options = VadOptions(**preset.vad_parameters(), max_speech_duration_s=limit)
        return [
            (t["start"] / SAMPLE_RATE, t["end"] / SAMPLE_RATE)
            for t in get_speech_timestamps(audio, options)
        ]

    @staticmethod
    def _regions(
        spans: list[tuple[float, float]], preset: DecodePreset
    ) -> list[tuple[float, float]]:
        """The regions to decode one by one: spans merged up to the preset's limit."""
        if not spans or preset.vad_region_max_seconds is None:
            return []
        merged = regions.merge(spans, preset.vad_region_max_seconds)
        return regions.lead_in(merged, preset.region_lead_seconds)

    def transcribe(
        self, audio: np.ndarray, request: EngineRequest
    ) -> Iterator[Analysis | DecodedSegment]:
        """Yields one Analysis, then segments as they are decoded. Blocking; run in a thread."""
        preset = request.preset
        batched = self._batched is not None and request.batched and request.vad_filter
        common = {
            "language": request.language or None,
            "task": request.task,
            "word_timestamps": request.word_timestamps,
            "initial_prompt": request.initial_prompt or preset.default_prompt or None,
            "hotwords": self.fit_hotwords(request.hotwords),
            "max_new_tokens": max_new_tokens(len(audio) / SAMPLE_RATE),
            **preset.transcribe_kwargs(),
        }
        use_regions = request.vad_filter and not batched
        spans = self._speech_spans(audio, preset) if use_regions else []
        speech = self._regions(spans, preset) if use_regions else None
        if batched:
            # The pipeline's own mode: whole regions, no timestamps inside (see bench.batched).
            assert self._batched is not None
            segments, info = self._batched.transcribe(
                audio,
                vad_filter=True,
                vad_parameters=preset.vad_parameters(),
                batch_size=self.batch_size,
                **common,
            )
        elif speech:
            segments, info = self._model.transcribe(
                audio, clip_timestamps=regions.clip_timestamps(speech), **common
            )
        else:
            # No VAD asked, or the VAD found no speech (faster-whisper then returns nothing).
            segments, info = self._model.transcribe(
                audio,
                vad_filter=request.vad_filter,
                vad_parameters=preset.vad_parameters() if request.vad_filter else None,
                **common,
            )
        yield Analysis(
            language=info.language,
            language_probability=float(info.language_probability),
            duration=float(info.duration),
            duration_after_vad=regions.speech_seconds(speech)
            if speech
            else float(info.duration_after_vad),
        )
        try:
            numbers = itertools.count(1)
            for segment in segments:
                # Whisper can stamp times past the audio its window held; with regions that
                # would overlap the next window (which may start early, see regions.lead_in).
                # `seek` is where the window started, in feature frames (10 ms): a region's
                # start is rounded to one, up to half a frame either way.
                fps = self._model.frames_per_second
                window_end = regions.end_of(speech, (segment.seek + 0.5) / fps) if speech else None
                item = _decoded(segment, next(numbers), 0.0, window_end)
                skipped = (
                    skips.skipped_span(
                        item.start,
                        item.end,
                        item.text,
                        spans,
                        info.language,
                        preset.region_lead_seconds,
                    )
                    if preset.redecode_skipped
                    else None
                )
                found = self._decode_again(audio, skipped, info.language, common) if skipped else []
                found = [s for s in found if not skips.repeats(s.text, item.text)]
                if found:
                    item = _ended_by(item, found[0].start)
                yield item
                for again in found:
                    yield replace(again, id=next(numbers))
        finally:
            # Closing faster-whisper's generator ends decoding at once (no further windows).
            close = getattr(segments, "close", None)
            if close is not None:
                close()

    def _decode_again(
        self, audio: np.ndarray, span: tuple[float, float], language: str, common: dict[str, Any]
    ) -> list[DecodedSegment]:
        """The segments of `span` decoded as a window of its own (see skips.py)."""
        first, last = round(span[0] * SAMPLE_RATE), round(span[1] * SAMPLE_RATE)
        piece = audio[first:last]
        options = {
            **common,
            "language": language,
            "max_new_tokens": max_new_tokens(len(piece) / SAMPLE_RATE),
        }
        segments, _ = self._model.transcribe(piece, vad_filter=False, **options)
        return [_decoded(s, s.id, span[0], span[1]) for s in segments if s.text.strip()]


def _decoded(segment: Any, number: int, offset: float, window_end: float | None) -> DecodedSegment:
    """faster-whisper's segment on the file's clock (`offset` = where its audio began), its times
    no later than the end of the window it was decoded in."""
    start = _at_most(offset + float(segment.start), window_end)
    return DecodedSegment(
        id=number,
        start=start,
        end=max(start, _at_most(offset + float(segment.end), window_end)),
        text=segment.text.strip(),
        avg_logprob=float(segment.avg_logprob),
        no_speech_prob=float(segment.no_speech_prob),
        compression_ratio=float(segment.compression_ratio),
        temperature=float(segment.temperature or 0.0),
        words=tuple(
            DecodedWord(
                _at_most(offset + float(w.start), window_end),
                _at_most(offset + float(w.end), window_end),
                w.word,
                float(w.probability),
            )
            for w in segment.words or ()
        ),
    )


def _ended_by(segment: DecodedSegment, end: float) -> DecodedSegment:
    """The segment cut short at `end` (where speech it skipped begins), words included."""
    end = max(segment.start, min(segment.end, end))
    words = tuple(replace(w, start=min(w.start, end), end=min(w.end, end)) for w in segment.words)
    return replace(segment, end=end, words=words)


def _at_most(seconds: float, limit: float | None) -> float:
    return seconds if limit is None else min(seconds, limit)
