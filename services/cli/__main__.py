"""sayit — the SayIt command line: transcribe files with live progress, manage jobs.

    sayit transcribe meeting.flac --language ko --format srt --out subs/
    sayit transcribe a.wav b.mp3 --no-wait
    sayit stream call.flac --realtime --language ko
    sayit pcm call.flac > call.pcm
    arecord -q -f S16_LE -r 16000 -c 1 | sayit stream -
    sayit jobs list | get NAME | watch NAME | cancel NAME...
    sayit health

Errors print their gRPC status code and message and exit 1; Ctrl-C during `transcribe` asks
whether to cancel the jobs or leave them running (exit 130); during `stream` it stops sending
(the last utterance is finished), a second Ctrl-C cancels the session (exit 130).
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
from services.cli.stream import STDIN, StreamRequest, stream, write_pcm
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
        description="SayIt speech-to-text: transcribe files, recognise live audio, follow and "
        "manage jobs.",
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

    s = commands.add_parser(
        "stream",
        parents=[common],
        help="live recognition of a file or of raw PCM on stdin",
        description="Live recognition (StreamingRecognize): interim text in place and final "
        "lines as they settle (finals only when stdout is not a terminal); the session's job "
        "name goes to stderr.",
    )
    s.add_argument(
        "source",
        metavar="FILE",
        help="an audio file (any format; decoded to 16 kHz mono), or - for raw PCM on stdin",
    )
    s.add_argument(
        "--realtime",
        action="store_true",
        help="send at real-time pace (default: as fast as the service takes the audio)",
    )
    s.add_argument("--language", default="auto", help="ko, en, ... or auto (default: auto)")
    s.add_argument("--model", default="", help="model name (default: the served model)")
    s.add_argument("--preset", choices=("accurate", "fast"), default="", help="decoding preset")
    s.add_argument(
        "--interim",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ask for and show interim results when stdout is a terminal (default: on)",
    )
    s.add_argument("--word-timestamps", action="store_true", help="ask for word timings")
    s.add_argument("--timestamps", action="store_true", help="print each line's start and end time")
    s.add_argument(
        "--endpoint-silence",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="silence that ends an utterance, 0.2-5 (default: the service's, 0.5)",
    )
    s.add_argument(
        "--max-utterance",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="longest utterance before a cut at its best pause, 5-30 (default: 30)",
    )
    s.add_argument(
        "--sample-rate",
        type=int,
        default=None,
        help="stdin only: samples per second, 8000-48000 (default: 16000)",
    )
    s.add_argument(
        "--encoding",
        choices=("linear16", "float32"),
        default=None,
        help="stdin only: 16-bit signed or 32-bit float little-endian (default: linear16)",
    )
    s.add_argument(
        "--channels",
        type=int,
        choices=(1, 2),
        default=None,
        help="stdin only: interleaved channels, mixed down (default: 1)",
    )
    s.add_argument("--chunk-ms", type=int, default=100, help="audio per message, ms (default: 100)")

    p = commands.add_parser(
        "pcm",
        parents=[common],
        help="decode an audio file to raw 16 kHz mono LINEAR16 (for stream -, grpcurl)",
    )
    p.add_argument("source", metavar="FILE", help="an audio file (any format SayIt reads)")
    p.add_argument("--out", default=STDOUT, help="output file, or - for stdout (default: -)")

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
    if args.command == "stream":
        return _stream(args, client, console)
    if args.command == "pcm":
        return write_pcm(args.source, args.out, console)
    if args.command == "health":
        return jobs.health(client, out)
    if args.action == "list":
        return jobs.list_jobs(client, args.limit, out)
    if args.action == "get":
        return jobs.get_job(client, args.name, args.format, args.out, out)
    if args.action == "watch":
        return jobs.watch_job(client, args.name, args.format, args.out, console)
    return jobs.cancel_jobs(client, args.names, console)


def _stream(args: argparse.Namespace, client: SayItClient, console: Console) -> int:
    raw = {
        "--sample-rate": args.sample_rate,
        "--encoding": args.encoding,
        "--channels": args.channels,
    }
    if args.source != STDIN:
        given = [name for name, value in raw.items() if value is not None]
        if given:
            console.print(
                f"[red]error: {', '.join(given)} describe raw PCM on stdin (-); a file is "
                "decoded as it is[/red]"
            )
            return EXIT_USAGE
        if not os.path.isfile(args.source):
            console.print(f"[red]error: no such file: {args.source}[/red]")
            return EXIT_USAGE
    if not 10 <= args.chunk_ms <= 1000:
        console.print("[red]error: --chunk-ms must be 10 to 1000[/red]")
        return EXIT_USAGE
    request = StreamRequest(
        source=args.source,
        realtime=args.realtime,
        sample_rate=args.sample_rate or 16_000,
        encoding=args.encoding or "linear16",
        channels=args.channels or 1,
        chunk_seconds=args.chunk_ms / 1000,
        timestamps=args.timestamps,
        options={
            "language": args.language,
            "model": args.model,
            "preset": args.preset,
            "word_timestamps": args.word_timestamps,
            "interim_results": args.interim,
            "silence_seconds": args.endpoint_silence,
            "max_utterance_seconds": args.max_utterance,
        },
    )
    return stream(client, request, console, sys.stdout, interactive=sys.stdout.isatty())


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
