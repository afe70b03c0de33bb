"""Lists: a key holding a sequence of ``str`` (Redis's ``t_list.c``).

The container is :class:`List`, a deque with an epoch (see :mod:`.base`):
O(1) at both ends, O(n) towards the middle, as Redis's quicklist.
Effects (the journal's EDIT records for a list, docs/FORMAT.md J3):

* ``OP_PUSH_LEFT`` items ``value, ...``: pushed at the head one after the
  other (so the last is first), as LPUSH.
* ``OP_PUSH_RIGHT`` items ``value, ...``: appended at the tail in order.
* ``OP_POP_LEFT`` / ``OP_POP_RIGHT`` items ``value, ...``: these values
  left the head (tail), in the order they left. Replay checks each one, so
  a journal that disagrees with the list is refused, never applied blind.
* ``OP_SPLICE`` items ``index, count, value, ...``: the ``count`` elements
  from ``index`` (0-based, from the head) were replaced by the values
  (LSET: one by one; LINSERT: none by one).
* ``OP_REMOVE`` items ``index, ...``: the elements at these indices (of the
  list before the removal, increasing) were removed (LREM).
* ``OP_TRIM`` items ``start, count``: only the ``count`` elements from
  ``start`` are left (LTRIM).
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from snapkv.values.base import Item, Items, epoch

__all__ = [
    "CLASS",
    "CODE",
    "NAME",
    "OP_POP_LEFT",
    "OP_POP_RIGHT",
    "OP_PUSH_LEFT",
    "OP_PUSH_RIGHT",
    "OP_REMOVE",
    "OP_SPLICE",
    "OP_TRIM",
    "List",
    "apply",
    "build",
    "copy",
    "flat",
    "inverse",
    "size",
]

CODE = 2
NAME = "list"
OP_PUSH_LEFT = 1
OP_PUSH_RIGHT = 2
OP_POP_LEFT = 3
OP_POP_RIGHT = 4
OP_SPLICE = 5
OP_REMOVE = 6
OP_TRIM = 7

Undo = list[tuple[int, tuple[Item, ...]]]


class List(deque[str]):
    """A list's elements, head first; ``epoch`` is the save epoch it was made in."""

    __slots__ = ("epoch",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.epoch = epoch()


CLASS = List


def _ints(items: Items, count: int, what: str) -> list[int]:
    head = list(items[:count])
    if len(head) < count or any(type(i) is not int for i in head):
        raise ValueError(f"a list {what} effect starts with {count} integers")
    return head  # type: ignore[return-value]


def apply(value: List | None, opcode: int, items: Items) -> List | None:
    """Apply one list effect (see the module docstring); ``None`` when it left no element."""
    if opcode in (OP_PUSH_LEFT, OP_PUSH_RIGHT):
        if value is None:
            value = List()
        if opcode == OP_PUSH_LEFT:
            value.extendleft(items)  # type: ignore[arg-type]
        else:
            value.extend(items)  # type: ignore[arg-type]
        return value or None
    if value is None:
        if opcode != OP_SPLICE:
            raise ValueError(f"a list effect (opcode {opcode}) on a missing list")
        value = List()  # an insert into an empty list (an undo of a removal may make one)
    n = len(value)
    if opcode in (OP_POP_LEFT, OP_POP_RIGHT):
        if len(items) > n:
            raise ValueError(f"a list pops {len(items)} elements of {n}")
        take = value.popleft if opcode == OP_POP_LEFT else value.pop
        for expected in items:
            got = take()
            if got != expected:
                raise ValueError(f"a list pop took {got!r} where the journal says {expected!r}")
    elif opcode == OP_SPLICE:
        index, count = _ints(items, 2, "splice")
        if not (0 <= index <= n and 0 <= count <= n - index):
            raise ValueError(f"a list splice of {count} at {index} in a list of {n}")
        values = items[2:]
        if count == 1 and len(values) == 1:
            value[index] = values[0]  # type: ignore[assignment]
        else:
            value.rotate(-index)
            for _ in range(count):
                value.popleft()
            value.extendleft(reversed(values))  # type: ignore[arg-type]
            value.rotate(index)
    elif opcode == OP_REMOVE:
        indices = _ints(items, len(items), "remove")
        if any(b <= a for a, b in itertools.pairwise(indices)) or (
            indices and not 0 <= indices[0] <= indices[-1] < n
        ):
            raise ValueError(f"list remove indices {indices[:8]} not increasing within {n}")
        for index in reversed(indices):
            del value[index]
    elif opcode == OP_TRIM:
        start, count = _ints(items, 2, "trim")
        if not (0 <= start <= n and 0 <= count <= n - start) or len(items) != 2:
            raise ValueError(f"a list trim to {count} from {start} in a list of {n}")
        for _ in range(n - start - count):
            value.pop()
        for _ in range(start):
            value.popleft()
    else:
        raise ValueError(f"list effect opcode {opcode} is not one of 1..7")
    return value or None


def inverse(value: List | None, opcode: int, items: Items) -> Undo:
    """What undoes a list effect on ``value``."""
    if opcode == OP_PUSH_LEFT:
        return [(OP_POP_LEFT, tuple(reversed(items)))]
    if opcode == OP_PUSH_RIGHT:
        return [(OP_POP_RIGHT, tuple(reversed(items)))]
    if opcode == OP_POP_LEFT:
        return [(OP_PUSH_LEFT, tuple(reversed(items)))]
    if opcode == OP_POP_RIGHT:
        return [(OP_PUSH_RIGHT, tuple(reversed(items)))]
    old = value if value is not None else List()
    if opcode == OP_SPLICE:
        index, count = _ints(items, 2, "splice")
        removed = tuple(old[i] for i in range(index, index + count))
        return [(OP_SPLICE, (index, len(items) - 2, *removed))]
    if opcode == OP_REMOVE:
        # Put back in increasing order: each index is then the element's final place.
        return [(OP_SPLICE, (i, 0, old[i])) for i in items]  # type: ignore[index]
    if opcode == OP_TRIM:
        start, count = _ints(items, 2, "trim")
        head = tuple(old[i] for i in range(start))
        tail = tuple(old[i] for i in range(start + count, len(old)))
        undo: Undo = []
        if head:
            undo.append((OP_PUSH_LEFT, tuple(reversed(head))))
        if tail:
            undo.append((OP_PUSH_RIGHT, tail))
        return undo
    raise ValueError(f"list effect opcode {opcode} is not one of 1..7")


def flat(value: List) -> list[Item]:
    """The elements, head first."""
    return list(value)


def build(items: Items) -> List:
    """A list from its elements, head first."""
    if not items:
        raise ValueError("a list has at least one element")
    return List(items)


def copy(value: List) -> List:
    """An independent copy in the current epoch."""
    return List(value)


def size(value: List) -> int:
    """The number of elements."""
    return len(value)
