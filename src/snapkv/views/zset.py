"""The view of a sorted set: ``store.zsets[key]``, member -> score with ranks and ranges."""

from __future__ import annotations

from typing import ClassVar

from snapkv.values import ValueType, zsets
from snapkv.views.base import View

__all__ = ["SortedSetView"]


class SortedSetView(View):
    """A sorted set at a key: members are ``str``, scores ``float``; each method one atomic step."""

    __slots__ = ()
    KIND: ClassVar[ValueType] = zsets
