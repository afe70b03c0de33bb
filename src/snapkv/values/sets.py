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

from snapkv.values.base import Item, Items, epoch

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

    ``pool`` is ``None`` until a random draw needs it (see :func:`draw`).
    """

    __slots__ = ("epoch", "pool")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.epoch = epoch()
        self.pool: list[str] | None = None


CLASS = Set


def apply(value: Set | None, opcode: int, items: Items) -> Set | None:
    """Apply one set effect (see the module docstring); ``None`` when it left no member."""
    if opcode == OP_ADD:
        if value is None:
            value = Set()
        elif value.pool is not None:
            value.pool += [m for m in dict.fromkeys(items) if m not in value]  # type: ignore[misc]
        value.update(items)  # type: ignore[arg-type]
        return value or None  # no members given to a missing set: still missing
    if opcode == OP_REM:
        if value is not None:
            value.difference_update(items)
        return value or None
    raise ValueError(f"set effect opcode {opcode} is not one of {OP_ADD}, {OP_REM}")


def draw(value: Set, count: int, *, distinct: bool) -> list[str]:
    """``count`` members of ``value`` at random: distinct (``count < len(value)``) or repeating.

    A Python set has no random access, and a copy per draw made SPOP and
    SRANDMEMBER O(N) a call (a 60,000-member set answered ~500 SPOPs a
    second). So a set keeps, from its first draw on, ``pool``: a list of its
    members in which removed members are left behind (stale) and skipped,
    and dropped, when a draw meets them, and to which an add appends; it is
    rebuilt when it grows past twice the set (plus 64). A draw then costs
    O(count) expected, as Redis's ``dictGetFairRandomKey``. A member removed
    and added again may stand in the pool twice until the next rebuild: a
    bias bounded by that factor, as Redis's own draws are only near-uniform.
    A distinct draw of a quarter of the set or more samples a copy instead.
    """
    size = len(value)
    if distinct and count * 4 >= size:
        return random.sample(list(value), min(count, size))
    pool = value.pool
    if pool is None or len(pool) > 2 * size + 64:
        pool = value.pool = list(value)
    out: list[str] = []
    chosen: set[str] = set()
    below = random.randrange
    while len(out) < count:
        i = below(len(pool))
        member = pool[i]
        if member not in value:
            pool[i] = pool[-1]
            pool.pop()
            continue
        if distinct:
            if member in chosen:
                continue
            chosen.add(member)
        out.append(member)
    return out


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
