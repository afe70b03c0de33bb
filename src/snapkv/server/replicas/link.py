"""One attached replica: its state, what it was sent and acknowledged, its output bound.

A replica is a client connection that sent SYNC or PSYNC (Redis's
``CLIENT_SLAVE``). Its states are Redis's ``SLAVE_STATE_*`` as INFO names
them: ``wait_bgsave`` until its snapshot starts, ``send_bulk`` while it
goes out (the stream after the snapshot's offset is buffered here, in
:attr:`Link.buffered`), then ``online``: the stream goes to its connection
as it comes.

Output bound: Redis's ``client-output-buffer-limit replica`` (hard, soft,
seconds), over the stream the connection has not yet sent (the snapshot's
bulk is not counted, as Redis's RDB transfer is not) plus what is buffered
during the snapshot; a replica over it is dropped with Redis's log line,
and reconnects (a partial resync if the backlog still holds its offset).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snapkv.server.client import Client

__all__ = ["Link", "unsent"]

log = logging.getLogger("snapkv.server")


def unsent(client: Client) -> int:
    """Bytes written to ``client``'s connection and not yet taken by the socket.

    Read through the connection that ``client.kill`` is bound to (the
    network layer binds it to ``Connection.close``): 0 for a client
    without a connection.
    """
    connection = getattr(client.kill, "__self__", None)
    transport = getattr(connection, "transport", None)
    if transport is None:
        return 0
    size: int = transport.get_write_buffer_size()
    return size


class Link:
    """What the primary keeps about one replica (Redis's replica fields of ``client``)."""

    __slots__ = (
        "ack_offset",
        "ack_time",
        "buffered",
        "buffered_size",
        "bulk",
        "capa",
        "client",
        "ip",
        "listening_port",
        "online_on_ack",
        "pre_psync",
        "pushed",
        "sent",
        "soft_since",
        "state",
    )

    def __init__(self, client: Client, *, ip: str, port: int, capa: set[str]) -> None:
        self.client = client
        self.ip = ip
        #: REPLCONF listening-port (0 when the replica did not say).
        self.listening_port = port
        self.capa = capa
        #: ``wait_bgsave``, ``send_bulk`` (its snapshot going out) or ``online``.
        self.state = "wait_bgsave"
        #: The stream's offset up to which this replica was given bytes.
        self.sent = 0
        #: Its last REPLCONF ACK offset, and when (``time.monotonic()``) it came.
        self.ack_offset = 0
        self.ack_time = time.monotonic()
        #: The stream after its snapshot's offset, while the snapshot is written.
        self.buffered: list[bytes] = []
        self.buffered_size = 0
        self.soft_since: float | None = None
        #: Bytes handed to the connection since the snapshot, the snapshot's bulk among them.
        self.pushed = 0
        self.bulk = 0
        #: The snapshot went out ``$EOF:``-framed: the stream waits for its first ACK.
        self.online_on_ack = False
        #: Attached by SYNC: the old protocol sends no ACK, so it is never timed out.
        self.pre_psync = False

    def deliver(self, start: int, data: bytes) -> None:
        """The stream's bytes from offset ``start + 1``; what this replica has is skipped."""
        skip = self.sent - start
        if skip >= len(data):
            return
        piece = data[skip:] if skip > 0 else data
        self.sent += len(piece)
        if self.state == "online":
            self.pushed += len(piece)
            self.client.push(piece)
        else:
            self.buffered.append(piece)
            self.buffered_size += len(piece)

    def send_snapshot(self, piece: bytes) -> None:
        """A piece of the snapshot's bulk, straight to the connection (``send_bulk``)."""
        self.state = "send_bulk"
        self.bulk += len(piece)
        self.pushed += len(piece)
        self.client.push(piece)

    def go_online(self) -> None:
        """The snapshot is sent: the stream buffered since follows it, and the stream goes live."""
        self.state = "online"
        self.ack_time = time.monotonic()  # repl-timeout counts from here (Redis's)
        if self.buffered:
            data = b"".join(self.buffered)
            self.buffered = []
            self.buffered_size = 0
            self.pushed += len(data)
            self.client.push(data)

    def over_limit(self, limits: tuple[int, int, int]) -> bool:
        """Whether this replica's unsent output passed ``client-output-buffer-limit replica``."""
        hard, soft, seconds = limits
        if not (hard or soft):
            return False
        # The snapshot's bulk does not count, as Redis sends its RDB apart from
        # the output buffer: the socket drains in order, so of what is unsent
        # at most ``pushed - bulk`` bytes are the stream's.
        size = min(unsent(self.client), self.pushed - self.bulk) + self.buffered_size
        if hard and size >= hard:
            return True
        if soft and size >= soft:
            now = time.monotonic()
            if self.soft_since is None:
                self.soft_since = now
            return now - self.soft_since > seconds
        self.soft_since = None
        return False

    def name(self) -> str:
        """The replica as Redis's log lines name it: ``ip:port``."""
        return f"{self.ip}:{self.listening_port}"
