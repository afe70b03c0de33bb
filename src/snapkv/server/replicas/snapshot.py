"""A full synchronisation's snapshot: the Store's frozen copy as an RDB file, sent as read.

Written on its own thread (never the event loop's), handed piece by piece
to the loop, which pushes it to the replica's connection. Apart from
:mod:`snapkv.server.replicas.primary` because it is its own concern: the
file's framing (``$EOF:`` or one bulk) and the pace, bounded by what the
replica has read (Redis's fork child blocks on its pipe the same way).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from snapkv.rdb.file import RDBWriter
from snapkv.server.replicas.link import Link, unsent

if TYPE_CHECKING:
    from snapkv.server.client import Client
    from snapkv.server.state import ServerState
    from snapkv.tap import FrozenCopy

__all__ = ["AHEAD", "Owner", "send_snapshot"]

log = logging.getLogger("snapkv.server")

#: Snapshot bytes a replica's connection may hold unsent before the snapshot's thread waits.
AHEAD = 4 * 1024 * 1024
#: How often a waiting snapshot looks at its replica's connection again (seconds).
_DRAIN_POLL = 0.01


class Owner(Protocol):
    """What a snapshot needs of the primary that sends it (:class:`~.primary.Primary`)."""

    server: ServerState
    links: list[Link]

    def call_on_loop(self, call: Any) -> bool: ...
    def drop(self, link: Link, why: str) -> None: ...
    def forget(self, client: Client) -> None: ...
    def snapshot_sent(self, link: Link, end: bytes) -> None: ...
    def snapshot_whole(self, link: Link, pieces: list[bytes]) -> None: ...


class _Gone(Exception):
    """The replica of a snapshot being written went away (or the server stopped)."""


def send_snapshot(owner: Owner, link: Link, copy: FrozenCopy, replid: str, offset: int) -> None:
    """The frozen copy as an RDB file (on its own thread), handed to the loop as it comes.

    A replica that said ``capa eof`` (every Redis since 2.8.18) gets the
    file as it is written, framed as Redis's diskless sync frames it
    (``$EOF:<40 random characters>``, the file, the same 40 characters);
    an older one gets ``$<length>`` once the whole file is written.

    Streamed, the file goes no faster than the replica reads it: after
    each piece the thread waits until at most :data:`AHEAD` bytes are
    unsent (Redis's child blocks on its pipe the same way), so a slow
    replica costs that much memory, not the whole file; one that reads
    nothing for ``repl-timeout`` is dropped, and the snapshot stops.
    """
    pieces: list[bytes] = []
    streamed = "eof" in link.capa
    end = b""
    if streamed:
        end = secrets.token_hex(20).encode()
        head = b"$EOF:" + end + b"\r\n"
        owner.call_on_loop(lambda: _bulk(owner, link, head))

    def sink(piece: bytes) -> None:
        if not streamed:
            pieces.append(piece)
            return
        room = threading.Event()
        if not owner.call_on_loop(lambda: _bulk(owner, link, piece, room)):
            raise _Gone
        while not room.wait(1.0):
            if not owner.call_on_loop(lambda: None):  # the server stopped
                raise _Gone
        if link not in owner.links:
            raise _Gone

    try:
        aux = {"repl-stream-db": "0", "repl-id": replid, "repl-offset": str(offset)}
        writer = RDBWriter(sink, aux=aux)
        for db, keys, values, expires in copy.spaces:
            writer.select_db(db, len(keys), len(expires) if expires else 0)
            for key, value in zip(keys, values, strict=True):
                at = expires.get(key) if expires else None
                writer.entry(key, value, at)
        writer.finish()
    except _Gone:
        return  # the replica went: no one to write the rest for
    except Exception:
        if owner.call_on_loop(lambda: owner.drop(link, "after a failed snapshot.")):
            log.exception("Replica %s: the snapshot for its full resync failed", link.name())
        return
    finally:
        copy.release()
    if streamed:
        owner.call_on_loop(lambda: owner.snapshot_sent(link, end))
    else:
        pieces.insert(0, b"$%d\r\n" % sum(len(piece) for piece in pieces))
        owner.call_on_loop(lambda: owner.snapshot_whole(link, pieces))


def _bulk(owner: Owner, link: Link, piece: bytes, room: threading.Event | None = None) -> None:
    if link in owner.links:
        link.send_snapshot(piece)
    if room is not None:
        _when_drained(owner, link, room, time.monotonic(), -1)


def _when_drained(owner: Owner, link: Link, room: threading.Event, since: float, last: int) -> None:
    """Set ``room`` once ``link`` holds at most :data:`AHEAD` unsent bytes, or is gone.

    On the loop, every :data:`_DRAIN_POLL` seconds while it waits: a
    replica whose unsent bytes do not go down for ``repl-timeout``
    seconds is dropped (Redis's "timedout replica (full sync)").
    """
    size = unsent(link.client)
    later = owner.server.call_later
    if link not in owner.links or size <= AHEAD or later is None:
        room.set()
        return
    now = time.monotonic()
    if size != last:
        since = now
    elif now - since > owner.server.config.repl_timeout:
        log.warning("Disconnecting timedout replica (full sync): %s", link.name())
        owner.forget(link.client)
        link.client.kill()
        room.set()
        return
    later(_DRAIN_POLL, lambda: _when_drained(owner, link, room, since, size))
