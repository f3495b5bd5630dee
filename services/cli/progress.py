"""A live progress bar per file or job, driven by the job's events."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from sayit.common.v1 import event_pb2, job_pb2


@dataclass
class Tracked:
    """What the display knows about one file's job."""

    label: str
    task: TaskID
    job_name: str = ""
    status: str = "sending"
    ended: bool = False


class JobProgress:
    """Rows of `label  status  [bar]  percent  done/total s of audio  ETA`.

    Status goes sending → queued (waiting for a worker) → running → done, failed or cancelled.
    On a terminal the rows redraw in place; otherwise (CI logs, pipes) they print once at the
    end, and the notable moments (accepted, ended) print as lines either way.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            TextColumn("{task.fields[status]:<9}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TextColumn("{task.fields[audio]}"),
            TimeRemainingColumn(),
            console=console,
            auto_refresh=True,
        )
        self.rows: list[Tracked] = []

    def __enter__(self) -> JobProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def add(self, label: str, job_name: str = "") -> Tracked:
        task = self.progress.add_task(label, total=None, status="sending", audio="")
        row = Tracked(label, task, job_name)
        self.rows.append(row)
        return row

    def _set(self, row: Tracked, status: str, **kwargs: object) -> None:
        row.status = status
        self.progress.update(row.task, status=status, **kwargs)  # type: ignore[arg-type]

    def show_job(self, row: Tracked, job: job_pb2.TranscriptionJob) -> None:
        """Start a row from a job's current state (when watching an existing job)."""
        row.job_name = job.name
        p = job.progress
        status = {
            job_pb2.JOB_STATE_QUEUED: "queued",
            job_pb2.JOB_STATE_RUNNING: "running",
        }.get(job.state, "running")
        self._set(
            row,
            status,
            total=p.audio_seconds_total or None,
            completed=p.audio_seconds_done,
            audio=_audio(p.audio_seconds_done, p.audio_seconds_total),
        )

    def apply(self, row: Tracked, event: event_pb2.JobEvent) -> None:
        kind = event.WhichOneof("kind")
        if kind == "accepted":
            row.job_name = event.name
            accepted = event.accepted
            total = accepted.audio_duration_seconds
            queued = accepted.routing == job_pb2.ROUTING_QUEUED
            self._set(row, "queued" if queued else "running", total=total, audio=_audio(0, total))
            where = "queued" if queued else "transcribing now"
            self.console.print(f"{row.label}: {row.job_name} ({total:.1f} s of audio, {where})")
        elif kind == "progress":
            p = event.progress
            self._set(
                row,
                "running",
                total=p.audio_seconds_total or None,
                completed=p.audio_seconds_done,
                audio=_audio(p.audio_seconds_done, p.audio_seconds_total),
            )
        elif kind == "completed":
            row.ended = True
            task = self.progress.tasks[self._index(row)]
            total = task.total or event.completed.transcript.audio_duration_seconds
            self._set(row, "done", total=total, completed=total, audio=_audio(total, total))
        elif kind == "failed":
            row.ended = True
            self._set(row, "failed")
        elif kind == "cancelled":
            row.ended = True
            self._set(row, "cancelled")

    def fail(self, row: Tracked) -> None:
        row.ended = True
        self._set(row, "failed")

    def _index(self, row: Tracked) -> int:
        return next(i for i, t in enumerate(self.progress.tasks) if t.id == row.task)


def _audio(done: float, total: float) -> str:
    return f"{done:6.1f}/{total:.1f} s" if total else ""
