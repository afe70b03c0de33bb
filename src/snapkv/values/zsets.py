"""Sorted sets: a key holding ``str`` members with float scores (Redis's ``t_zset.c``).

The container is :class:`ZSet`: a dict member -> score for O(1) ZSCORE and
a ``sortedcontainers.SortedList`` of ``(score, member)`` for O(log n)
insert, remove and rank and O(log n + m) ranges, ordered as Redis orders a
sorted set: by score, then by member. Scores are IEEE doubles; NaN never
enters (the callers refuse it, as Redis does).

Effects (the journal's EDIT records for a sorted set, docs/FORMAT.md J3):

* ``OP_ADD`` items ``score, member, score, member, ...``: the members now
  have these scores (ZADD and ZINCRBY record the score they wrote).
* ``OP_REM`` items ``member, ...``: the members are gone (ZPOPMIN and
  friends record the members they took).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from sortedcontainers import SortedList

from snapkv.values.base import Item, Items, epoch

__all__ = [
    "CLASS",
    "CODE",
    "NAME",
    "OP_ADD",
    "OP_REM",
    "ZSet",
    "apply",
    "build",
    "copy",
    "flat",
    "inverse",
    "size",
]

CODE = 4
NAME = "zset"
OP_ADD = 1
OP_REM = 2


class ZSet:
    """Members with scores, ordered by (score, member); ``epoch`` as every container's."""

    __slots__ = ("epoch", "order", "scores")

    def __init__(self, pairs: Any = ()) -> None:
        #: member -> score
        self.scores: dict[str, float] = {}
        #: (score, member), ascending
        self.order: SortedList = SortedList()
        self.epoch = epoch()
        for score, member in pairs:
            self.add(member, score)

    def add(self, member: str, score: float) -> None:
        """Give ``member`` the score ``score`` (adding it if new)."""
        scores = self.scores
        old = scores.get(member)
        if old is not None:
            if old == score:
                return
            self.order.remove((old, member))
        scores[member] = score
        self.order.add((score, member))

    def discard(self, member: str) -> bool:
        """Remove ``member``; return whether it was there."""
        old = self.scores.pop(member, None)
        if old is None:
            return False
        self.order.remove((old, member))
        return True

    def __len__(self) -> int:
        return len(self.scores)

    def __bool__(self) -> bool:
        return bool(self.scores)

    def __contains__(self, member: object) -> bool:
        return member in self.scores

    def __iter__(self) -> Iterator[tuple[float, str]]:
        """``(score, member)`` pairs in order."""
        return iter(self.order)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ZSet) and self.scores == other.scores

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ZSet({list(self.order)!r})"


CLASS = ZSet


def _pairs(items: Items) -> list[tuple[float, str]]:
    if len(items) % 2:
        raise ValueError(f"a sorted set ADD effect has {len(items)} items, not score/member pairs")
    pairs = list(zip(items[0::2], items[1::2], strict=True))
    for score, member in pairs:
        if type(score) is not float or math.isnan(score) or type(member) is not str:
            raise ValueError(f"a sorted set ADD pair is ({score!r}, {member!r})")
    return pairs  # type: ignore[return-value]


def apply(value: ZSet | None, opcode: int, items: Items) -> ZSet | None:
    """Apply one sorted set effect (see the module docstring); ``None`` when it left no member."""
    if opcode == OP_ADD:
        pairs = _pairs(items)
        if value is None:
            value = ZSet()
        for score, member in pairs:
            value.add(member, score)
        return value or None
    if opcode == OP_REM:
        if value is not None:
            for gone in items:
                value.discard(gone)  # type: ignore[arg-type]
        return value or None
    raise ValueError(f"sorted set effect opcode {opcode} is not one of {OP_ADD}, {OP_REM}")


def inverse(value: ZSet | None, opcode: int, items: Items) -> list[tuple[int, tuple[Item, ...]]]:
    """What undoes a sorted set effect on ``value``: old scores back, new members removed."""
    scores = value.scores if value is not None else {}
    members = items[1::2] if opcode == OP_ADD else items
    restore: list[Item] = []
    remove: list[Item] = []
    for member in dict.fromkeys(members):
        old = scores.get(member)  # type: ignore[arg-type]
        if old is None:
            remove.append(member)
        else:
            restore += (old, member)
    undo: list[tuple[int, tuple[Item, ...]]] = []
    if remove and opcode == OP_ADD:
        undo.append((OP_REM, tuple(remove)))
    if restore:
        undo.append((OP_ADD, tuple(restore)))
    return undo


def flat(value: ZSet) -> list[Item]:
    """``score, member, score, member, ...`` in order."""
    out: list[Item] = []
    for pair in value.order:
        out += pair
    return out


def build(items: Items) -> ZSet:
    """A sorted set from ``score, member, ...`` items."""
    made = apply(None, OP_ADD, items)
    if made is None:
        raise ValueError("a sorted set has at least one member")
    return made


def copy(value: ZSet) -> ZSet:
    """An independent copy in the current epoch."""
    made = ZSet()
    made.scores = dict(value.scores)
    made.order = SortedList(value.order)
    return made


def size(value: ZSet) -> int:
    """The number of members."""
    return len(value)
