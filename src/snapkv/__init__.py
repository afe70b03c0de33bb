"""snapkv: a persistent in-memory key-value store for str keys and values.

::

    import snapkv

    with snapkv.open("data") as store:      # restores snapshot + journal
        store.set("greeting", "hello")      # in the journal before it returns
        store.get("greeting")               # 'hello'
        store.db(1).set("session", "x", ttl=60)   # keyspace 1, expires in 60 s
    # leaving the block published a snapshot and released the directory

    db = snapkv.open("data")                # as dbm.open: no with block needed
    db["k"] = "v"
    db.close()                              # "k" is kept (journal=False: close saves)

    snapkv.run_operations([("set", "a", "1"), ("shutdown",), ("restore",), ("get", "a")])
    # ['1']

The public surface is what this module exports; everything else is an
implementation detail. See docs/ARCHITECTURE.md for the module map.
"""

from __future__ import annotations

from snapkv import codec
from snapkv.errors import (
    CorruptJournalError,
    CorruptSnapshotError,
    InvalidOperationError,
    MediumError,
    NoSpaceError,
    SnapkvError,
    StoreClosedError,
    StoreFencedError,
    StoreLockedError,
    StoreShutDownError,
    TransactionError,
    WrongTypeError,
)
from snapkv.media import FileMedium, Medium, MemoryMedium
from snapkv.opening import open
from snapkv.simulate import run_operations
from snapkv.store import Keyspace, RestoreReport, Store
from snapkv.views import HashView, ListView, SetView, SortedSetView

__version__ = "0.2.0"

__all__ = [
    "CorruptJournalError",
    "CorruptSnapshotError",
    "FileMedium",
    "HashView",
    "InvalidOperationError",
    "Keyspace",
    "ListView",
    "Medium",
    "MediumError",
    "MemoryMedium",
    "NoSpaceError",
    "RestoreReport",
    "SetView",
    "SnapkvError",
    "SortedSetView",
    "Store",
    "StoreClosedError",
    "StoreFencedError",
    "StoreLockedError",
    "StoreShutDownError",
    "TransactionError",
    "WrongTypeError",
    "__version__",
    "codec",
    "open",
    "run_operations",
]
