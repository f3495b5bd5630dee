"""Live recognition (`StreamingRecognize`) through the gateway of a bench mesh, audio sent at
real-time pace in 100 ms chunks by the Python client (`SayItClient.stream`), as a microphone
would: each chunk when the audio it ends with would have been recorded.

Inputs are "conversations": shared eval clips at one loudness (devsupport.audio's level), each
followed by silence, so where speech ends is known: the last 10 ms frame of a clip louder than
5% of its loudest frame. Figures:
- endpoint latency: from sending the chunk that holds a clip's speech end to receiving the final
  result that closes it (the final of that clip's stretch of audio starting last); median and p95
  over every clip of the single-session runs (goals <= 1.2 s and <= 2 s);
- interim lag: at each interim result, seconds of audio sent so far minus the interim's
  `end_seconds`; the median (goal <= 1.5 s);
- final-text accuracy: each language's pooled error rate (Korean CER, English WER;
  devsupport.scoring, as `make eval`) of the finals, minus that of `Transcribe` of the same
  clips through the same gateway, in points (goal <= 1.5);
- concurrent sessions: 1, 2, 4, ... sessions at once (starts staggered), the median endpoint
  latency at each; `sustained_sessions` is the most sessions whose median stayed <= 2 s with
  no session failing (the issue's goal: 4 within 2 s on this machine);
- a long session (30 min; SAYIT_BENCH_STREAM_LONG_MINUTES, or 20 s in --quick): the direct
  transcriber's VmRSS sampled every 2 s and the endpoint latencies, over the first and the last
  window (5 min, or a third of a shorter session): last ÷ first of their medians (goal: within
  10%).

One mesh: a direct transcriber of 1 file slot x `threads()` threads with enough live-session
places for the largest level, no queue transcriber, the result cache off. `Transcribe` of the
clips (the accuracy baseline) and one untimed live session come first: a fresh process's first
final decode took 2.6 s where the next took 0.4 s.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from bench import bench_mesh, procmem, raw_engine, report
from bench.figures import Figure, median
from bench.report import ratio
from devsupport import evalset, scoring
from devsupport.audio import TARGET_RMS
from devsupport.mesh import Mesh
from devsupport.settings import BenchSettings
from services.client import LiveResult, SayItClient
from services.client.live import chunk_bytes, paced
from services.common.audio import SAMPLE_RATE, decode

SECTION = "streaming"
LONG_MINUTES_VAR = "SAYIT_BENCH_STREAM_LONG_MINUTES"
LONG_MINUTES, QUICK_LONG_SECONDS = 30.0, 20.0
WINDOW_SECONDS = 300.0  # the long session's first and last 5 minutes
CHUNK_SECONDS = 0.1
BYTES_PER_SECOND = SAMPLE_RATE * 2
GAP_SECONDS = 2.5  # silence after each clip: more than an endpoint and its final take
LEAD_SECONDS = 0.5  # silence before the first clip
LEVELS, QUICK_LEVELS = (1, 2, 4, 6, 8), (1, 2)
SUSTAINED_SECONDS = 2.0  # the goal for the median with 4 sessions
QUICK_CLIPS = {"ko": ("ko_deeply_sub100102a00085",), "en": ("en_fleurs_004",)}
# The long session and the concurrency levels: short Korean clips, one after another.
LOAD_CLIPS_SECONDS = 45.0
RSS_EVERY = 2.0
SPEECH_FRAME = SAMPLE_RATE // 100  # 10 ms


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    clip: evalset.Clip
    start: float  # where the clip begins in the conversation (s)
    speech_end: float  # where its speech ends (s)
    end: float  # where its audio ends, before the gap (s)


@dataclass(frozen=True)
class Conversation:
    language: str
    pcm: bytes  # 16 kHz mono LINEAR16
    placed: tuple[Placed, ...]

    @property
    def seconds(self) -> float:
        return len(self.pcm) / BYTES_PER_SECOND


def speech_end(samples: np.ndarray) -> float:
    """Seconds into `samples` where speech ends: the end of the last 10 ms frame louder than 5%
    of the loudest frame (the clips' own trailing quiet is not speech)."""
    frames = len(samples) // SPEECH_FRAME
    if frames == 0:
        return len(samples) / SAMPLE_RATE
    rms = np.sqrt(np.mean(samples[: frames * SPEECH_FRAME].reshape(frames, -1) ** 2, axis=1))
    loud = np.flatnonzero(rms > 0.05 * rms.max())
    last = int(loud[-1]) + 1 if len(loud) else frames
    return last * SPEECH_FRAME / SAMPLE_RATE


_decoded: dict[str, np.ndarray] = {}


def _levelled(clip: evalset.Clip) -> np.ndarray:
    if clip.id not in _decoded:
        samples = decode(clip.read(), clip.path.name)
        rms = float(np.sqrt(np.mean(samples**2))) or 1.0
        _decoded[clip.id] = np.clip(samples * (TARGET_RMS / rms), -1.0, 1.0)
    return _decoded[clip.id]


def conversation(clips: Sequence[evalset.Clip], gap_seconds: float = GAP_SECONDS) -> Conversation:
    """The clips one after another, each followed by `gap_seconds` of silence."""
    pieces = [np.zeros(int(LEAD_SECONDS * SAMPLE_RATE), dtype=np.float32)]
    at = LEAD_SECONDS
    placed = []
    gap = np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=np.float32)
    for clip in clips:
        samples = _levelled(clip)
        seconds = len(samples) / SAMPLE_RATE
        placed.append(Placed(clip, at, at + speech_end(samples), at + seconds))
        pieces += [samples, gap]
        at += seconds + gap_seconds
    pcm = np.rint(np.concatenate(pieces) * 32767.0).astype("<i2").tobytes()
    return Conversation(clips[0].language, pcm, tuple(placed))


