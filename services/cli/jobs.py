"""`sayit jobs list|get|watch|cancel` and `sayit health`."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from sayit.common.v1 import job_pb2
from services.cli.output import Output
from services.cli.progress import JobProgress
from services.client import ClientError, SayItClient
from services.client.errors import status_code
from services.client.outcomes import ENDED_STATES, transcript_of_job

EXIT_OK, EXIT_FAILED = 0, 1
SPEECH_SERVICE = "sayit.speech.v1.SpeechService"


def job_name(value: str) -> str:
    """Accept "jobs/<id>" or the bare id."""
    return value if value.startswith("jobs/") else f"jobs/{value}"


def state_name(state: int) -> str:
    return job_pb2.JobState.Name(state).removeprefix("JOB_STATE_").lower()


def routing_name(routing: int) -> str:
    return job_pb2.Routing.Name(routing).removeprefix("ROUTING_").lower()


def _when(job: job_pb2.TranscriptionJob) -> str:
    if not job.HasField("create_time"):
        return ""
    return datetime.fromtimestamp(job.create_time.seconds).strftime("%m-%d %H:%M:%S")


def list_jobs(client: SayItClient, limit: int, out: Console) -> int:
    table = Table(box=None, header_style="bold")
    table.add_column("job", no_wrap=True)  # whole, so it can be copied
    for name in ("state", "routing", "audio", "progress"):
        table.add_column(name, no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("file", overflow="ellipsis")
    for job in client.iter_jobs(limit):
        table.add_row(
            job.name,
            state_name(job.state),
            routing_name(job.routing),
            f"{job.audio_duration_seconds:.0f} s",
            f"{job.progress.fraction:.0%}",
            _when(job),
            job.filename,
        )
    out.print(table)
    return EXIT_OK


def get_job(client: SayItClient, name: str, fmt: str | None, target: str, out: Console) -> int:
    job = client.get_job(job_name(name))
    if fmt:
        return _write(job, fmt, target, out)
    p = job.progress
    out.print(f"{job.name}  {state_name(job.state)}  ({routing_name(job.routing)})")
    out.print(f"  file      {job.filename or '-'}")
    out.print(f"  audio     {job.audio_duration_seconds:.1f} s")
    out.print(
        f"  progress  {p.fraction:.0%} ({p.audio_seconds_done:.1f}/{p.audio_seconds_total:.1f}"
        f" s, chunks {p.chunks_done}/{p.chunks_total})"
    )
    out.print(f"  created   {_when(job)}")
    if job.HasField("error"):
        out.print(f"  error     {_code(job.error.code)}: {job.error.message}")
    if job.HasField("transcript"):
        t = job.transcript
        out.print(
            f"  language  {t.language_code} ({t.language_probability:.2f}), model {t.model}, "
            f"{t.processing_seconds:.1f} s{', from cache' if t.from_cache else ''}"
        )
        out.print(f"\n{t.text}", markup=False)
    return EXIT_OK


def _write(job: job_pb2.TranscriptionJob, fmt: str, target: str, out: Console) -> int:
    if job.state not in ENDED_STATES:
        out.print(f"{job.name} is {state_name(job.state)}; its transcript is not ready yet")
        return EXIT_FAILED
    output = Output(target, fmt)
    output.prepare()
    where = output.write(job.filename or job.name.removeprefix("jobs/"), transcript_of_job(job))
    if where != "stdout":
        out.print(f"{job.name} -> {where}")
    return EXIT_OK


def watch_job(
    client: SayItClient, name: str, fmt: str | None, target: str, console: Console
) -> int:
    """Follow a job with a progress bar (re-attaching if the connection drops), then print its
    text or write it in `fmt`."""
    name = job_name(name)
    job = client.get_job(name)
    with JobProgress(console) as display:
        row = display.add(job.filename or name, name)
        display.show_job(row, job)
        for event in client.watch(name):
            display.apply(row, event)
    job = client.get_job(name)
    if fmt:
        return _write(job, fmt, target, console)
    try:
        print(transcript_of_job(job).text, flush=True)
    except ClientError as error:
        console.print(f"[red]{name}: {error.code.name}: {error.message}[/red]")
        return EXIT_FAILED
    return EXIT_OK


def cancel_jobs(client: SayItClient, names: list[str], console: Console) -> int:
    failed = 0
    for value in names:
        try:
            job = client.cancel_job(job_name(value))
            console.print(f"{job.name}: {state_name(job.state)}")
        except ClientError as error:
            console.print(f"[red]{job_name(value)}: {error.code.name}: {error.message}[/red]")
            failed += 1
    return EXIT_FAILED if failed else EXIT_OK


def health(client: SayItClient, out: Console) -> int:
    server = client.health()
    service = client.health(SPEECH_SERVICE)
    out.print(f"{client.addr}: {server}")
    out.print(f"  {SPEECH_SERVICE}: {service}")
    return EXIT_OK if server == service == "SERVING" else EXIT_FAILED


def _code(number: int) -> str:
    return status_code(number).name
