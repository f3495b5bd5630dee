"""A unary gRPC call written as raw HTTP/2 frames, for metadata values that gRPC's own client
refuses to send (control characters, non-ASCII) but any other HTTP/2 client can: the server
must cope with what arrives on the wire, not with what grpc's client lets through.

Just enough HTTP/2 for one plaintext call: the preface, SETTINGS (and their ACK), a HEADERS
frame of literal (never indexed, no Huffman) header fields, one DATA frame. The response's
header blocks are not decoded: tests read the server's logs instead.
"""

from __future__ import annotations

import socket
import struct

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _GOAWAY = 0, 1, 3, 4, 7
_END_STREAM, _ACK, _END_HEADERS = 0x1, 0x1, 0x4


def _integer(value: int, prefix_bits: int) -> bytes:
    """HPACK's integer encoding (RFC 7541 5.1), with a zero first-byte flag."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out = [limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name: bytes, value: bytes) -> bytes:
    """A literal header field without indexing, new name (RFC 7541 6.2.2)."""
    return b"\x00" + _integer(len(name), 7) + name + _integer(len(value), 7) + value


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    header = struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream)
    return header + payload


def unary_call(
    addr: str, path: str, message: bytes, metadata: list[tuple[bytes, bytes]], timeout: float = 10
) -> bool:
    """Send one call on stream 1; True when the server ended the stream with its trailers,
    False when it reset the stream or the connection."""
    host, port = addr.rsplit(":", 1)
    headers = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path.encode()),
        (b":authority", host.encode()),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        *metadata,
    ]
    block = b"".join(_literal(name, value) for name, value in headers)
    body = b"\x00" + struct.pack(">I", len(message)) + message
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(
            _PREFACE
            + _frame(_SETTINGS, 0, 0, b"")
            + _frame(_HEADERS, _END_HEADERS, 1, block)
            + _frame(_DATA, _END_STREAM, 1, body)
        )
        pending = b""
        while True:
            received = sock.recv(65536)
            if not received:
                return False
            pending += received
            while len(pending) >= 9:
                length = int.from_bytes(pending[:3], "big")
                if len(pending) < 9 + length:
                    break
                kind, flags = pending[3], pending[4]
                stream = int.from_bytes(pending[5:9], "big") & 0x7FFFFFFF
                pending = pending[9 + length :]
                if kind == _SETTINGS and not flags & _ACK:
                    sock.sendall(_frame(_SETTINGS, _ACK, 0, b""))
                elif kind == _HEADERS and stream == 1 and flags & _END_STREAM:
                    return True
                elif kind in (_RST_STREAM, _GOAWAY):
                    return False