def clips_for(seconds: float, language: str = "ko") -> list[evalset.Clip]:
    """Short clips of `language`, cycling, until their audio and gaps make `seconds`."""
    source = sorted(
        evalset.clips(language, max_seconds=12.0), key=lambda c: (c.duration_seconds, c.id)
    )
    chosen: list[evalset.Clip] = []
    total = LEAD_SECONDS
    while total < seconds:
        clip = source[len(chosen) % len(source)]
        chosen.append(clip)
        total += clip.duration_seconds + GAP_SECONDS
    return chosen


# --- one session ----------------------------------------------------------------------------------


@dataclass
class SessionLog:
    """What one session sent and received, on the monotonic clock."""

    conversation: Conversation
    sent: list[tuple[float, float]] = field(default_factory=list)  # (time, audio s sent so far)
    results: list[tuple[float, LiveResult]] = field(default_factory=list)
    started: float = 0.0
    job_name: str = ""
    error: str = ""

    def sent_by(self, moment: float) -> float:
        """Seconds of audio sent at `moment`."""
        done = 0.0
        for at, seconds in self.sent:
            if at > moment:
                break
            done = seconds
        return done

    def sent_at(self, seconds: float) -> float | None:
        """When the chunk holding audio second `seconds` was sent."""
        for at, done in self.sent:
            if done >= seconds - 1e-9:
                return at
        return None

    def finals(self) -> list[tuple[float, LiveResult]]:
        return [(t, r) for t, r in self.results if r.is_final]

    def finals_of(self, i: int) -> list[tuple[float, LiveResult]]:
        """The finals of clip i's stretch: starting after the previous clip's audio ended and
        before this clip's speech ended (its gap is silence)."""
        placed = self.conversation.placed
        since = placed[i - 1].end if i else 0.0
        return [(t, r) for t, r in self.finals() if since <= r.start_seconds < placed[i].speech_end]

    def endpoint_latencies(self) -> list[tuple[float, float]]:
        """(speech end in the conversation, seconds from sending it to its closing final) for
        every clip that got a final."""
        found = []
        for i, placed in enumerate(self.conversation.placed):
            finals = self.finals_of(i)
            sent = self.sent_at(placed.speech_end)
            if not finals or sent is None:
                continue
            received, _ = max(finals, key=lambda f: f[1].start_seconds)
            found.append((placed.speech_end, received - sent))
        return found

    def interim_lags(self) -> list[float]:
        return [self.sent_by(t) - r.end_seconds for t, r in self.results if not r.is_final]

    def text_of(self, i: int) -> str:
        return " ".join(r.text.strip() for _, r in self.finals_of(i) if r.text.strip())


