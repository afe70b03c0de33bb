"""The view of a list: ``store.lists[key]``, deque-like with index access."""

from __future__ import annotations

from typing import ClassVar

from snapkv.values import ValueType, lists
from snapkv.views.base import View

__all__ = ["ListView"]


class ListView(View):
    """A list at a key: elements are ``str``; each method is one atomic step."""

    __slots__ = ()
    KIND: ClassVar[ValueType] = lists
