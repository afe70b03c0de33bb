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

Besides the effects, the reads every caller shares: :func:`span` (Redis's
inclusive, negative-from-the-end index pair made concrete) and
:func:`window` (those elements, walked from the nearer end so a small
range at either end of a long list costs what the range does).
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from snapkv.values.base import Item, Items, check_texts, epoch

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
    "cut",
    "ends",
    "flat",
    "inverse",
    "kept",
    "occurrences",
    "positions",
    "size",
    "span",
    "window",
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
#: Up to this many removals, OP_REMOVE deletes one by one; beyond, it rebuilds.
_FEW = 8
#: Elements per block of CPython's deque: below this a range is read by index.
_BLOCK = 64


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
        check_texts(items, "list elements")
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
        check_texts(values, "list elements")
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
        if len(indices) <= _FEW:
            for index in reversed(indices):
                del value[index]  # O(distance to the nearer end) each
        else:
            # Many removals: one O(n) pass instead of k deletions of O(n) each.
            # In place, so the container (and the key's expiry) stays.
            gone = set(indices)
            kept = [v for i, v in enumerate(value) if i not in gone]
            value.clear()
            value.extend(kept)
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
    check_texts(items, "list elements")
    return List(items)


def copy(value: List) -> List:
    """An independent copy in the current epoch."""
    return List(value)


def size(value: List) -> int:
    """The number of elements."""
    return len(value)


def span(length: int, start: int, stop: int) -> tuple[int, int] | None:
    """Redis's inclusive ``start``/``stop`` (negative: from the end) in a list of ``length``.

    Returns the concrete ``(first, last)`` indexes, both inclusive and
    within the list, or ``None`` for an empty range, exactly as LRANGE and
    LTRIM read their arguments: negatives count from the tail, a start
    before the head is the head, a stop past the tail is the tail.
    """
    if start < 0:
        start += length
    if stop < 0:
        stop += length
    start = max(start, 0)
    if start > stop or start >= length:
        return None
    return start, min(stop, length - 1)


def kept(length: int, start: int, stop: int) -> tuple[int, int]:
    """What LTRIM ``start stop`` keeps of a list of ``length``: ``(first, count)``,
    the items of its ``OP_TRIM`` effect (``(0, 0)``: nothing, the key goes)."""
    bounds = span(length, start, stop)
    return (0, 0) if bounds is None else (bounds[0], bounds[1] - bounds[0] + 1)


def cut(value: List, part: slice) -> list[str]:
    """``value[part]`` as a list (a deque takes no slice); a step of 1 reads a :func:`window`."""
    start, stop, step = part.indices(len(value))
    if step == 1:
        return window(value, start, stop - 1) if start < stop else []
    return list(value)[part]


def window(value: List, first: int, last: int) -> list[str]:
    """The elements ``first`` to ``last`` (inclusive, within the list), head first.

    A deque is linked blocks of 64: an index costs a hop per block from the
    nearer end, iteration a step per element. So a short range is read by
    index (LRANGE of ten elements in the middle of a million: ten lookups
    of ~8,000 hops each, not 500,000 steps), a long one by iterating from
    the nearer end (a range at either end costs what the range does).
    """
    if last - first < _BLOCK:
        return [value[i] for i in range(first, last + 1)]
    n = len(value)
    if first <= n - 1 - last:
        return list(itertools.islice(value, first, last + 1))
    out = list(itertools.islice(reversed(value), n - 1 - last, n - first))
    out.reverse()
    return out


def positions(value: List, element: str, rank: int, count: int, maxlen: int) -> list[int]:
    """Where ``element`` is, as LPOS: up to ``count`` indexes (0: all), from the head.

    Matches before the ``rank``-th are skipped; a negative ``rank`` searches
    from the tail (the indexes then come tail first, still counted from the
    head). Only the first ``maxlen`` elements searched are compared (0: all).
    The caller has checked ``rank != 0`` and ``count, maxlen >= 0``.
    """
    n = len(value)
    if rank == 1 and count == 1 and not maxlen:
        try:
            return [value.index(element)]  # the common question, answered at C speed
        except ValueError:
            return []
    from_tail = rank < 0
    rank = abs(rank)
    searched = itertools.islice(reversed(value) if from_tail else value, maxlen or n)
    found: list[int] = []
    matches = 0
    for i, v in enumerate(searched):
        if v == element:
            matches += 1
            if matches >= rank:
                found.append(n - 1 - i if from_tail else i)
                if len(found) == count:
                    break
    return found


def occurrences(value: List, element: str, count: int) -> list[int]:
    """The increasing indexes LREM ``count`` removes: the first ``count`` matches from the
    head, the last ``-count`` from the tail if negative, every match if 0."""
    found = positions(value, element, -1 if count < 0 else 1, abs(count), 0)
    if count < 0:
        found.reverse()
    return found


def ends(value: List, left: bool, count: int) -> tuple[str, ...]:
    """The items of the effect popping up to ``count`` elements from the head (``left``)
    or the tail: the elements in the order they leave."""
    count = min(count, len(value))
    if left:
        return tuple(itertools.islice(value, count))
    return tuple(itertools.islice(reversed(value), count))