def run_session(mesh: Mesh, conversation: Conversation, log: SessionLog) -> None:
    """Send the conversation at real-time pace and record what comes back (errors in
    `log.error`: one failed session must not stop the others)."""

    def chunks() -> Iterator[bytes]:
        size = chunk_bytes(SAMPLE_RATE, seconds=CHUNK_SECONDS)
        pieces = (conversation.pcm[i : i + size] for i in range(0, len(conversation.pcm), size))
        done = 0
        for piece in paced(pieces, BYTES_PER_SECOND):
            done += len(piece)
            log.sent.append((time.monotonic(), done / BYTES_PER_SECOND))
            yield piece

    try:
        with SayItClient(mesh.gateway_addr, api_key=mesh.api_key or "") as client:
            log.started = time.monotonic()
            session = client.stream(chunks(), language=conversation.language, interim_results=True)
            for result in session.results():
                log.results.append((time.monotonic(), result))
            log.job_name = session.job_name
    except Exception as error:  # recorded; the figures say how many sessions failed
        log.error = f"{type(error).__name__}: {error}"


def run_sessions(
    mesh: Mesh, conversations: Sequence[Conversation], stagger_seconds: float = 0.0
) -> list[SessionLog]:
    """The conversations as sessions at once, the n-th starting n x `stagger_seconds` late."""
    logs = [SessionLog(c) for c in conversations]

    def one(n: int) -> None:
        time.sleep(n * stagger_seconds)
        run_session(mesh, conversations[n], logs[n])

    with ThreadPoolExecutor(len(conversations)) as pool:
        list(pool.map(one, range(len(conversations))))
    return logs


# --- figures --------------------------------------------------------------------------------------


def p95(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=20, method="inclusive")[-1])


def _median(values: Sequence[float]) -> float:
    return median(values) if values else math.nan


def _rounded(values: Sequence[float], digits: int = 3) -> tuple[float, ...]:
    return tuple(round(v, digits) for v in values)


def long_minutes(quick: bool) -> float:
    setting = BenchSettings.from_env(os.environ).bench_stream_long_minutes
    if setting:
        return setting
    return QUICK_LONG_SECONDS / 60 if quick else LONG_MINUTES


def run_long(mesh: Mesh, seconds: float) -> tuple[SessionLog, list[tuple[float, float]]]:
    """One session of `seconds` of Korean clips, the direct transcriber's VmRSS (MiB) sampled
    every RSS_EVERY s: (time since the session started, MiB)."""
    conversation_ = conversation(clips_for(seconds))
    pid = mesh.processes["transcriber-direct"].pid
    log = SessionLog(conversation_)
    samples: list[tuple[float, float]] = []
    work = threading.Thread(target=run_session, args=(mesh, conversation_, log))
    started = time.monotonic()
    work.start()
    while work.is_alive():
        samples.append((time.monotonic() - started, procmem.read(pid).rss_mib))
        work.join(RSS_EVERY)
    return log, samples


def window_change(
    points: Sequence[tuple[float, float]], total: float, window: float
) -> tuple[float, float, float]:
    """(median over the last `window` ÷ median over the first, first median, last median) of
    (time, value) points spread over `total` seconds."""
    first = [v for t, v in points if t <= window]
    last = [v for t, v in points if t >= total - window]
    if not first or not last:
        return math.nan, math.nan, math.nan
    return ratio(median(last), median(first)), median(first), median(last)


