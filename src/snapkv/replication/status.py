"""How far the bucket is behind, and what shipping it has cost: ``store.replication``.

One object per shipper, updated by its thread and read by anyone (INFO, a
monitoring loop, a test): every field is a plain attribute replaced whole,
so a reader sees each value either before or after an update, never torn.
:meth:`ReplicationStatus.fields` is the INFO section's content, in one
place, so the server and ``repr`` say the same thing with the same names.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReplicationStatus", "register", "replication_info", "unregister"]

#: The statuses of the shippers running in this process, by directory (its real path):
#: how the server's INFO finds the shipper ``serve --replicate`` started beside it.
_RUNNING: dict[str, ReplicationStatus] = {}
_RUNNING_LOCK = threading.Lock()


@dataclass
class ReplicationStatus:
    """What the shipper of one store to one URL has done so far.

    ``lag`` is how far behind the bucket may be, as of the shipper's last
    look: the time since the start of the last pass that got through, when
    that pass found writes to ship (more may have come in since) or when a
    pass has failed since; 0.0 when the last pass found nothing new (an idle
    store). So a busy store shows a sawtooth from 0 to about one interval
    plus one upload; an unreachable bucket makes it grow, and the first pass
    that gets through brings it back down.
    """

    url: str
    interval: float
    #: Whether the shipper's thread is running.
    running: bool = False
    #: Monotonic time at which the last pass that got through began.
    caught_up_at: float = field(default_factory=time.monotonic)
    #: Whether writes may be missing from the bucket (see ``lag``).
    behind: bool = False
    #: Wall-clock time (seconds since the epoch) of the last successful upload; 0.0: none yet.
    last_upload: float = 0.0
    #: The snapshot generation number and the journal position the bucket holds.
    snapshot: int = 0
    journal: int = 0
    journal_offset: int = 0
    #: Objects uploaded (snapshots, segments, manifests) and their bytes.
    uploads: int = 0
    bytes_sent: int = 0
    #: Requests made (every kind, retries included) and retries among them.
    requests: int = 0
    retries: int = 0
    #: Ticks that failed (every one counted) and how many in a row, now.
    failures: int = 0
    consecutive_failures: int = 0
    #: The last failure's message ("" once a tick succeeds again).
    last_error: str = ""

    @property
    def lag(self) -> float:
        """Seconds the bucket may be behind the local store (0.0 when it is not)."""
        if not self.behind:
            return 0.0
        return max(0.0, time.monotonic() - self.caught_up_at)

    def fields(self) -> dict[str, object]:
        """The status as ``name: value`` pairs, for INFO and logs."""
        return {
            "replication_url": self.url,
            "replication_running": int(self.running),
            "replication_interval": self.interval,
            "replication_lag_seconds": round(self.lag, 3),
            "replication_last_upload": int(self.last_upload),
            "replication_snapshot": self.snapshot,
            "replication_journal": self.journal,
            "replication_journal_offset": self.journal_offset,
            "replication_uploads": self.uploads,
            "replication_bytes_sent": self.bytes_sent,
            "replication_requests": self.requests,
            "replication_retries": self.retries,
            "replication_failures": self.failures,
            "replication_consecutive_failures": self.consecutive_failures,
            "replication_last_error": self.last_error.replace("\n", " ").replace("\r", " "),
        }


def _key(directory: str | os.PathLike[str]) -> str:
    return os.path.realpath(directory)


def register(directory: str | os.PathLike[str], status: ReplicationStatus) -> None:
    """Announce the shipper of ``directory`` (see :func:`replication_info`)."""
    with _RUNNING_LOCK:
        _RUNNING[_key(directory)] = status


def unregister(directory: str | os.PathLike[str], status: ReplicationStatus) -> None:
    """Withdraw ``status`` (only it: a newer shipper of the directory stays)."""
    with _RUNNING_LOCK:
        if _RUNNING.get(_key(directory)) is status:
            del _RUNNING[_key(directory)]


def replication_info(server: Any) -> dict[str, object]:
    """INFO's replication fields for ``server`` (a ServerState): ``{}`` without a shipper.

    The shipper is found by the server's data directory (``data_dir``), so
    the server needs no reference to it.
    """
    directory = getattr(server, "data_dir", None)
    if not directory:
        return {}
    with _RUNNING_LOCK:
        status = _RUNNING.get(_key(directory))
    return status.fields() if status is not None else {}
