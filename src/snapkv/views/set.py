"""The view of a set: ``store.sets[key]``, a ``MutableSet`` of members."""

from __future__ import annotations

from typing import ClassVar

from snapkv.values import ValueType, sets
from snapkv.views.base import View

__all__ = ["SetView"]


class SetView(View):
    """A set at a key: members are ``str``; each method is one atomic step."""

    __slots__ = ()
    KIND: ClassVar[ValueType] = sets
