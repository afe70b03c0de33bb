"""The replication backlog: the stream's last ``repl-backlog-size`` bytes, by offset (Redis's).

A replica that reconnects says where it stopped (``PSYNC <replid> <offset>``);
when those bytes are still here it continues with ``+CONTINUE`` instead of a
full synchronisation. Offsets are Redis's: ``master_repl_offset`` counts
every byte ever fed to the stream, the first byte fed is offset 1, and
``first_byte_offset`` is the offset of the oldest byte kept.

The replication ID is 40 hex characters, new for each history;
``replid2``/``second_repl_offset`` are the previous ID and where it ended
(Redis keeps them after a failover; snapkv is never a replica, so they stay
at zero IDs and -1 until the history is restarted). Not thread-safe on its
own: the primary guards it with its lock.
"""

from __future__ import annotations

import secrets
from collections import deque

__all__ = ["ZERO_ID", "Backlog", "new_replid"]

ZERO_ID = "0" * 40


def new_replid() -> str:
    """A fresh replication ID (Redis's ``changeReplicationId``: 40 random hex characters)."""
    return secrets.token_hex(20)


class Backlog:
    """The stream's newest ``size`` bytes (at most), ending at ``offset`` (``master_repl_offset``).

    Kept as the pieces fed, oldest first: feeding appends one and drops the
    pieces that fall out whole, then cuts the oldest one to fit, so a write
    costs its own bytes, never a move of the whole backlog.
    """

    __slots__ = ("_held", "_pieces", "offset", "replid", "replid2", "second_offset", "size")

    def __init__(self, size: int, *, replid: str | None = None, offset: int = 0) -> None:
        self.size = max(1, size)
        self.replid = replid or new_replid()
        self.replid2 = ZERO_ID
        self.second_offset = -1
        #: ``master_repl_offset``: bytes fed to the stream since it began.
        self.offset = offset
        self._pieces: deque[bytes] = deque()
        self._held = 0

    @property
    def histlen(self) -> int:
        """Bytes kept (``repl_backlog_histlen``)."""
        return self._held

    @property
    def first_byte_offset(self) -> int:
        """Offset of the oldest byte kept (``repl_backlog_first_byte_offset``)."""
        return self.offset - self._held + 1

    def feed(self, data: bytes) -> None:
        """Append ``data`` to the stream, dropping the oldest bytes past ``size``."""
        self.offset += len(data)
        self._pieces.append(data)
        self._held += len(data)
        self._fit()

    def _fit(self) -> None:
        pieces = self._pieces
        while self._held - len(pieces[0]) >= self.size:
            self._held -= len(pieces.popleft())
        excess = self._held - self.size
        if excess > 0:
            pieces[0] = pieces[0][excess:]
            self._held -= excess

    def resize(self, size: int) -> None:
        """``CONFIG SET repl-backlog-size``: keep the newest bytes that fit."""
        self.size = max(1, size)
        if self._pieces:
            self._fit()

    def can_continue(self, replid: str, offset: int) -> bool:
        """Whether ``PSYNC replid offset`` continues from here (Redis's partial resync test).

        ``offset`` is the replica's next byte: its ``master_repl_offset + 1``.
        """
        if replid != self.replid and not (replid == self.replid2 and offset <= self.second_offset):
            return False
        return self.first_byte_offset <= offset <= self.offset + 1

    def since(self, offset: int) -> bytes:
        """The bytes from offset ``offset`` (the replica's next byte) to the end."""
        skip = offset - self.first_byte_offset
        if skip < 0:
            raise ValueError(f"offset {offset} is before the backlog ({self.first_byte_offset})")
        out: list[bytes] = []
        for piece in self._pieces:
            if skip >= len(piece):
                skip -= len(piece)
                continue
            out.append(piece[skip:] if skip else piece)
            skip = 0
        return b"".join(out)
