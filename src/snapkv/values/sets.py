"""Sets: a key holding distinct ``str`` members (Redis's ``t_set.c``).

The container is :class:`Set`, a Python set with an epoch (see :mod:`.base`).
Effects (the journal's EDIT records for a set, docs/FORMAT.md J3):

* ``OP_ADD`` items ``member, ...``: the members are in the set.
* ``OP_REM`` items ``member, ...``: the members are not (SPOP records the
  members it took, so replay never draws at random).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any

from snapkv.values.base import Item, Items, check_texts, epoch

__all__ = [
    "CLASS",
    "CODE",
    "NAME",
    "OP_ADD",
    "OP_REM",
    "Set",
    "apply",
    "build",
    "copy",
    "draw",
    "flat",
    "intset_order",
    "inverse",
    "size",
]

#: Redis 7.0's default ``set-max-intset-entries``.
INTSET_ENTRIES = 512
_INT = re.compile(r"-?[1-9][0-9]{0,18}|0", re.ASCII)

CODE = 3
NAME = "set"
OP_ADD = 1
OP_REM = 2


class Set(set[str]):
    """A set's members; ``epoch`` is the save epoch it was made in.

    ``pool`` and ``slots`` are ``None`` until a random draw needs them (see
    :func:`draw`); from then on every add and remove keeps them.
    """

    __slots__ = ("epoch", "pool", "slots")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.epoch = epoch()
        #: The members in a list, for random access; ``slots`` is each one's index.
        self.pool: list[str] | None = None
        self.slots: dict[str, int] | None = None


CLASS = Set


def apply(value: Set | None, opcode: int, items: Items) -> Set | None:
    """Apply one set effect (see the module docstring); ``None`` when it left no member."""
    if opcode == OP_ADD:
        check_texts(items, "set members")
        if value is None:
            value = Set()
        pool, slots = value.pool, value.slots
        if pool is not None and slots is not None:
            for member in items:
                if member not in slots:
                    slots[member] = len(pool)  # type: ignore[index]
                    pool.append(member)  # type: ignore[arg-type]
        value.update(items)  # type: ignore[arg-type]
        return value or None  # no members given to a missing set: still missing
    if opcode == OP_REM:
        check_texts(items, "set members")
        if value is not None:
            pool, slots = value.pool, value.slots
            if pool is not None and slots is not None:
                for member in items:
                    index = slots.pop(member, None)  # type: ignore[arg-type]
                    if index is not None:
                        last = pool.pop()  # the last member fills the hole: O(1)
                        if index < len(pool):
                            pool[index] = last
                            slots[last] = index
            value.difference_update(items)
        return value or None
    raise ValueError(f"set effect opcode {opcode} is not one of {OP_ADD}, {OP_REM}")


def draw(value: Set, count: int, *, distinct: bool) -> list[str]:
    """``count`` members of ``value`` at random: distinct (``count < len(value)``) or repeating.

    A Python set has no random access, and a copy per draw made SPOP and
    SRANDMEMBER O(N) a call (a 60,000-member set answered ~500 SPOPs a
    second). So a set's first draw gives it ``pool``, its members in a list,
    and ``slots``, each member's index there; every add appends, every
    remove moves the last member into the hole (both O(1), in :func:`apply`),
    so the pool is always exactly the members and a draw is uniform and
    O(count). The index costs about 50 bytes a member, and only sets that
    were ever drawn from pay it. A distinct draw of a quarter of the set or
    more samples a copy instead.
    """
    size = len(value)
    if distinct and count * 4 >= size:
        return random.sample(list(value), min(count, size))
    pool = value.pool
    if pool is None or value.slots is None:
        pool = value.pool = list(value)
        value.slots = {member: index for index, member in enumerate(pool)}
    below = random.randrange
    if not distinct:
        return [pool[below(size)] for _ in range(count)]
    chosen: dict[str, None] = {}
    while len(chosen) < count:
        chosen[pool[below(size)]] = None
    return list(chosen)


def inverse(value: Set | None, opcode: int, items: Items) -> list[tuple[int, tuple[Item, ...]]]:
    """What undoes a set effect on ``value``: added members removed, removed ones added."""
    old = value if value is not None else frozenset()
    if opcode == OP_ADD:
        new = tuple(dict.fromkeys(m for m in items if m not in old))
        return [(OP_REM, new)] if new else []
    gone = tuple(dict.fromkeys(m for m in items if m in old))
    return [(OP_ADD, gone)] if gone else []


def flat(value: Set) -> list[Item]:
    """The members, in the set's iteration order."""
    return list(value)


def build(items: Items) -> Set:
    """A set from its members."""
    if not items:
        raise ValueError("a set has at least one member")
    check_texts(items, "set members")
    return Set(items)


def copy(value: Set) -> Set:
    """An independent copy in the current epoch."""
    return Set(value)


def size(value: Set) -> int:
    """The number of members."""
    return len(value)


def intset_order(members: Iterable[str], entries: int = INTSET_ENTRIES) -> list[str] | None:
    """``members`` in Redis's order if Redis 7.0 would hold them as an intset, else ``None``.

    Redis keeps a set of at most ``entries`` members (its
    ``set-max-intset-entries``) that are all 64-bit integers
    (in ``string2ll``'s strict form) as an intset: sorted by value, and
    scanned in one reply. A server that wants Redis's exact replies for
    such sets orders them so. (Redis never converts a hashtable back to an
    intset; this judges the members as they are now.)
    """
    found: list[tuple[int, str]] = []
    for member in members:
        if len(found) >= entries or _INT.fullmatch(member) is None:
            return None
        number = int(member)
        if not -(2**63) <= number < 2**63:
            return None
        found.append((number, member))
    found.sort()
    return [member for _, member in found]
