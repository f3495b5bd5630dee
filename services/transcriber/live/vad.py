"""Incremental Silero VAD: speech probabilities of 32 ms frames as audio arrives.

faster-whisper's SileroVADModel (faster_whisper/vad.py) scores a whole file at once: the audio
is cut into 512-sample windows, each given the 64 samples before it as context, and run through
the ONNX model with the LSTM state (h, c) carried from one batch to the next. Carrying the same
three things (h, c and the last 64 samples) across chunks gives the very same probabilities
(checked against the whole-file run) while each chunk costs only its own frames: a session
keeps them, plus any samples short of a full window. The ONNX file is the one in faster-whisper's
wheel (located by the engine, the only faster_whisper importer); one InferenceSession serves
every session of the process (its `run` is thread-safe).

Digital silence (exact zeros: a muted microphone, clips joined with silence) throws Silero's
LSTM state off: after a few seconds of zeros between sentences, the onset of the next one
scored 0.2-0.4 instead of 0.6-0.8 and speech was heard a second late (and its first words lost).
The VAD therefore hears the audio with a faint fixed noise added (DITHER, about -70 dBFS, far
below any recording's own noise floor); the audio decoded is left as it is.
"""

from __future__ import annotations

import functools

import numpy as np
import onnxruntime

FRAME_SAMPLES = 512  # 32 ms at 16 kHz
CONTEXT_SAMPLES = 64
_STATE_SHAPE = (1, 1, 128)
DITHER = 3e-4  # standard deviation of the noise the VAD hears added (see above)


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

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities (0..1) of the whole frames `samples` completes."""
        heard = samples.astype(np.float32) + self._noise.normal(0.0, DITHER, len(samples)).astype(
            np.float32
        )
        audio = np.concatenate([self._pending, heard])
        whole = len(audio) // FRAME_SAMPLES * FRAME_SAMPLES
        self._pending = audio[whole:]
        if not whole:
            return np.zeros(0, dtype=np.float32)
        frames = audio[:whole].reshape(-1, FRAME_SAMPLES)
        previous = np.concatenate([self._context[None, :], frames[:-1, -CONTEXT_SAMPLES:]])
        batch = np.concatenate([previous, frames], axis=1)
        output, self._h, self._c = self._model.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = frames[-1, -CONTEXT_SAMPLES:].copy()
        self.frames += len(frames)
        return np.asarray(output, dtype=np.float32).reshape(-1)
