"""sayit — the SayIt command line: transcribe files with live progress, manage jobs.

    sayit transcribe meeting.flac --language ko --format srt --out subs/
    sayit transcribe a.wav b.mp3 --no-wait
    sayit jobs list | get NAME | watch NAME | cancel NAME...
    sayit health

Errors print their gRPC status code and message and exit 1; Ctrl-C during `transcribe` asks
whether to cancel the jobs or leave them running (exit 130).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from services.cli import jobs
from services.cli.config import CliConfig, load_config
from services.cli.output import STDOUT, Output
from services.cli.transcribe import EXIT_INTERRUPTED, Request, submit_only, transcribe
from services.client import FORMATS, ClientError, SayItClient, make_config
from services.client.credentials import find_api_key
from services.common.errors import ConfigError

EXIT_USAGE = 2


def _parser(config: CliConfig) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--addr",
        default=argparse.SUPPRESS,
        help=f"gateway host:port (SAYIT_ADDR; now {config.addr})",
    )
    common.add_argument(
        "--api-key",
        default=argparse.SUPPRESS,
        help="API key (SAYIT_API_KEY, else ./.run/dev-api-key, the key `make up` made)",
    )
    common.add_argument("--tls", action="store_true", default=argparse.SUPPRESS, help="use TLS")
    common.add_argument(
        "--ca-file",
        default=argparse.SUPPRESS,
        help="PEM file of the CA that signed the gateway's certificate (SAYIT_CA_FILE; "
        "implies --tls)",
    )
    parser = argparse.ArgumentParser(
        prog="sayit",
        description="SayIt speech-to-text: transcribe files, follow and manage jobs.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = commands.add_parser(
        "transcribe", parents=[common], help="transcribe files with a live progress bar"
    )
    t.add_argument("files", nargs="+", metavar="FILE")
    t.add_argument("--language", default="auto", help="ko, en, ... or auto (default: auto)")
    t.add_argument("--model", default="", help="model name (default: the served model)")
    t.add_argument("--format", choices=FORMATS, default="txt", help="output format (txt)")
    t.add_argument("--out", default=".", help="output directory, or - for stdout (default: .)")
    t.add_argument("--preset", choices=("accurate", "fast"), default="", help="decoding preset")
    t.add_argument(
        "--word-timestamps",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ask for word timings (default: on for srt and vtt)",
    )
    t.add_argument("--no-wait", action="store_true", help="queue the files, print job names")
    t.add_argument("--parallel", type=int, default=4, help="files in flight at once (4)")

    j = commands.add_parser("jobs", parents=[common], help="list, inspect, follow, cancel jobs")
    actions = j.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = actions.add_parser("list", parents=[common], help="recent jobs, newest first")
    ls.add_argument("--limit", type=int, default=20)
    for action, text in (("get", "show a job"), ("watch", "follow a job until it ends")):
        a = actions.add_parser(action, parents=[common], help=text)
        a.add_argument("name", metavar="NAME", help="jobs/<id> or <id>")
        a.add_argument("--format", choices=FORMATS, default=None, help="write the transcript")
        a.add_argument("--out", default=STDOUT, help="output directory or - (default: -)")
    c = actions.add_parser("cancel", parents=[common], help="cancel queued or running jobs")
    c.add_argument("names", nargs="+", metavar="NAME")

    commands.add_parser("health", parents=[common], help="is the gateway serving?")
    return parser


def _client(args: argparse.Namespace, config: CliConfig) -> SayItClient:
    ca_file = getattr(args, "ca_file", None) or config.ca_file
    tls = bool(getattr(args, "tls", False) or ca_file)
    return SayItClient(
        getattr(args, "addr", config.addr),
        # "" when none is found: the client looks no further.
        api_key=find_api_key(
            getattr(args, "api_key", None) or config.api_key, os.environ, Path.cwd()
        )
        or "",
        tls=tls,
        root_certificates=open(ca_file, "rb").read() if ca_file else None,
        upload_threshold_bytes=config.upload_threshold_bytes,
    )


def run(argv: Sequence[str], config: CliConfig) -> int:
    args = _parser(config).parse_args(argv)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    # Piped output is for scripts: never cut a line to a guessed terminal width.
    out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    try:
        client = _client(args, config)
    except OSError as error:
        console.print(f"[red]error: {error}[/red]")
        return EXIT_USAGE
    try:
        return _dispatch(args, client, console, out)
    except ClientError as error:
        console.print(f"[red]error: {error.code.name}: {error.message}[/red]", markup=True)
        return 1
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        client.close()


def _dispatch(args: argparse.Namespace, client: SayItClient, console: Console, out: Console) -> int:
    if args.command == "transcribe":
        if args.parallel < 1:
            console.print("[red]error: --parallel must be 1 or more[/red]")
            return EXIT_USAGE
        missing = [f for f in args.files if not os.path.isfile(f)]
        if missing:
            console.print(f"[red]error: no such file: {', '.join(missing)}[/red]")
            return EXIT_USAGE
        word_timestamps = (
            args.word_timestamps
            if args.word_timestamps is not None
            else args.format in ("srt", "vtt")
        )
        request = Request(
            files=list(args.files),
            config=make_config(
                language=args.language,
                model=args.model,
                word_timestamps=word_timestamps,
                preset=args.preset,
            ),
            output=Output(args.out, args.format),
            parallel=args.parallel,
        )
        if args.no_wait:
            return submit_only(client, request, console)
        return transcribe(client, request, console)
    if args.command == "health":
        return jobs.health(client, out)
    if args.action == "list":
        return jobs.list_jobs(client, args.limit, out)
    if args.action == "get":
        return jobs.get_job(client, args.name, args.format, args.out, out)
    if args.action == "watch":
        return jobs.watch_job(client, args.name, args.format, args.out, console)
    return jobs.cancel_jobs(client, args.names, console)


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C must reach `transcribe` as KeyboardInterrupt (it asks whether to cancel the job),
    # even when the CLI was started with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        config = load_config(os.environ)
    except ConfigError as error:
        print(f"sayit: bad configuration: {error}", file=sys.stderr)
        return EXIT_USAGE
    return run(sys.argv[1:] if argv is None else argv, config)


if __name__ == "__main__":
    sys.exit(main())
