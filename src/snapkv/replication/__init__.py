"""Continuous replication of a store directory to object storage: the public names.

``snapkv.open("data", replicate="s3://bucket/prefix")`` ships each published
snapshot and the journal, as segments, to the bucket (the layout is
:mod:`snapkv.objstore.layout`'s), at most ``replicate_interval`` behind.
:mod:`~snapkv.replication.source` reads the directory's files,
:mod:`~snapkv.replication.status` is ``store.replication``'s status,
:mod:`~snapkv.replication.shipper` the thread, :mod:`~snapkv.replication.target`
the writes in the layout, :mod:`~snapkv.replication.replicator` the start.
"""

from __future__ import annotations

from snapkv.replication.replicator import DEFAULT_INTERVAL, Replicator, replicate
from snapkv.replication.source import LocalSnapshot, LocalSource
from snapkv.replication.status import ReplicationStatus, replication_info

__all__ = [
    "DEFAULT_INTERVAL",
    "LocalSnapshot",
    "LocalSource",
    "ReplicationStatus",
    "Replicator",
    "replicate",
    "replication_info",
]
