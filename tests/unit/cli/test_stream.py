"""`sayit stream` against a small real gRPC SpeechService (tests.support.live_speech): what it
prints (interim text rewritten in place on a terminal, final lines only otherwise, the job's name
on stderr), what it sends (a file decoded to 16 kHz mono LINEAR16, stdin as it is), and how
errors end it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from rich.console import Console

from sayit.common.v1 import streaming_pb2 as spb
from services.cli import __main__ as cli
from services.cli.config import CliConfig
from services.cli.stream import CLEAR_LINE, LivePrinter, StreamRequest, stream, tail
from services.client import LiveResult, SayItClient
from services.common.errors import InvalidArgument, ResourceExhausted
from tests.support.live_speech import JOB, LiveScript, LiveSpeech, serve

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def script() -> LiveScript:
    return LiveScript()


@pytest.fixture
def speech(script: LiveScript) -> Iterator[tuple[LiveSpeech, str]]:
    server, service, addr = serve(script)
    try:
        yield service, addr
    finally:
        server.stop(0)


def final(text: str, start: float = 0.0, end: float = 1.0) -> LiveResult:
    return LiveResult(JOB, 1, text, True, 1.0, start, end)


def interim(text: str) -> LiveResult:
    return LiveResult(JOB, 1, text, False, 0.5, 0.0, 1.0)


def flac(path: Path, seconds: float) -> Path:
    samples = (np.sin(np.arange(int(seconds * 16_000)) / 9) * 4000).astype(np.int16)
    sf.write(path, samples, 16_000, format="FLAC")
    return path


def run_cli(addr: str, *args: str) -> int:
    return cli.run(["--addr", addr, "--api-key", "k", *args], CliConfig(addr, None, None))


def test_a_terminal_sees_interim_text_in_place_and_final_lines() -> None:
    out = io.StringIO()
    printer = LivePrinter(out, interactive=True, width=lambda: 80)
    for r in (interim("hello"), interim("hello wor"), final("Hello world."), interim("and")):
        printer.result(r)
    printer.result(final("And then."))
    printer.close()
    assert out.getvalue() == (
        f"{CLEAR_LINE}hello{CLEAR_LINE}hello wor{CLEAR_LINE}Hello world.\n"
        f"{CLEAR_LINE}and{CLEAR_LINE}And then.\n"
    )


def test_a_pipe_sees_final_lines_only() -> None:
    out = io.StringIO()
    printer = LivePrinter(out, interactive=False, timestamps=True)
    for r in (interim("hello"), final("Hello world.", 1.25, 62.5), interim("x"), final("  ")):
        printer.result(r)
    printer.close()
    assert out.getvalue() == "[00:01.2 → 01:02.5] Hello world.\n"


def test_an_interim_line_left_on_screen_is_cleared_at_the_end() -> None:
    out = io.StringIO()
    printer = LivePrinter(out, interactive=True, width=lambda: 80)
    printer.result(interim("half"))
    printer.close()
    assert out.getvalue() == f"{CLEAR_LINE}half{CLEAR_LINE}"


def test_a_long_interim_line_shows_its_end_within_the_width() -> None:
    assert tail("abcdef", 10) == "abcdef"
    assert tail("abcdef", 4) == "…def"
    # Korean characters take two cells each.
    assert tail("가나다라", 5) == "…라"
    out = io.StringIO()
    printer = LivePrinter(out, interactive=True, width=lambda: 6)
    printer.result(interim("one two three"))
    assert out.getvalue() == CLEAR_LINE + "…hree"


def test_sayit_stream_file_prints_finals_and_the_job_name(
    speech: tuple[LiveSpeech, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service, addr = speech
    path = flac(tmp_path / "call.flac", 0.5)
    code = run_cli(addr, "stream", str(path), "--language", "ko", "--endpoint-silence", "0.7")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # stdout is not a terminal here: final lines only, in order.
    assert captured.out == "안녕하세요.\n반갑습니다.\n"
    assert f"{JOB} (follow: sayit jobs watch {JOB})" in captured.err
    assert f"{JOB}: ended, 2 final result(s)" in captured.err
    (config,) = service.configs
    assert config.encoding == spb.AUDIO_ENCODING_LINEAR16 and config.sample_rate_hertz == 16_000
    # Interim results are not shown in a pipe: not asked for either (each costs a decode).
    assert config.config.language_code == "ko" and config.interim_results is False
    assert config.endpointing.silence_seconds == pytest.approx(0.7)
    assert [len(c) for c in service.chunks] == [3200] * 5
    assert service.audio == sf.read(path, dtype="int16")[0].astype("<i2").tobytes()


def test_sayit_stream_stdin_sends_raw_pcm_as_described(
    speech: tuple[LiveSpeech, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, addr = speech
    raw = bytes(range(256)) * 100  # 25600 bytes: 0.4 s of 8 kHz stereo 16-bit
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))
    code = run_cli(
        addr,
        "stream",
        "-",
        "--sample-rate",
        "8000",
        "--channels",
        "2",
        "--no-interim",
        "--preset",
        "fast",
        "--word-timestamps",
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == "안녕하세요.\n반갑습니다.\n"
    (config,) = service.configs
    assert (config.sample_rate_hertz, config.audio_channel_count) == (8000, 2)
    assert config.encoding == spb.AUDIO_ENCODING_LINEAR16 and config.interim_results is False
    assert config.config.word_timestamps is True
    # 100 ms of 8 kHz stereo 16-bit = 3200 bytes a message, the bytes untouched.
    assert [len(c) for c in service.chunks] == [3200] * 8 and service.audio == raw


def test_sayit_stream_on_a_terminal_rewrites_the_interim_line(
    speech: tuple[LiveSpeech, str], tmp_path: Path
) -> None:
    service, addr = speech
    out = io.StringIO()
    console = Console(file=io.StringIO())
    request = StreamRequest(str(flac(tmp_path / "a.flac", 0.2)), options={"language": "ko"})
    with SayItClient(addr, api_key="") as client:
        assert stream(client, request, console, out, interactive=True) == 0
    assert service.configs[0].interim_results is True
    assert out.getvalue() == (
        f"{CLEAR_LINE}안녕{CLEAR_LINE}안녕하세요{CLEAR_LINE}안녕하세요.\n"
        f"{CLEAR_LINE}반갑{CLEAR_LINE}반갑습니다.\n"
    )


def test_no_free_place_exits_1_with_the_code_and_message(
    speech: tuple[LiveSpeech, str],
    script: LiveScript,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, addr = speech
    script.refuse = ResourceExhausted("no free live-session place; retry in 3 s", 3)
    code = run_cli(addr, "stream", str(flac(tmp_path / "a.flac", 0.2)))
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert "error: RESOURCE_EXHAUSTED: no free live-session place; retry in 3 s" in captured.err


def test_a_failure_mid_session_names_the_job(
    speech: tuple[LiveSpeech, str],
    script: LiveScript,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, addr = speech
    script.answer_while_sending = True
    script.fail_after_chunks = 2
    script.failure = InvalidArgument("audio_content: not whole samples", "audio_content")
    code = run_cli(addr, "stream", str(flac(tmp_path / "a.flac", 0.5)))
    captured = capsys.readouterr()
    assert code == 1
    assert f"error: {JOB}: INVALID_ARGUMENT: audio_content: not whole samples" in captured.err


def test_usage_errors_exit_2(
    speech: tuple[LiveSpeech, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service, addr = speech
    path = flac(tmp_path / "a.flac", 0.2)
    assert run_cli(addr, "stream", str(path), "--sample-rate", "8000") == 2
    assert "--sample-rate describe raw PCM on stdin" in capsys.readouterr().err
    assert run_cli(addr, "stream", str(tmp_path / "missing.wav")) == 2
    assert "no such file" in capsys.readouterr().err
    assert run_cli(addr, "stream", str(path), "--chunk-ms", "5") == 2
    assert service.configs == []


def test_an_undecodable_file_exits_1_before_calling(
    speech: tuple[LiveSpeech, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service, addr = speech
    path = tmp_path / "notes.mp3"
    path.write_text("no audio here")
    assert run_cli(addr, "stream", str(path)) == 1
    assert f"error: {path}:" in capsys.readouterr().err
    assert service.configs == []


def test_sayit_pcm_writes_the_decoded_file(speech: tuple[LiveSpeech, str], tmp_path: Path) -> None:
    _, addr = speech
    path = flac(tmp_path / "a.flac", 0.3)
    out = tmp_path / "a.pcm"
    assert run_cli(addr, "pcm", str(path), "--out", str(out)) == 0
    assert out.read_bytes() == sf.read(path, dtype="int16")[0].astype("<i2").tobytes()
    assert run_cli(addr, "pcm", str(tmp_path / "missing.flac")) == 2


def test_stdin_that_fails_exits_1_naming_the_source(
    speech: tuple[LiveSpeech, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, addr = speech

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: object) -> int:
            raise OSError("input/output error")

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(Broken())))
    assert run_cli(addr, "stream", "-") == 1
    assert "error: reading -: input/output error" in capsys.readouterr().err
