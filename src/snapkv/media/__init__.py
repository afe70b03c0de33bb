"""Media: where snapshots and journals live. :class:`snapkv.media.base.Medium` is the contract."""

from __future__ import annotations

from snapkv.media.base import JournalFile, Medium
from snapkv.media.file import LOCK_NAME, FileMedium
from snapkv.media.memory import MemoryMedium

__all__ = ["LOCK_NAME", "FileMedium", "JournalFile", "Medium", "MemoryMedium"]