def run(quick: bool) -> list[Figure]:
    threads = raw_engine.threads()
    levels = QUICK_LEVELS if quick else LEVELS
    if quick:
        single = [conversation([evalset.clip(i) for i in ids]) for ids in QUICK_CLIPS.values()]
    else:
        single = [conversation(evalset.clips(lang, max_seconds=12.0)) for lang in ("ko", "en")]
    load = single if quick else [conversation(clips_for(LOAD_CLIPS_SECONDS))]
    long_seconds = long_minutes(quick) * 60
    places = str(max(levels))
    env = {"SAYIT_STREAM_SESSIONS": places, "SAYIT_TRANSCRIBER_STREAM_SESSIONS": places}
    with (
        bench_mesh.running(
            direct_slots=1, direct_threads=threads, queue_transcribers=0, env=env
        ) as mesh,
        SayItClient(mesh.gateway_addr, api_key=mesh.api_key or "") as client,
    ):
        # Transcribe first: it warms the engine up, and is the accuracy baseline.
        scored_files = accuracy_baseline(client, single)
        # The first live session of a process pays for cold paths (VAD, interim decoding):
        # one untimed, as fast as flow control allows.
        warm_up(client, single[0])
        # One session at a time: latency, interim lag, accuracy.
        alone = [run_sessions(mesh, [c])[0] for c in single]
        by_level: dict[int, list[SessionLog]] = {1: alone}
        for level in levels[1:]:
            conversations = [load[n % len(load)] for n in range(level)]
            by_level[level] = run_sessions(mesh, conversations, stagger_seconds=0.7)
            failed = [log for log in by_level[level] if log.error]
            level_median = _median(
                [s for log in by_level[level] for _, s in log.endpoint_latencies()]
            )
            if failed or not level_median <= 3 * SUSTAINED_SECONDS:
                break  # far past real time: more sessions only take longer to say so
        long_log, rss = run_long(mesh, long_seconds)
    return figures(threads, alone, scored_files, by_level, long_log, rss, long_seconds)


def warm_up(client: SayItClient, conversation_: Conversation) -> None:
    size = chunk_bytes(SAMPLE_RATE, seconds=CHUNK_SECONDS)
    pcm = conversation_.pcm
    chunks = (pcm[i : i + size] for i in range(0, len(pcm), size))
    for _ in client.stream(chunks, language=conversation_.language):
        pass


def accuracy_baseline(
    client: SayItClient, conversations: Sequence[Conversation]
) -> dict[str, scoring.Score]:
    """Pooled score of `Transcribe` of each conversation's clips, per language."""
    files: dict[str, list[scoring.Score]] = {}
    for conversation_ in conversations:
        for placed in conversation_.placed:
            clip = placed.clip
            text = client.transcribe(clip.path, language=clip.language).text
            files.setdefault(clip.language, []).append(
                scoring.score(clip.reference, text, clip.language)
            )
    return {lang: scoring.pooled(scores) for lang, scores in files.items()}


def live_scores(logs: Sequence[SessionLog]) -> dict[str, scoring.Score]:
    live: dict[str, list[scoring.Score]] = {}
    for log in logs:
        for i, placed in enumerate(log.conversation.placed):
            clip = placed.clip
            live.setdefault(clip.language, []).append(
                scoring.score(clip.reference, log.text_of(i), clip.language)
            )
    return {lang: scoring.pooled(scores) for lang, scores in live.items()}


