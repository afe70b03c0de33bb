"""The real thing to compare with: redis-server 7.0 on a free loopback port, and raw replies.

``snapkv serve`` answers as Redis 7.0 does, byte for byte where the protocol
allows. The tests that check a command family do so against the reference
itself: the same request goes to a redis-server the tests start (Debian's,
installed by scripts/test-deps.sh) and to snapkv's dispatcher, and the raw
reply bytes are compared. Locally, without redis-server on PATH, those
tests skip; under CI a missing redis-server fails them.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from serving import DEADLINE, free_port, tool
from support import wait_until


def request(*argv: str | bytes) -> bytes:
    """``argv`` as a RESP multibulk request (str arguments as UTF-8 with surrogateescape)."""
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        data = arg if isinstance(arg, bytes) else arg.encode("utf-8", "surrogateescape")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def reply_end(buf: bytes, pos: int = 0) -> int:
    """The offset just past the one whole reply starting at ``pos`` (-1: not all there yet)."""
    line_end = buf.find(b"\r\n", pos)
    if line_end < 0:
        return -1
    kind, head = buf[pos : pos + 1], buf[pos + 1 : line_end]
    nxt = line_end + 2
    if kind in b"+-:,_#(":
        return nxt
    if kind in b"$!=":
        length = int(head)
        if length < 0:
            return nxt
        end = nxt + length + 2
        return end if len(buf) >= end else -1
    if kind in b"*~>%|":
        count = int(head)
        if count < 0:
            return nxt
        if kind in b"%|":
            count *= 2
        for _ in range(count):
            nxt = reply_end(buf, nxt)
            if nxt < 0:
                return -1
        return nxt
    raise ValueError(f"not a RESP reply at {pos}: {buf[pos : pos + 20]!r}")


def parse(reply: bytes) -> Any:
    """A RESP2/RESP3 reply as Python values (aggregates as lists; errors as bytes)."""
    value, end = _parse(reply, 0)
    assert end == len(reply)
    return value


def _parse(buf: bytes, pos: int) -> tuple[Any, int]:
    line_end = buf.index(b"\r\n", pos)
    kind, head = buf[pos : pos + 1], buf[pos + 1 : line_end]
    nxt = line_end + 2
    if kind in b"+-,":
        return head, nxt
    if kind == b":":
        return int(head), nxt
    if kind == b"_":
        return None, nxt
    if kind == b"$":
        size = int(head)
        if size < 0:
            return None, nxt
        return buf[nxt : nxt + size], nxt + size + 2
    count = int(head)
    if count < 0:
        return None, nxt
    if kind == b"%":
        count *= 2
    items = []
    for _ in range(count):
        item, nxt = _parse(buf, nxt)
        items.append(item)
    return items, nxt


class Raw:
    """A plain socket to a server: ``raw("HGET", "k", "f")`` returns the reply's bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buf = b""

    def __call__(self, *argv: str | bytes) -> bytes:
        self.sock.sendall(request(*argv))
        while (end := reply_end(self.buf)) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buf += chunk
        reply, self.buf = self.buf[:end], self.buf[end:]
        return reply

    def close(self) -> None:
        self.sock.close()


@contextmanager
def redis_server(directory: Path, *args: str) -> Iterator[int]:
    """A redis-server on a free loopback port, persisting nothing; yields its port."""
    binary = tool("redis-server")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def answers() -> bool:
            try:
                raw = Raw(port)
            except OSError:
                return False
            try:
                return raw("PING") == b"+PONG\r\n"
            finally:
                raw.close()

        wait_until(answers, timeout=DEADLINE, what="redis-server to answer PING")
        yield port
    finally:
        process.kill()
        process.wait(timeout=DEADLINE)
