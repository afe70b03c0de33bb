"""MONITOR's feed: every command the server runs, as Redis's ``replicationFeedMonitors`` prints it.

A line is ``+<seconds>.<microseconds> [<db> <client>] "arg" "arg"...``:
the client is its address, ``lua`` for a script's ``redis.call``, or
``unix:<path>``; each argument is quoted as ``sdscatrepr`` quotes it
(``\\n``, ``\\r``, ``\\t``, ``\\a``, ``\\b``, ``\\\\``, ``\\"`` and ``\\xNN``
for other bytes outside printable ASCII). The dispatcher calls
:func:`feed_monitors` after each command it runs (``call()``), skipping
commands flagged ``skip_monitor`` or ``admin``, as Redis 7.0 does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from snapkv.server.resp.text import to_bytes

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState

__all__ = ["feed_monitors", "repr_arg"]

_ESCAPES = {
    ord("\\"): b"\\\\",
    ord('"'): b'\\"',
    ord("\n"): b"\\n",
    ord("\r"): b"\\r",
    ord("\t"): b"\\t",
    7: b"\\a",
    8: b"\\b",
}
#: Each byte as ``sdscatrepr`` writes it.
_REPR = [_ESCAPES.get(b, bytes([b]) if 32 <= b < 127 else b"\\x%02x" % b) for b in range(256)]


def repr_arg(arg: str) -> bytes:
    """``arg`` quoted as Redis's ``sdscatrepr`` (its wire bytes, escaped)."""
    raw = to_bytes(arg)
    if raw.isascii() and raw.isalnum():
        return b'"' + raw + b'"'
    return b'"' + b"".join([_REPR[b] for b in raw]) + b'"'


def feed_monitors(server: ServerState, client: Client, argv: list[str]) -> None:
    """Push ``argv`` (run by ``client``) to every MONITOR client (itself included, as Redis)."""
    now = time.time()
    if client.scripting:
        origin = b"lua"
    elif client.addr.startswith("/"):
        origin = b"unix:" + to_bytes(client.addr)
    else:
        origin = to_bytes(client.addr)
    line = b"+%d.%06d [%d %s] %s\r\n" % (
        int(now),
        int(now * 1_000_000) % 1_000_000,
        client.db_index,
        origin,
        b" ".join([repr_arg(arg) for arg in argv]),
    )
    for monitor in server.monitors:
        monitor.push(line)
