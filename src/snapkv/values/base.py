"""What every value type shares: the container epoch and the :class:`ValueType` protocol.

A key holds a ``str`` or one of four containers (hash, list, set, sorted
set), each a module of this package that defines the container class, its
*effects* (the element-level changes the journal records, each an opcode
with a flat tuple of items) and how to apply and undo them, and the flat
items a whole value is written as (snapshot chunks, PUT records).

Why effects are applied here, in one function per type: the live write
path (``Keyspace._write``), the journal's replay (:mod:`snapkv.rebuild`)
and a transaction's undo (:mod:`snapkv.transaction`) all change a
container through the same ``apply``, so a replayed journal builds exactly
the memory the writes built.

The epoch is the save's copy-on-write rule. A save copies references to
every keyspace's values under the Store's lock and encodes them after
releasing it; a string is immutable, a container is not. So every container
carries the epoch it was made in, a save starts a new epoch and, until it
has encoded everything, a write to a container made in an older epoch
first replaces it with a copy (Redis gets the same from ``fork()``'s copy
on write). Starting a save is O(1): nothing is scanned under the lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Item", "Items", "ValueType", "check_texts", "next_epoch"]

#: One item of an effect or of a value's flat form: a member, field or value
#: (``str``), an index or count (``int``), a score (``float``).
Item = str | int | float
Items = Sequence[Item]

_epochs = itertools.count(1)
_current = 0


def next_epoch() -> int:
    """Start a new epoch (a save is about to copy references); return it.

    Containers made before this call belong to older epochs. Shared by
    every Store of the process: the counter only grows, so any store's save
    freezes exactly the containers that existed when it started.
    """
    global _current  # noqa: PLW0603 - the one process-wide counter, by design
    _current = next(_epochs)
    return _current


def check_texts(items: Items, what: str) -> None:
    """Refuse an effect whose members, fields or values are not all ``str`` (``ValueError``).

    A writer never records another kind there (its views check first); a
    journal that does is refused at replay, never loaded to fail every
    later save.
    """
    for item in items:
        if item.__class__ is not str:
            raise ValueError(f"{what} must be str, not {type(item).__name__} ({item!r})")


def epoch() -> int:
    """The current epoch: what a new container is stamped with."""
    return _current


class ValueType(Protocol):
    """What a value type module provides (hashes, lists, sets, zsets).

    ``CODE`` is the type's number on disk (frozen: snapshots and journals
    store it), ``NAME`` what Redis's TYPE answers, ``CLASS`` the container.
    """

    CODE: int
    NAME: str
    CLASS: type[Any]

    def apply(self, value: Any, opcode: int, items: Items) -> Any:
        """Apply one effect to ``value`` (``None``: the key is absent) in place.

        Returns the container (a new one if ``value`` was ``None``), or
        ``None`` when the effect left it empty: an empty container does not
        exist, the caller removes the key.

        :raises ValueError: the effect is malformed or does not fit the
            value (a journal a writer of this format cannot have made).
        """
        ...

    def inverse(self, value: Any, opcode: int, items: Items) -> list[tuple[int, tuple[Item, ...]]]:
        """The effects that undo ``(opcode, items)`` applied to ``value`` (not yet applied).

        Applied in order after the effect, they give back ``value``'s
        elements (``None``: the key was absent, and they leave it empty).
        """
        ...

    def flat(self, value: Any) -> list[Item]:
        """The whole value as flat items, in the order :func:`build` reads them."""
        ...

    def build(self, items: Items) -> Any:
        """A new container from :func:`flat`'s items (``ValueError`` if malformed)."""
        ...

    def copy(self, value: Any) -> Any:
        """An independent copy, stamped with the current epoch."""
        ...

    def size(self, value: Any) -> int:
        """The number of elements (fields, members)."""
        ...
