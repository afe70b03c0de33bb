"""The view of a list: ``store.lists[key]``, deque-like with index access (Redis's t_list.c).

:class:`ListView` is the Python API: deque's names where deque has one
(``append``, ``appendleft``, ``extend``, ``extendleft``, ``pop``,
``popleft``, ``insert``, ``index``, ``remove``, ``clear``), Redis's meaning
where Redis's command has more to say (``trim`` and ``range`` take LTRIM's
and LRANGE's inclusive indexes, ``remove`` LREM's count). Every method is
one atomic step and one journal record.

:meth:`ListView.pop_count`, :meth:`ListView.pop_first` and
:meth:`ListView.move_to` are the steps the server's commands share with
the blocking commands to come: BLPOP, BRPOP and BLMPOP are ``pop_first``
over the views of their keys, retried when a key they wait for is pushed
to (it answers ``None`` while every list is empty); BLMOVE and BRPOPLPUSH
are ``move_to``, retried the same way. Each call takes the Store's lock
once, so a waiter that wakes and retries either gets its element whole or
finds the list empty again: no element is ever half moved.

Writes go through ``Keyspace._edit`` (one EDIT record, then the effect
applied by :mod:`snapkv.values.lists`; a write that makes a list is one
PUT, for the reason ``_edit`` gives); a move through ``Keyspace._write``
(one BATCH, a DEL before a push that makes the destination).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, overload

from snapkv.values import ValueType, lists
from snapkv.views.base import View, checked_text

__all__ = ["ListView"]

_CODE = lists.CODE
_PUSH_LEFT = lists.OP_PUSH_LEFT
_PUSH_RIGHT = lists.OP_PUSH_RIGHT
_POP_LEFT = lists.OP_POP_LEFT
_POP_RIGHT = lists.OP_POP_RIGHT
_SPLICE = lists.OP_SPLICE
_LIST = lists.List
_span = lists.span
_window = lists.window


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(v if type(v) is str else checked_text(v, "value") for v in values)


def _count(count: int, what: str) -> int:
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"{what} must be int, not {type(count).__name__}")
    if count < 0:
        raise ValueError(f"{what} must be >= 0, not {count}")
    return count


class ListView(View):
    """A list at a key: elements are ``str``; each method is one atomic step.

    A missing key reads as an empty list. Indexes are 0-based from the head
    and negative ones count from the tail, as in Python and Redis.

    Every method raises :class:`~snapkv.errors.WrongTypeError` (changing
    nothing) if the key holds another type, and ``TypeError`` for an
    element that is not a ``str``.
    """

    __slots__ = ()
    KIND: ClassVar[ValueType] = lists

    def __init__(self, keyspace: Any, key: str) -> None:
        # View.__init__'s work without its calls: a view is made per access.
        self._keyspace = keyspace
        self._key = key if type(key) is str else checked_text(key, "key")

    # ----------------------------------------------------------------- push

    def _push(self, opcode: int, values: tuple[str, ...], existing: bool = False) -> int:
        """Push ``values`` at one end; the new length (0: ``existing`` and no list)."""
        ks = self._keyspace
        store = ks._store
        with store._lock:
            value = ks._lookup(self._key, lists)
            if value is None:
                if existing:
                    return 0
                length = len(values)
                ticket = ks._edit(self._key, lists, opcode, values)
            else:
                length = len(value) + len(values)
                ticket = ks._edit(self._key, lists, opcode, values)
        if ticket is not None:
            store._after_append(*ticket)
        return length

    def append(self, value: str) -> None:
        """Add ``value`` at the tail (RPUSH of one element). O(1).

        A queue producer's hot path. Without a journal (nor a transaction's
        recorder) there is no record to write, and for a live list of the
        current save epoch whose key has no expiry time the effect is the
        deque's own append, done here as ``Store.set`` does its dict write;
        anything else takes ``Keyspace._edit``, which knows every case.
        """
        if type(value) is not str:
            value = checked_text(value, "value")
        ks = self._keyspace
        store = ks._store
        key = self._key
        with store._lock:
            data, expires, _ = ks._space
            current = data.get(key)
            if current.__class__ is _LIST:
                if (
                    store._writer is None
                    and not (expires and key in expires)
                    and current.epoch >= store._frozen_below
                ):
                    current.append(value)
                    return
            elif current is not None:
                ks._lookup(key, lists)  # WrongTypeError, unless it expired
            ticket = ks._edit(key, lists, _PUSH_RIGHT, (value,))
        if ticket is not None:
            store._after_append(*ticket)

    def appendleft(self, value: str) -> None:
        """Add ``value`` at the head (LPUSH of one element). O(1)."""
        self._push(_PUSH_LEFT, (value if type(value) is str else checked_text(value, "value"),))

    def extend(self, values: Iterable[str]) -> int:
        """Add ``values`` at the tail in order, in one record (RPUSH); returns the new length."""
        items = _texts(values)
        return self._push(_PUSH_RIGHT, items) if items else len(self)

    def extendleft(self, values: Iterable[str]) -> int:
        """Add ``values`` at the head one after the other, so the last ends up first (LPUSH).

        As ``deque.extendleft``; one record. Returns the new length.
        """
        items = _texts(values)
        return self._push(_PUSH_LEFT, items) if items else len(self)

    def push(self, values: Iterable[str], *, left: bool = False, existing: bool = False) -> int:
        """LPUSH / RPUSH (``left``), or LPUSHX / RPUSHX with ``existing``: the new length.

        With ``existing``, a missing list stays missing and the answer is 0.
        No values: nothing changes, the answer is the current length.
        """
        items = _texts(values)
        if not items:
            return len(self)
        return self._push(_PUSH_LEFT if left else _PUSH_RIGHT, items, existing)

    # ------------------------------------------------------------------ pop

    def pop_count(self, count: int, left: bool = True) -> list[str] | None:
        """Pop up to ``count`` elements from the head (or tail), in the order they left.

        LPOP/RPOP with a count: ``None`` if the list does not exist, ``[]``
        for a ``count`` of 0 on one that does. Removing the last element
        removes the key.

        :raises ValueError: ``count`` is negative.
        """
        _count(count, "count")
        ks = self._keyspace
        store = ks._store
        with store._lock:
            value = ks._lookup(self._key, lists)
            if value is None or not count:
                return None if value is None else []
            taken = lists.ends(value, left, count)
            ticket = ks._edit(self._key, lists, _POP_LEFT if left else _POP_RIGHT, taken)
        store._commit(ticket)
        return list(taken)

    @staticmethod
    def pop_first(
        views: Iterable[ListView], left: bool, count: int
    ) -> tuple[str, list[str]] | None:
        """Pop up to ``count`` (> 0) elements of the first of ``views`` whose list exists (LMPOP).

        The views are of one Store. Returns ``(key, elements)``, or ``None``
        when no list exists. Keys are looked at in order, so a key of
        another type before the first list refuses the whole call, as Redis does.

        :raises WrongTypeError: a key before the first list holds another type.
        """
        found = list(views)
        if not found:
            return None
        store = found[0]._keyspace._store
        with store._lock:
            for view in found:
                value = view._current()
                if value is not None:
                    taken = lists.ends(value, left, count)
                    ticket = view._edit(_POP_LEFT if left else _POP_RIGHT, taken)
                    break
            else:
                return None
        store._commit(ticket)
        return view._key, list(taken)

    def pop(self) -> str:
        """Remove and return the tail element (RPOP); ``IndexError`` if the list is empty."""
        return self._pop_one(False)

    def popleft(self) -> str:
        """Remove and return the head element (LPOP); ``IndexError`` if the list is empty."""
        return self._pop_one(True)

    def _pop_one(self, left: bool) -> str:
        taken = self.pop_count(1, left)
        if not taken:
            raise IndexError("pop from an empty list")
        return taken[0]

    def pop_many(self, count: int, left: bool = True) -> list[str]:
        """:meth:`pop_count`, with ``[]`` for a missing list."""
        return self.pop_count(count, left) or []

    def move_to(
        self, destination: str, *, from_left: bool = False, to_left: bool = True
    ) -> str | None:
        """Move one element to an end of the list at ``destination``, same keyspace (LMOVE).

        The defaults are RPOPLPUSH's (this tail to the other's head). Returns
        the element, or ``None`` (nothing changes) if this list does not
        exist. Both changes are ONE journal record, so after a crash the
        element is in exactly one list. Onto itself it rotates the list (a
        one-element list stays as it is, expiry included, as in Redis).

        :raises WrongTypeError: either key holds another type; nothing changes.
        """
        destination = checked_text(destination, "key")
        ks = self._keyspace
        store = ks._store
        with store._lock:
            value = ks._lookup(self._key, lists)
            if value is None:
                return None
            ks._lookup(destination, lists)  # both types checked before any change
            element: str = value[0] if from_left else value[-1]
            if destination == self._key and len(value) == 1:
                return element
            db = ks._index
            ops: list[Any] = [
                ("edit", db, self._key, _CODE, _POP_LEFT if from_left else _POP_RIGHT, (element,))
            ]
            ops.append(
                ("edit", db, destination, _CODE, _PUSH_LEFT if to_left else _PUSH_RIGHT, (element,))
            )
            ticket = ks._write(ops)
        store._commit(ticket)
        return element

    # ---------------------------------------------------------------- reads

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        """The element at ``index`` (LINDEX; ``IndexError`` if out of range), or a slice's copy."""
        with self._keyspace._store._lock:
            value = self._current()
            if isinstance(index, slice):
                return [] if value is None else lists.cut(value, index)
            if value is None:
                raise IndexError("list index out of range")
            found: str = value[index]
            return found

    def get(self, index: int, default: Any = None) -> Any:
        """The element at ``index`` (LINDEX), or ``default`` if out of range."""
        with self._keyspace._store._lock:
            value = self._current()
            n = 0 if value is None else len(value)
            if not -n <= index < n:
                return default
            return value[index]

    def range(self, start: int, stop: int) -> list[str]:
        """The elements ``start`` to ``stop`` INCLUSIVE (LRANGE: ``range(0, -1)`` is all).

        Negative indexes count from the tail; out-of-range ones are clipped,
        so the answer is never an error, only maybe empty. O(distance from
        the nearer end + the range's length).
        """
        with self._keyspace._store._lock:
            value = self._current()
            bounds = None if value is None else _span(len(value), start, stop)
            return [] if bounds is None else _window(value, *bounds)

    def __iter__(self) -> Iterator[str]:
        """The elements of a point-in-time copy, head first."""
        with self._keyspace._store._lock:
            value = self._current()
            return iter(list(value) if value is not None else [])

    def __contains__(self, element: object) -> bool:
        with self._keyspace._store._lock:
            value = self._current()
            return value is not None and element in value

    def index(self, element: str) -> int:
        """The index of the first ``element``; ``ValueError`` if it is not in the list."""
        found = self.positions(element)
        if not found:
            raise ValueError(f"{element!r} is not in list")
        return found[0]

    def positions(self, element: str, rank: int = 1, count: int = 1, maxlen: int = 0) -> list[int]:
        """Indexes of ``element``, as LPOS: up to ``count`` of them (0: all), head first.

        ``rank`` skips matches: 2 starts from the second; a negative rank
        searches from the tail (-1: the last match first) and the indexes
        then come tail first. ``maxlen`` (0: no limit) bounds how many
        elements are compared. Indexes are always counted from the head.

        :raises ValueError: ``rank`` is 0, or ``count`` or ``maxlen`` is negative.
        """
        if rank == 0:
            raise ValueError("rank can't be zero: 1 is the first match, -1 the last")
        _count(count, "count")
        _count(maxlen, "maxlen")
        with self._keyspace._store._lock:
            value = self._current()
            if value is None:
                return []
            return lists.positions(value, element, rank, count, maxlen)

    # --------------------------------------------------------------- writes

    def set_at(self, index: int, element: str) -> bool:
        """LSET: replace the element at ``index``; False (nothing changes) if out of range.

        :raises KeyError: the list does not exist (LSET's ``no such key``).
        """
        element = checked_text(element, "value")
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is None:
                raise KeyError(self._key)
            n = len(value)
            if not -n <= index < n:
                return False
            ticket = self._edit(_SPLICE, (index % n, 1, element))
        store._commit(ticket)
        return True

    def __setitem__(self, index: int, element: str) -> None:
        """LSET; ``IndexError`` if ``index`` is out of range or the list is empty."""
        try:
            done = self.set_at(index, element)
        except KeyError:
            done = False
        if not done:
            raise IndexError("list assignment index out of range")

    def insert(self, index: int, element: str) -> None:
        """Insert ``element`` before position ``index``, as ``deque.insert`` (clipped: no error)."""
        element = checked_text(element, "value")
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            n = 0 if value is None else len(value)
            at = min(max(index + n if index < 0 else index, 0), n)
            if n:
                ticket = self._edit(_SPLICE, (at, 0, element))
            else:
                ticket = self._edit(_PUSH_RIGHT, (element,))
        store._commit(ticket)

    def insert_before(self, pivot: str, element: str) -> int:
        """LINSERT BEFORE: insert before the first ``pivot``; see :meth:`insert_after`."""
        return self._insert_at_pivot(pivot, element, 0)

    def insert_after(self, pivot: str, element: str) -> int:
        """LINSERT AFTER: insert after the first ``pivot`` (from the head).

        Returns the new length; -1 if ``pivot`` is not in the list; 0 if the
        list does not exist (nothing is created), as Redis answers.
        """
        return self._insert_at_pivot(pivot, element, 1)

    def _insert_at_pivot(self, pivot: str, element: str, after: int) -> int:
        pivot = checked_text(pivot, "pivot")
        element = checked_text(element, "value")
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is None:
                return 0
            try:
                at = value.index(pivot)
            except ValueError:
                return -1
            length = len(value) + 1
            ticket = self._edit(_SPLICE, (at + after, 0, element))
        store._commit(ticket)
        return length

    def remove(self, element: str, count: int = 1) -> int:
        """Remove occurrences of ``element`` as LREM: the first ``count`` from the head,
        the last ``-count`` from the tail if negative, all of them if 0.

        Returns how many were removed (0 if none: unlike ``deque.remove``, not an error).
        """
        element = checked_text(element, "value")
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is None:
                return 0
            indices = lists.occurrences(value, element, count)
            if not indices:
                return 0
            ticket = self._edit(lists.OP_REMOVE, indices)
        store._commit(ticket)
        return len(indices)

    def trim(self, start: int, stop: int) -> int:
        """Keep only the elements ``start`` to ``stop`` INCLUSIVE (LTRIM); how many went.

        Negative indexes count from the tail; an empty range removes the key.
        O(elements removed).
        """
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is None:
                return 0
            n = len(value)
            first, count = lists.kept(n, start, stop)
            if count == n:
                return 0
            ticket = self._edit(lists.OP_TRIM, (first, count))
        store._commit(ticket)
        return n - count
