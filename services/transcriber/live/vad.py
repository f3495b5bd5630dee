"""Incremental Silero VAD: speech probabilities of 32 ms frames as audio arrives.

faster-whisper's SileroVADModel (faster_whisper/vad.py) scores a whole file at once: the audio
is cut into 512-sample windows, each given the 64 samples before it as context, and run through
the ONNX model with the LSTM state (h, c) carried from one batch to the next. Carrying the same
three things (h, c and the last 64 samples) across chunks gives the very same probabilities
(checked against the whole-file run) while each chunk costs only its own frames: a session
keeps them, plus any samples short of a full window. The ONNX file is the one in faster-whisper's
wheel (located by the engine, the only faster_whisper importer); one InferenceSession serves
every session of the process (its `run` is thread-safe).

What the VAD hears is conditioned two ways (the audio decoded is left as it is):
- Level: Silero's state adapts to the loudness it has heard. After loud speech, quiet speech
  (28 dB softer: two people on one call, the shared English clips joined at their own levels)
  scored 0.3-0.6 instead of 0.9 and whole clauses fell between utterances (English WER 42 %
  instead of 7 %). Each frame is scaled so that the speech level of the last second
  (AGC_WINDOW_SECONDS) sits at AGC_TARGET_RMS, scaling up by at most AGC_TARGET_RMS /
  AGC_FLOOR_RMS (+24 dB); pink and white noise at -55 to -30 dBFS and steady tones still gave
  no utterance, and leveled clips the same utterances as before.
- Digital silence (exact zeros: a muted microphone, clips joined with silence) threw Silero's
  LSTM state off: after a few seconds of zeros between sentences, the onset of the next one
  scored 0.2-0.4 instead of 0.6-0.8 and speech was heard a second late. A faint fixed noise
  (DITHER, about -70 dBFS) is added after the scaling.
"""

from __future__ import annotations

import functools

import numpy as np
import onnxruntime

FRAME_SAMPLES = 512  # 32 ms at 16 kHz
CONTEXT_SAMPLES = 64
_STATE_SHAPE = (1, 1, 128)
DITHER = 3e-4  # standard deviation of the noise the VAD hears added (see above)
AGC_TARGET_RMS = 0.05  # -26 dBFS, the level joined test clips are brought to
AGC_FLOOR_RMS = 0.003  # -50 dBFS: quieter than this is not scaled up further
AGC_WINDOW_SECONDS = 1.0
_AGC_FRAMES = round(AGC_WINDOW_SECONDS * 16_000 / FRAME_SAMPLES)


@functools.lru_cache(maxsize=2)
def load_model(path: str) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 4
    return onnxruntime.InferenceSession(
        path, providers=["CPUExecutionProvider"], sess_options=options
    )


class StreamingVad:
    def __init__(self, model: onnxruntime.InferenceSession) -> None:
        self._model = model
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames = 0  # frames scored so far
        self._noise = np.random.default_rng(0)
        self._energies = np.zeros(0, dtype=np.float64)  # the last frames' mean squares (AGC)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities (0..1) of the whole frames `samples` completes."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        whole = len(audio) // FRAME_SAMPLES * FRAME_SAMPLES
        self._pending = audio[whole:]
        if not whole:
            return np.zeros(0, dtype=np.float32)
        frames = self._heard(audio[:whole].reshape(-1, FRAME_SAMPLES))
        previous = np.concatenate([self._context[None, :], frames[:-1, -CONTEXT_SAMPLES:]])
        batch = np.concatenate([previous, frames], axis=1)
        output, self._h, self._c = self._model.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = frames[-1, -CONTEXT_SAMPLES:].copy()
        self.frames += len(frames)
        return np.asarray(output, dtype=np.float32).reshape(-1)

    def _heard(self, frames: np.ndarray) -> np.ndarray:
        """The frames as the VAD hears them: level-scaled, then dithered (see above)."""
        energies = np.concatenate([self._energies, np.mean(frames.astype(np.float64) ** 2, axis=1)])
        sums = np.concatenate([[0.0], np.cumsum(energies)])
        ends = np.arange(len(self._energies) + 1, len(energies) + 1)
        starts = np.maximum(0, ends - _AGC_FRAMES)
        level = np.sqrt((sums[ends] - sums[starts]) / (ends - starts))
        self._energies = energies[-(_AGC_FRAMES - 1) :] if _AGC_FRAMES > 1 else energies[:0]
        gain = AGC_TARGET_RMS / np.maximum(level, AGC_FLOOR_RMS)
        scaled = np.clip(frames * gain[:, None].astype(np.float32), -1.0, 1.0)
        noise = self._noise.normal(0.0, DITHER, frames.shape).astype(np.float32)
        return (scaled + noise).astype(np.float32)