def figures(
    threads: int,
    alone: list[SessionLog],
    files: dict[str, scoring.Score],
    by_level: dict[int, list[SessionLog]],
    long_log: SessionLog,
    rss: list[tuple[float, float]],
    long_seconds: float,
) -> list[Figure]:
    for log in [*alone, long_log]:
        if log.error:
            raise RuntimeError(f"a single live session failed: {log.error}")
    latencies = [s for log in alone for _, s in log.endpoint_latencies()]
    clips = sum(len(log.conversation.placed) for log in alone)
    lags = [lag for log in alone for lag in log.interim_lags()]
    setup = f"1 slot x {threads} threads, 100 ms chunks at real-time pace through the gateway"
    out = [
        Figure(
            SECTION,
            "endpoint_latency_median_s",
            round(_median(latencies), 3),
            "s",
            goal="<= 1.2",
            samples=_rounded(latencies),
            note=f"last chunk of speech sent -> final received, one session at a time; "
            f"{len(latencies)} of {clips} clips closed by a final; {setup}",
        ),
        Figure(
            SECTION,
            "endpoint_latency_p95_s",
            round(p95(latencies), 3),
            "s",
            goal="<= 2",
            note=f"95th percentile of the same {len(latencies)} latencies",
        ),
        Figure(
            SECTION,
            "interim_lag_median_s",
            round(_median(lags), 3),
            "s",
            goal="<= 1.5",
            samples=_rounded(lags[:: max(1, len(lags) // 40)]),
            note=f"audio sent minus the latest interim's end_seconds, at each of {len(lags)} "
            "interim results (samples: every n-th)",
        ),
    ]
    live = live_scores(alone)
    for language, unit in (("ko", "CER"), ("en", "WER")):
        if language not in live:
            continue
        change = (live[language].rate - files[language].rate) * 100
        out.append(
            Figure(
                SECTION,
                f"final_error_change_{language}",
                round(change, 2),
                "points",
                goal="<= 1.5",
                note=f"{unit} of the finals {live[language].rate:.2%} minus Transcribe of the "
                f"same clips {files[language].rate:.2%} "
                f"({live[language].reference_units} reference units)",
            )
        )
    sustained = previous = 0
    for level, logs in sorted(by_level.items()):
        values = [s for log in logs for _, s in log.endpoint_latencies()]
        failed = [log.error for log in logs if log.error]
        level_median = _median(values)
        # Sustained: every level up to this one kept its median within the goal.
        if not failed and level_median <= SUSTAINED_SECONDS and sustained == previous:
            sustained = level
        previous = level
        out.append(
            Figure(
                SECTION,
                f"concurrent_{level}_endpoint_median_s",
                round(level_median, 3) if values else math.nan,
                "s",
                goal="<= 2" if level == 4 else "",
                samples=_rounded(values),
                note=f"{level} session(s) at once ({len(values)} endpoints"
                + (f"; {len(failed)} failed: {failed[0]}" if failed else "")
                + ")",
            )
        )
    out.append(
        Figure(
            SECTION,
            "sustained_sessions",
            sustained,
            "sessions",
            goal=">= 4",
            note=f"most concurrent real-time sessions (of {', '.join(map(str, by_level))} "
            f"tried) with a median endpoint latency <= {SUSTAINED_SECONDS:g} s, none failing; "
            f"{setup}",
        )
    )
    window = min(WINDOW_SECONDS, long_seconds / 3)
    grew, rss_first, rss_last = window_change(rss, long_seconds, window)
    long_latencies = long_log.endpoint_latencies()
    slower, lat_first, lat_last = window_change(long_latencies, long_seconds, window)
    span = f"{long_seconds / 60:.1f} min session of Korean clips, first vs last {window:.0f} s"
    out += [
        Figure(
            SECTION,
            "long_session_rss_growth",
            round(grew, 3),
            "ratio",
            baseline="median VmRSS of the direct transcriber over the session's first window",
            goal="<= 1.10",
            samples=_rounded([v for _, v in rss][:: max(1, len(rss) // 40)], 1),
            note=f"{span}: {rss_first:.0f} -> {rss_last:.0f} MiB ({len(rss)} samples every "
            f"{RSS_EVERY:g} s; samples: every n-th, MiB)",
        ),
        Figure(
            SECTION,
            "long_session_latency_change",
            round(slower, 3),
            "ratio",
            baseline="median endpoint latency over the session's first window",
            goal="<= 1.10",
            samples=_rounded([s for _, s in long_latencies]),
            note=f"{span}: {lat_first:.3f} -> {lat_last:.3f} s median endpoint latency "
            f"({len(long_latencies)} endpoints)",
        ),
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.streaming", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="short sessions, 1-2 at once")
    args = parser.parse_args(argv)
    print(report.table(run(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
