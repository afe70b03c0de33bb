"""Views: the Python API of the value types, one module per type.

``store.hashes[key]`` (:class:`HashView`, a ``MutableMapping``),
``store.lists[key]`` (:class:`ListView`, deque-like),
``store.sets[key]`` (:class:`SetView`, a ``MutableSet``) and
``store.zsets[key]`` (:class:`SortedSetView`, member -> score with ranks
and ranges) and ``store.streams[key]`` (:class:`StreamView`, entries by ID).
See :mod:`snapkv.views.base` for what they share.
"""

from __future__ import annotations

from snapkv.views.base import View, Views
from snapkv.views.hash import HashView
from snapkv.views.list import ListView
from snapkv.views.set import SetView
from snapkv.views.stream import StreamView
from snapkv.views.zset import SortedSetView

__all__ = ["HashView", "ListView", "SetView", "SortedSetView", "StreamView", "View", "Views"]
