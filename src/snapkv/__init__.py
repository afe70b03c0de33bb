"""snapkv: a persistent in-memory key-value store for str keys and values.

::

    import snapkv

    with snapkv.open("data") as store:      # restores the newest snapshot
        store.set("greeting", "hello")
        store.get("greeting")               # 'hello'
    # leaving the block published a snapshot and released the directory

    snapkv.run_operations([("set", "a", "1"), ("shutdown",), ("restore",), ("get", "a")])
    # ['1']

The public surface is what this module exports; everything else is an
implementation detail. See docs/ARCHITECTURE.md for the module map.
"""

from __future__ import annotations

from snapkv import codec
from snapkv.errors import (
    CorruptSnapshotError,
    InvalidOperationError,
    MediumError,
    SnapkvError,
    StoreClosedError,
    StoreLockedError,
)
from snapkv.media import FileMedium, Medium, MemoryMedium
from snapkv.simulate import run_operations
from snapkv.store import RestoreReport, Store, open

__version__ = "0.1.0"

__all__ = [
    "CorruptSnapshotError",
    "FileMedium",
    "InvalidOperationError",
    "Medium",
    "MediumError",
    "MemoryMedium",
    "RestoreReport",
    "SnapkvError",
    "Store",
    "StoreClosedError",
    "StoreLockedError",
    "__version__",
    "codec",
    "open",
    "run_operations",
]
