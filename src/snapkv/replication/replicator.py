"""Starting and stopping replication of one store directory: :func:`replicate`.

``snapkv.open("data", replicate=URL)`` and ``snapkv serve --replicate URL``
come down to this: a :class:`Replicator` over the directory, its shipper
thread running until :meth:`Replicator.close`, its status readable at any
time. It reads only the directory's files (:mod:`~snapkv.replication.source`),
so it works beside any Store on that directory and costs the write path
nothing.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Mapping

from snapkv.media.file import REPLICA_NAME
from snapkv.replication.shipper import Shipper
from snapkv.replication.source import LocalSource
from snapkv.replication.status import ReplicationStatus, register, unregister
from snapkv.replication.target import MediumTarget

__all__ = ["DEFAULT_INTERVAL", "REPLICA_ID_NAME", "Replicator", "replica_id", "replicate"]

log = logging.getLogger("snapkv.replication")

#: Seconds the bucket may be behind the directory (``replicate_interval``).
DEFAULT_INTERVAL = 1.0
#: The file (next to ``LOCK``) holding the directory's replica writer id. Not a
#: name FileMedium ever removes (it removes only its own ``.tmp-`` files).
REPLICA_ID_NAME = REPLICA_NAME
_ID = re.compile(r"[0-9a-f]{16}")


def replica_id(directory: str | os.PathLike[str]) -> str:
    """The directory's replica writer id: read from :data:`REPLICA_ID_NAME`, made once if absent.

    Stable across restarts so that the shipper takes over only its own
    earlier run (a killed process's prefix, at once) and never another
    writer's, such as a promoted replica opened directly
    (:class:`~snapkv.replication.target.MediumTarget`). Created by a link
    from a complete temporary file, so a crash leaves either no id or a
    whole one, and two starters agree on one.
    """
    path = os.path.join(os.fspath(directory), REPLICA_ID_NAME)
    for _ in range(2):
        try:
            with open(path, encoding="ascii") as file:
                text = file.read().strip()
        except FileNotFoundError:
            pass
        else:
            if _ID.fullmatch(text):
                return text
            raise ValueError(f"{path}: not a replica id ({text[:40]!r}); remove it to make one")
        temporary = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        with open(temporary, "w", encoding="ascii") as file:
            file.write(uuid.uuid4().hex[:16] + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another starter's id won: read it
        finally:
            os.unlink(temporary)
    raise RuntimeError(f"{path}: cannot read or make the replica id")


class Replicator:
    """One directory shipped to one URL by a background thread; see :func:`replicate`."""

    def __init__(self, shipper: Shipper) -> None:
        self._shipper = shipper
        self.directory = shipper.source.directory
        #: The live status (lag, last upload, failures, requests, bytes, retries).
        self.status: ReplicationStatus = shipper.status
        self._closed = False

    def flush(self) -> bool:
        """Ship what the directory holds now, in this thread; return whether all of it went."""
        return self._shipper.tick()

    def close(self, *, final: bool = True) -> None:
        """Stop the thread; with ``final`` first ship what is left (never raises for the bucket)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._shipper.stop(final=final)
        finally:
            unregister(self.directory, self.status)
        log.info(
            "replication to %s stopped: %d uploads, %d bytes, %d requests, %d retries, lag %.3f s",
            self.status.url,
            self.status.uploads,
            self.status.bytes_sent,
            self.status.requests,
            self.status.retries,
            self.status.lag,
        )

    def __repr__(self) -> str:
        return f"<Replicator {self.status.url} lag={self.status.lag:.3f}s>"


def replicate(
    directory: str | os.PathLike[str],
    url: str,
    *,
    interval: float = DEFAULT_INTERVAL,
    storage_options: Mapping[str, object] | None = None,
) -> Replicator:
    """Ship ``directory``'s snapshots and journal to ``url``, at most ``interval`` seconds behind.

    Returns at once (the first upload happens on the shipper's thread): a
    bucket that cannot be reached is reported in ``status``, never raised.

    :raises ValueError: ``url`` is not an object-store URL, or ``interval`` is not positive.
    :raises ImportError: obstore (the ``cloud`` extra) is not installed.
    """
    if not isinstance(interval, int | float) or not interval > 0:
        raise ValueError(
            f"replicate_interval must be a positive number of seconds, not {interval!r}"
        )
    from snapkv.objstore.client import ObjectClient  # noqa: PLC0415 - the cloud extra
    from snapkv.objstore.url import parse_url  # noqa: PLC0415

    client = ObjectClient.for_location(parse_url(url, storage_options))
    status = ReplicationStatus(url=client.describe(), interval=float(interval))
    target = MediumTarget(client, replica=replica_id(directory))
    shipper = Shipper(LocalSource(directory), target, status, float(interval))
    shipper.start()
    register(directory, status)
    log.info("replicating %s to %s every %.3g s", os.fspath(directory), status.url, interval)
    return Replicator(shipper)
