"""`sayit transcribe FILE...`: a live progress bar per file, then the transcripts written out.

Each file is sent on its own thread (at most `--parallel` at once); events come back to the
main thread through a queue, so Ctrl-C always lands in the main thread, which then asks whether
to cancel the jobs still running on the server or leave them running.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.prompt import Confirm

from sayit.common.v1 import event_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from services.cli.output import Output
from services.cli.progress import JobProgress, Tracked
from services.client import ClientError, SayItClient
from services.client.outcomes import transcript_of

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
_FINISHED = object()


@dataclass(frozen=True)
class Request:
    files: list[str]
    config: tpb.TranscriptionConfig
    output: Output
    parallel: int


def submit_only(client: SayItClient, request: Request, console: Console) -> int:
    """--no-wait: queue every file and print the job names (stdout), one per line."""
    failed = 0
    for path in request.files:
        try:
            job = client.submit(path, config=request.config)
        except ClientError as error:
            console.print(f"[red]{path}: {error.code.name}: {error.message}[/red]")
            failed += 1
            continue
        print(job.name, flush=True)
        console.print(f"{path}: {job.name} queued (follow: sayit jobs watch {job.name})")
    return EXIT_FAILED if failed else EXIT_OK


def transcribe(client: SayItClient, request: Request, console: Console) -> int:
    request.output.prepare()
    events: queue.Queue[tuple[int, object]] = queue.Queue()
    stopping = threading.Event()
    gate = threading.Semaphore(request.parallel)
    labels = _labels(request.files)

    def send(index: int, path: str) -> None:
        with gate:
            if stopping.is_set():
                events.put((index, _FINISHED))
                return
            try:
                for event in client.transcribe_with_progress(path, config=request.config):
                    events.put((index, event))
            except (ClientError, OSError) as error:
                events.put((index, error))
            events.put((index, _FINISHED))

    failures = 0
    with JobProgress(console) as display:
        rows = [display.add(label) for label in labels]
        threads = [
            threading.Thread(target=send, args=(i, path), daemon=True)
            for i, path in enumerate(request.files)
        ]
        for thread in threads:
            thread.start()
        pending = len(threads)
        try:
            while pending:
                try:
                    index, item = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                row, path = rows[index], request.files[index]
                if item is _FINISHED:
                    pending -= 1
                elif isinstance(item, event_pb2.JobEvent):
                    display.apply(row, item)
                    if item.WhichOneof("kind") in ("completed", "failed", "cancelled"):
                        failures += not _finish(display, row, path, item, request.output)
                else:
                    display.fail(row)
                    failures += 1
                    console.print(f"[red]{row.label}: {_describe(item)}[/red]")
        except KeyboardInterrupt:
            stopping.set()
            display.progress.stop()
            return _interrupted(client, rows, console)
    return EXIT_FAILED if failures else EXIT_OK


def _finish(
    display: JobProgress, row: Tracked, path: str, event: event_pb2.JobEvent, output: Output
) -> bool:
    """Write a completed job's transcript; report a failed or cancelled one. True if written."""
    try:
        transcript = transcript_of(row.job_name, event)
    except ClientError as error:
        display.console.print(f"[red]{row.label}: {error.code.name}: {error.message}[/red]")
        return False
    where = output.write(path, transcript)
    seconds = transcript.audio_duration_seconds
    display.console.print(
        f"{row.label}: done, {seconds:.1f} s of {transcript.language_code or '?'} audio "
        f"in {transcript.processing_seconds:.1f} s -> {where}"
    )
    return True


def _interrupted(client: SayItClient, rows: list[Tracked], console: Console) -> int:
    running = [row for row in rows if row.job_name and not row.ended]
    unsent = [row for row in rows if not row.job_name and not row.ended]
    if unsent:
        console.print(f"{len(unsent)} file(s) were not submitted.")
    if not running:
        return EXIT_INTERRUPTED
    names = ", ".join(row.job_name for row in running)
    try:
        cancel = Confirm.ask(
            f"\nInterrupted. Cancel {len(running)} job(s) still running on the server "
            f"({names})? Otherwise they keep running",
            console=console,
            default=False,
        )
    except (KeyboardInterrupt, EOFError):
        cancel = False
    for row in running:
        if not cancel:
            console.print(
                f"{row.label}: {row.job_name} left running "
                f"(follow: sayit jobs watch {row.job_name})"
            )
            continue
        try:
            client.cancel_job(row.job_name)
            console.print(f"{row.label}: {row.job_name} cancelled")
        except ClientError as error:
            console.print(
                f"[red]{row.label}: {row.job_name}: {error.code.name}: {error.message}[/red]"
            )
    return EXIT_INTERRUPTED


def _labels(files: list[str]) -> list[str]:
    names = [Path(f).name for f in files]
    return [n if names.count(n) == 1 else f for n, f in zip(names, files, strict=True)]


def _describe(error: object) -> str:
    if isinstance(error, ClientError):
        return f"{error.code.name}: {error.message}"
    return str(error)
