"""The view of a set: ``store.sets[key]``, a ``MutableSet`` of members.

Every method is one atomic step under the Store's lock and, when it
writes, one journal record. Random removals (:meth:`SetView.pop`,
:meth:`SetView.pop_many`) record the members they took, so a replayed
journal never draws at random. The operators of ``collections.abc.Set``
(``&``, ``|``, ``-``, ``^``) return plain Python sets; the in-place ones
(``|=``, ``-=``, ``&=``, ``^=``) change the stored set in one record.

Algebra across keys (SINTER, SUNION, SDIFF and their STORE forms) names
other keys of the same keyspace and, as Redis 7.0, checks every key's
type before anything else (a missing key is an empty set).
The STORE forms write the destination as one record: a PUT of the result
(which also clears the destination's expiry, as Redis's ``setKey``), or a
DEL when the result is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet
from typing import Any, ClassVar

from snapkv.values import ValueType, sets
from snapkv.views.base import View, checked_text

__all__ = ["SetView"]

_INTER, _UNION, _DIFF = "inter", "union", "diff"


def _texts(items: Iterable[str], what: str) -> list[str]:
    if isinstance(items, str):
        raise TypeError(f"{what} must be an iterable of str, not a str")
    return [checked_text(item, what) for item in items]


class SetView(View, MutableSet[str]):
    """A set at a key: members are ``str``; each method is one atomic step.

    A missing key reads as an empty set; removing the last member removes
    the key. Every method raises :class:`~snapkv.errors.WrongTypeError`
    (changing nothing) when a key it reads or writes holds another type,
    and ``TypeError`` naming the argument for a member or key that is not a ``str``.
    """

    __slots__ = ()
    KIND: ClassVar[ValueType] = sets

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> set[Any]:
        """What the ``Set`` operators build: a plain Python set, not a view."""
        return set(it)

    # ------------------------------------------------------------ reading

    def __contains__(self, member: object) -> bool:
        """Whether ``member`` is in the set (SISMEMBER)."""
        with self._keyspace._store._lock:
            value = self._current()
            return value is not None and member in value

    def contains_many(self, members: Iterable[str]) -> list[bool]:
        """Whether each of ``members`` is in the set, in one step (SMISMEMBER)."""
        wanted = list(members)
        with self._keyspace._store._lock:
            value = self._current()
            if value is None:
                return [False] * len(wanted)
            return [member in value for member in wanted]

    def __iter__(self) -> Iterator[str]:
        """The members of a point-in-time copy."""
        return iter(self.to_set())

    def __len__(self) -> int:
        """The number of members (SCARD); 0 for a missing key."""
        return View.__len__(self)

    def to_set(self) -> set[str]:
        """A point-in-time copy of the members (SMEMBERS)."""
        with self._keyspace._store._lock:
            value = self._current()
            return set() if value is None else set(value)

    def random(self, count: int | None = None) -> Any:
        """Members drawn at random, the set unchanged (SRANDMEMBER).

        ``None``: one member, or ``None`` if the set is empty. ``count >= 0``:
        a list of that many distinct members (all of them if fewer);
        ``count < 0``: ``-count`` members that may repeat.

        :raises TypeError: ``count`` is neither ``None`` nor an int.
        """
        if count is not None and type(count) is not int:
            raise TypeError(f"count must be int or None, not {type(count).__name__}")
        with self._keyspace._store._lock:
            value = self._current()
            if count is None:
                return None if value is None else sets.draw(value, 1, distinct=True)[0]
            if value is None or count == 0:
                return []
            if count < 0:
                return sets.draw(value, -count, distinct=False)
            if count >= len(value):
                return list(value)
            return sets.draw(value, count, distinct=True)

    # ------------------------------------------------------------ writing

    def add(self, member: str) -> None:
        """Add ``member`` (SADD of one): the lean path, one record, nothing if already there."""
        if type(member) is not str:
            member = checked_text(member, "member")
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is not None and member in value:
                return
            ticket = self._keyspace._edit(self._key, sets, sets.OP_ADD, (member,))
        if ticket is not None:
            store._commit(ticket)

    def add_many(self, members: Iterable[str]) -> int:
        """Add ``members`` in one step and one record (SADD); return how many were new."""
        wanted = _texts(members, "members")
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            present = value if value is not None else ()
            new = list(dict.fromkeys(m for m in wanted if m not in present))
            if not new:
                return 0
            ticket = self._edit(sets.OP_ADD, new)
        store._commit(ticket)
        return len(new)

    def discard(self, member: str) -> None:
        """Remove ``member`` if present (SREM of one)."""
        self.remove_many((member,))

    def remove(self, member: str) -> None:
        """Remove ``member``; ``KeyError`` if it is not in the set."""
        if not self.remove_many((member,)):
            raise KeyError(member)

    def remove_many(self, members: Iterable[str]) -> int:
        """Remove ``members`` in one step and one record (SREM); return how many were there."""
        wanted = _texts(members, "members")
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is None:
                return 0
            gone = list(dict.fromkeys(m for m in wanted if m in value))
            if not gone:
                return 0
            ticket = self._edit(sets.OP_REM, gone)
        store._commit(ticket)
        return len(gone)

    def pop(self) -> str:
        """Remove and return a member drawn at random (SPOP); ``KeyError`` if empty."""
        taken = self.pop_many(1)
        if not taken:
            raise KeyError("pop from an empty set")
        return taken[0]

    def pop_many(self, count: int) -> list[str]:
        """Remove and return up to ``count`` members drawn at random (SPOP key count).

        The record holds the members taken. ``count`` larger than the set
        takes all of it (the key is removed).

        :raises TypeError: ``count`` is not an int.
        :raises ValueError: ``count`` is negative.
        """
        if type(count) is not int:
            raise TypeError(f"count must be int, not {type(count).__name__}")
        if count < 0:
            raise ValueError(f"count must be >= 0, not {count}")
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is None or count == 0:
                return []
            if count >= len(value):
                taken = list(value)
                ticket = self._keyspace._write([("del", self._keyspace._index, self._key)])
            else:
                taken = sets.draw(value, count, distinct=True)
                ticket = self._edit(sets.OP_REM, taken)
        store._commit(ticket)
        return taken

    def __ior__(self, other: Iterable[Any]) -> SetView:  # type: ignore[misc]
        """``view |= members``: one record."""
        self.add_many(other)
        return self

    def __isub__(self, other: Iterable[Any]) -> SetView:
        """``view -= members``: one record."""
        self.remove_many(other)
        return self

    def __iand__(self, other: Iterable[Any]) -> SetView:
        """``view &= members``: keep only those (one record)."""
        keep = set(_texts(other, "members"))
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            gone = [] if value is None else [m for m in value if m not in keep]
            if not gone:
                return self
            ticket = self._edit(sets.OP_REM, gone)
        store._commit(ticket)
        return self

    def __ixor__(self, other: Iterable[Any]) -> SetView:  # type: ignore[misc]
        """``view ^= members``: members in exactly one side (one record)."""
        flip = list(dict.fromkeys(_texts(other, "members")))
        keyspace = self._keyspace
        store = keyspace._store
        with store._lock:
            value = self._current() or ()
            gone = [m for m in flip if m in value]
            new = [m for m in flip if m not in value]
            ops: list[Any] = []
            where = (keyspace._index, self._key, sets.CODE)
            if new:
                ops.append(("edit", *where, sets.OP_ADD, tuple(new)))
            if gone:
                ops.append(("edit", *where, sets.OP_REM, tuple(gone)))
            if not ops:
                return self
            ticket = keyspace._write(ops)
        store._commit(ticket)
        return self

    def move(self, member: str, other_key: str) -> bool:
        """Move ``member`` to the set at ``other_key`` (SMOVE), in one record.

        Returns whether ``member`` was here (and so is now there). A missing
        source moves nothing and checks nothing else, as in Redis.

        :raises WrongTypeError: either key holds another type (nothing moves).
        """
        member = checked_text(member, "member")
        other_key = checked_text(other_key, "other_key")
        keyspace = self._keyspace
        store = keyspace._store
        with store._lock:
            value = self._current()
            if value is None:
                return False
            keyspace._lookup(other_key, sets)
            if member not in value:
                return False
            if other_key == self._key:
                return True
            where = keyspace._index
            ticket = keyspace._write(
                [
                    ("edit", where, self._key, sets.CODE, sets.OP_REM, (member,)),
                    ("edit", where, other_key, sets.CODE, sets.OP_ADD, (member,)),
                ]
            )
        store._commit(ticket)
        return True

    # ------------------------------------------------------- across keys

    def _combine(self, how: str, others: tuple[str, ...]) -> set[str]:
        """This set combined with the sets at ``others``; caller holds the lock."""
        keyspace = self._keyspace
        keys = [self._key, *(checked_text(key, "key") for key in others)]
        values = [keyspace._lookup(key, sets) for key in keys]  # every type checked first
        if how == _INTER:
            if any(value is None for value in values):
                return set()
            values.sort(key=len)
            return set(values[0]).intersection(*values[1:])
        present = [value or () for value in values]
        if how == _UNION:
            return set().union(*present)
        return set(present[0]).difference(*present[1:])

    def _combined(self, how: str, others: tuple[str, ...]) -> set[str]:
        with self._keyspace._store._lock:
            return self._combine(how, others)

    def _store_combined(self, how: str, dest: str, others: tuple[str, ...]) -> int:
        dest = checked_text(dest, "dest")
        keyspace = self._keyspace
        store = keyspace._store
        with store._lock:
            result = self._combine(how, others)
            if result:
                op: Any = ("put", keyspace._index, dest, sets.CODE, tuple(result), 0)
            elif dest in keyspace:
                op = ("del", keyspace._index, dest)
            else:
                return 0
            ticket = keyspace._write([op])
        store._commit(ticket)
        return len(result)

    def intersection(self, *others: str) -> set[str]:
        """Members in this set and in every set at the keys ``others`` (SINTER)."""
        return self._combined(_INTER, others)

    def union(self, *others: str) -> set[str]:
        """Members in this set or in any set at the keys ``others`` (SUNION)."""
        return self._combined(_UNION, others)

    def difference(self, *others: str) -> set[str]:
        """Members in this set and in none of the sets at the keys ``others`` (SDIFF)."""
        return self._combined(_DIFF, others)

    def intersection_count(self, *others: str, limit: int = 0) -> int:
        """The size of :meth:`intersection`, counting at most ``limit`` (0: all) (SINTERCARD)."""
        if type(limit) is not int or limit < 0:
            raise ValueError(f"limit must be an int >= 0, not {limit!r}")
        size = len(self.intersection(*others))
        return min(size, limit) if limit else size

    def intersection_store(self, dest: str, *others: str) -> int:
        """Store :meth:`intersection` at key ``dest`` (SINTERSTORE); return its size.

        An empty result deletes ``dest``; otherwise ``dest`` is replaced
        whatever it held, its expiry cleared.
        """
        return self._store_combined(_INTER, dest, others)

    def union_store(self, dest: str, *others: str) -> int:
        """Store :meth:`union` at key ``dest`` (SUNIONSTORE); return its size.

        See :meth:`intersection_store`.
        """
        return self._store_combined(_UNION, dest, others)

    def difference_store(self, dest: str, *others: str) -> int:
        """Store :meth:`difference` at key ``dest`` (SDIFFSTORE); return its size.

        See :meth:`intersection_store`.
        """
        return self._store_combined(_DIFF, dest, others)
