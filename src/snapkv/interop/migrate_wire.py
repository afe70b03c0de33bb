"""The hot path of a migration's traffic: a page of commands packed once and sent in one write.

Why not redis-py's pipeline for this: it encodes every argument through
its generic encoder and builds each reply's bookkeeping, which measured at
about two thirds of a migration's time (a page of 1,000 RESTOREs: ~50 ms
of packing against a few ms on the wire). Here a command is packed by one
join over bytes the caller already has, the page goes out in one
``sendall``, and the replies are read back one by one with the
connection's own parser (hiredis when installed), on a connection taken
from and returned to the client's pool, so authentication, TLS, the
database and reconnection stay redis-py's. Everything else (SCAN, INFO,
the typed commands, cluster topology) goes through redis-py's API.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.exceptions import ResponseError

__all__ = ["Pending", "head", "pack", "pack_key", "pack_key_value", "roundtrip"]


def pack(*args: bytes) -> bytes:
    """One command in RESP (an array of bulk strings)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts += (b"$%d\r\n" % len(arg), arg, b"\r\n")
    return b"".join(parts)


def head(name: bytes, arity: int) -> bytes:
    """The start of every ``name`` command of ``arity`` arguments (name included), made once."""
    return b"*%d\r\n$%d\r\n%s\r\n" % (arity, len(name), name)


def pack_key(start: bytes, key: bytes) -> bytes:
    """``DUMP key`` and the like from their :func:`head`: one formatting, a third of
    :func:`pack`'s time, which counts at a few commands per key."""
    return b"%s$%d\r\n%s\r\n" % (start, len(key), key)


def pack_key_value(start: bytes, key: bytes, value: bytes) -> bytes:
    """``SET key value`` from its :func:`head` (see :func:`pack_key`)."""
    return b"%s$%d\r\n%s\r\n$%d\r\n%s\r\n" % (start, len(key), key, len(value), value)


class Pending:
    """Commands sent on a connection of ``client``'s pool, their replies not yet read.

    Sending to every node of a cluster before reading any reply lets the
    nodes work at once instead of one after another.
    """

    def __init__(self, client: redis.Redis, packed: list[bytes]) -> None:
        self._pool = client.connection_pool
        self._conn = self._pool.get_connection()
        self._count = len(packed)
        try:
            self._conn.send_packed_command([b"".join(packed)], check_health=False)  # type: ignore[no-untyped-call]
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        self._conn.disconnect()  # type: ignore[no-untyped-call]
        self._pool.release(self._conn)

    def replies(self) -> list[Any]:
        """One reply per command, an error reply as its exception; the connection back.

        :raises redis.exceptions.ConnectionError: the connection broke; it is
            dropped (not returned to the pool half read).
        """
        replies: list[Any] = []
        try:
            for _ in range(self._count):
                try:
                    replies.append(self._conn.read_response(disable_decoding=True))
                except ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            self._drop()
            raise
        self._pool.release(self._conn)
        return replies


def roundtrip(client: redis.Redis, packed: list[bytes]) -> list[Any]:
    """Send ``packed`` (one command each) at once and read their replies (:class:`Pending`)."""
    return Pending(client, packed).replies()
