"""Media: where snapshots live. See :class:`snapkv.media.base.Medium` for the contract."""

from __future__ import annotations

from snapkv.media.base import Medium
from snapkv.media.file import FileMedium
from snapkv.media.memory import MemoryMedium

__all__ = ["FileMedium", "Medium", "MemoryMedium"]
