"""The caller's audio as the readers take it: bytes in memory, or a seekable binary file (an
upload spooled to disk) that is never read whole. libsndfile and PyAV each get a view from the
start; they are used one after the other, never at once, as a file has only one position."""

from __future__ import annotations

import io
from typing import BinaryIO, cast

AudioSource = bytes | BinaryIO


class Source:
    def __init__(self, source: AudioSource) -> None:
        self._bytes: bytes | None = None
        self._file: BinaryIO | None = None
        if isinstance(source, bytes | bytearray | memoryview):
            self._bytes = bytes(source) if not isinstance(source, bytes) else source
            self.size = len(self._bytes)
        else:
            self._file = source
            self.size = source.seek(0, io.SEEK_END)
            source.seek(0)
        self._head = self.read_at(0, 4096)

    def view(self) -> BinaryIO:
        """A file object at the start of the audio (for bytes, a copy-free BytesIO)."""
        if self._bytes is not None:
            return io.BytesIO(self._bytes)
        assert self._file is not None
        self._file.seek(0)
        return cast(BinaryIO, _Unclosable(self._file))

    def head(self, size: int = 64) -> bytes:
        return self._head[:size] if size <= len(self._head) else self.read_at(0, size)

    def read_at(self, offset: int, size: int) -> bytes:
        if self._bytes is not None:
            return self._bytes[offset : offset + size]
        assert self._file is not None
        self._file.seek(offset)
        return self._file.read(size)


class _Unclosable(io.RawIOBase):
    """The caller's file, lent to a reader: closing the reader must not close the caller's file."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__()
        self._file = file

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._file.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()
