"""Where `sayit` writes transcripts: a file per input in a directory, or stdout ("-")."""

from __future__ import annotations

import sys
from pathlib import Path

from sayit.common.v1 import transcription_pb2 as tpb
from services.client.formats import render

STDOUT = "-"


class Output:
    def __init__(self, target: str, fmt: str) -> None:
        self.fmt = fmt
        self.to_stdout = target == STDOUT
        self.directory = Path(target)
        self._used: set[Path] = set()

    def prepare(self) -> None:
        if not self.to_stdout:
            self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, source: str) -> Path:
        """OUT/<stem>.<fmt>, with -2, -3... when two inputs share a stem."""
        stem = Path(source).stem or "transcript"
        path = self.directory / f"{stem}.{self.fmt}"
        n = 2
        while path in self._used:
            path = self.directory / f"{stem}-{n}.{self.fmt}"
            n += 1
        self._used.add(path)
        return path

    def write(self, source: str, transcript: tpb.Transcript) -> str:
        """Write the transcript for `source`; where it went (a path, or "stdout")."""
        text = render(transcript, self.fmt)
        if self.to_stdout:
            sys.stdout.write(text)
            sys.stdout.flush()
            return "stdout"
        path = self.path_for(source)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # a reader never sees half a file
        return str(path)
