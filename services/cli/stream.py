"""`sayit stream FILE|-`: live recognition from a file or raw PCM on standard input.

    sayit stream call.flac --realtime --language ko
    ffmpeg -loglevel error -i talk.mp3 -f s16le -ac 1 -ar 16000 - | sayit stream -
    arecord -q -f S16_LE -r 16000 -c 1 | sayit stream - --language en

A FILE (any format SayIt reads) is decoded here to 16 kHz mono LINEAR16 and sent in 100 ms
chunks: at real-time pace with --realtime, else as fast as the service's flow control allows.
"-" sends standard input as it is (--sample-rate, --encoding, --channels describe it).

On a terminal the utterance in progress is shown in place (its interim text on one line,
rewritten) and each final result is printed on a line of its own as it settles; when standard
output is not a terminal only final results are printed, one a line. The job's name goes to
standard error first, so another caller can follow the session (`sayit jobs watch`) or fetch its
transcript afterwards (`sayit jobs get NAME --format srt`).

Ctrl-C stops sending: the service finishes the last utterance and ends the session; a second
Ctrl-C cancels it (exit 130).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

from rich.cells import get_character_cell_size
from rich.console import Console

from services.client import ClientError, LiveResult, SayItClient, SessionStarted
from services.client.live import (
    CHUNK_SECONDS,
    chunk_bytes,
    decode_to_pcm,
    file_chunks,
    paced,
    read_chunks,
    until,
)
from services.common.errors import SayItError

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
STDIN = "-"
CLEAR_LINE = "\r\x1b[K"  # back to the line's start, then erase it


@dataclass(frozen=True)
class StreamRequest:
    source: str  # a file path, or "-" for raw PCM on standard input
    realtime: bool = False
    sample_rate: int = 16_000
    encoding: str = "linear16"
    channels: int = 1
    chunk_seconds: float = CHUNK_SECONDS
    timestamps: bool = False
    # `SayItClient.stream`'s options: interim_results, silence_seconds, language, preset, ...
    options: dict[str, Any] = field(default_factory=dict)


def tail(text: str, cells: int) -> str:
    """The end of `text` that fits in `cells` terminal cells (Korean takes two a character), so
    a long interim line never wraps (a carriage return only rewrites the last line)."""
    if cells <= 0:
        return ""
    used, start = 0, len(text)
    while start > 0:
        size = get_character_cell_size(text[start - 1])
        if used + size > cells:
            break
        used += size
        start -= 1
    return text[start:] if start == 0 else "…" + text[start + 1 :]


def clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


class LivePrinter:
    """Writes a session's results. Interactive: the current interim text on one line that is
    rewritten in place, each final result replacing it as a line of its own. Otherwise: final
    results only."""

    def __init__(
        self,
        out: TextIO,
        *,
        interactive: bool,
        timestamps: bool = False,
        width: Callable[[], int] = lambda: shutil.get_terminal_size().columns,
    ) -> None:
        self.out = out
        self.interactive = interactive
        self.timestamps = timestamps
        self.width = width
        self._pending = False  # an interim line is on screen

    def _line(self, result: LiveResult) -> str:
        text = result.text.strip()
        if self.timestamps:
            return f"[{clock(result.start_seconds)} → {clock(result.end_seconds)}] {text}"
        return text

    def result(self, result: LiveResult) -> None:
        if result.is_final:
            self._final(result)
        elif self.interactive:
            self._interim(result)

    def _interim(self, result: LiveResult) -> None:
        # One cell short of the width: writing into the last column wraps on some terminals.
        self.out.write(CLEAR_LINE + tail(self._line(result), self.width() - 1))
        self.out.flush()
        self._pending = True

    def _final(self, result: LiveResult) -> None:
        if self._pending:
            self.out.write(CLEAR_LINE)
            self._pending = False
        if result.text.strip():
            self.out.write(self._line(result) + "\n")
        self.out.flush()

    def close(self) -> None:
        """Clear an interim line left on screen (the session ended without its final)."""
        if self._pending:
            self.out.write(CLEAR_LINE)
            self.out.flush()
            self._pending = False


def audio_chunks(
    request: StreamRequest, stdin: IO[bytes], stop: threading.Event
) -> Iterator[bytes]:
    """What the session sends: the file decoded (here, before any call, so an undecodable file
    fails at once) or standard input as it comes; paced when --realtime."""
    if request.source != STDIN:
        return file_chunks(
            request.source,
            realtime=request.realtime,
            chunk_seconds=request.chunk_seconds,
            stop=stop,
        )
    size = chunk_bytes(
        request.sample_rate,
        channels=request.channels,
        encoding=request.encoding,
        seconds=request.chunk_seconds,
    )
    chunks = read_chunks(stdin, size)
    if request.realtime:
        return paced(chunks, size / request.chunk_seconds, stop=stop)
    return until(chunks, stop)


def stream(
    client: SayItClient,
    request: StreamRequest,
    console: Console,
    out: TextIO,
    *,
    interactive: bool,
    stdin: IO[bytes] | None = None,
) -> int:
    stop = threading.Event()
    try:
        chunks = audio_chunks(request, stdin or sys.stdin.buffer, stop)
    except (SayItError, OSError) as error:
        console.print(f"[red]error: {request.source}: {error}[/red]")
        return EXIT_FAILED
    options = dict(request.options)
    # Interim results cost the service a decode each: ask for them only when they are shown.
    options["interim_results"] = bool(options.get("interim_results", True)) and interactive
    if request.source == STDIN:
        options.update(
            sample_rate_hertz=request.sample_rate,
            encoding=request.encoding,
            channels=request.channels,
        )
    session = client.stream(chunks, **options)
    printer = LivePrinter(out, interactive=interactive, timestamps=request.timestamps)
    try:
        while True:
            try:
                for update in session:
                    if isinstance(update, SessionStarted):
                        console.print(
                            f"{update.job_name} (follow: sayit jobs watch {update.job_name})"
                        )
                    elif isinstance(update, LiveResult):
                        printer.result(update)
                break
            except KeyboardInterrupt:
                # The first Ctrl-C ends the audio (the service flushes the last utterance);
                # the iteration picks up the same call where it stopped.
                if stop.is_set():
                    session.cancel()
                    printer.close()
                    console.print(f"{session.job_name or 'the session'}: cancelled")
                    return EXIT_INTERRUPTED
                stop.set()
                printer.close()
                console.print("stopping: finishing the last utterance (Ctrl-C again to cancel)")
    except ClientError as error:
        printer.close()
        name = f"{session.job_name}: " if session.job_name else ""
        console.print(f"[red]error: {name}{error.code.name}: {error.message}[/red]")
        return EXIT_FAILED
    except (SayItError, OSError) as error:  # the audio could not be read: the call was cancelled
        printer.close()
        console.print(f"[red]error: reading {request.source}: {error}[/red]")
        return EXIT_FAILED
    printer.close()
    if session.job_name:
        console.print(
            f"{session.job_name}: ended, {len(session.finals)} final result(s) "
            f"(transcript: sayit jobs get {session.job_name} --format srt)"
        )
    return EXIT_OK


def write_pcm(source: str, target: str, console: Console) -> int:
    """`sayit pcm FILE`: the file decoded to raw 16 kHz mono LINEAR16, what `sayit stream -`
    and a `StreamingRecognize` session take by default (for grpcurl, or a pipe)."""
    if not os.path.isfile(source):
        console.print(f"[red]error: no such file: {source}[/red]")
        return 2
    try:
        pcm = decode_to_pcm(source)
    except (SayItError, OSError) as error:
        console.print(f"[red]error: {source}: {error}[/red]")
        return EXIT_FAILED
    # Standard output stays open for the rest of the program.
    with pcm, nullcontext(sys.stdout.buffer) if target == "-" else open(target, "wb") as out:
        shutil.copyfileobj(pcm, out)
        out.flush()
    return EXIT_OK
