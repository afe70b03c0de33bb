"""The view of a list: ``store.lists[key]``, deque-like with index access (Redis's t_list.c).

:class:`ListView` is the Python API: deque's names where deque has one
(``append``, ``appendleft``, ``extend``, ``extendleft``, ``pop``,
``popleft``, ``insert``, ``index``, ``remove``, ``clear``), Redis's meaning
where Redis's command has more to say (``trim`` and ``range`` take LTRIM's
and LRANGE's inclusive indexes, ``remove`` LREM's count). Every method is
one atomic step and one journal record.

:func:`pop`, :func:`pop_first` and :func:`move` are the list-level steps
the server's commands share with the blocking commands to come: BLPOP,
BRPOP and BLMPOP are :func:`pop_first` on their keys, retried when a key
they wait for is pushed to (it returns ``None`` while every list is
empty); BLMOVE and BRPOPLPUSH are :func:`move`, retried the same way. Each
call takes the Store's lock once, so a waiter that wakes and retries
either gets its element whole or finds the list empty again: no element
is ever half moved.

Pushing one element is the hot path (a queue's producer), so
:meth:`ListView.append` and :meth:`ListView.appendleft` inline the write
rules of ``Keyspace._write`` for the common case (a live list, not being
saved): the record first, under the lock, then the deque's own O(1)
append; anything else takes the general path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, overload

from snapkv import journal as jr
from snapkv.values import ValueType, lists
from snapkv.values.lists import (
    OP_POP_LEFT,
    OP_POP_RIGHT,
    OP_PUSH_LEFT,
    OP_PUSH_RIGHT,
    OP_REMOVE,
    OP_SPLICE,
    OP_TRIM,
    List,
    span,
    window,
)
from snapkv.views.base import View, checked_text

if TYPE_CHECKING:
    from snapkv.keyspace import Keyspace

__all__ = ["ListView", "move", "pop", "pop_first"]

_CODE = lists.CODE
_edit_record = jr.edit_record


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(v if type(v) is str else checked_text(v, "value") for v in values)


def _pop_op(db: int, key: str, value: List, left: bool, count: int) -> tuple[Any, ...]:
    """The EDIT that pops ``count`` (1..len) elements of ``value`` from one end."""
    if left:
        taken = window(value, 0, count - 1)
        return ("edit", db, key, _CODE, OP_POP_LEFT, tuple(taken))
    taken = window(value, len(value) - count, len(value) - 1)
    taken.reverse()
    return ("edit", db, key, _CODE, OP_POP_RIGHT, tuple(taken))


def pop(keyspace: Keyspace, key: str, left: bool, count: int) -> list[str] | None:
    """Pop up to ``count`` elements of the list at ``key``, from the head if ``left``.

    Returns them in the order they left (LPOP/RPOP with a count), ``[]``
    for a ``count`` of 0 on an existing list, ``None`` if the list does not
    exist. Removing the last element removes the key.

    :raises ValueError: ``count`` is negative.
    :raises WrongTypeError: the key holds another type.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    store = keyspace._store
    with store._lock:
        value = keyspace._lookup(key, lists)
        if value is None:
            return None
        if not count:
            return []
        op = _pop_op(keyspace._index, key, value, left, min(count, len(value)))
        ticket = keyspace._write([op])
    store._commit(ticket)
    return list(op[5])


def pop_first(
    keyspace: Keyspace, keys: Iterable[str], left: bool, count: int
) -> tuple[str, list[str]] | None:
    """Pop up to ``count`` (> 0) elements of the first of ``keys`` holding a list (LMPOP).

    Returns ``(key, elements)``, or ``None`` when no key holds a list. Keys
    are looked at in order, so a key of another type before the first list
    refuses the whole call, as Redis does.

    :raises WrongTypeError: a key before the first list holds another type.
    """
    store = keyspace._store
    with store._lock:
        for key in keys:
            value = keyspace._lookup(key, lists)
            if value is not None:
                op = _pop_op(keyspace._index, key, value, left, min(count, len(value)))
                ticket = keyspace._write([op])
                break
        else:
            return None
    store._commit(ticket)
    return key, list(op[5])


def move(
    keyspace: Keyspace, source: str, destination: str, from_left: bool, to_left: bool
) -> str | None:
    """Move one element from an end of ``source`` to an end of ``destination`` (LMOVE).

    Returns the element, or ``None`` (nothing changed) if ``source`` does
    not exist. Both changes are ONE journal record, so after a crash the
    element is in exactly one of the lists. ``source == destination``
    rotates the list (a one-element list is left as it is, expiry included,
    as in Redis).

    :raises WrongTypeError: either key holds another type; nothing changes.
    """
    store = keyspace._store
    db = keyspace._index
    with store._lock:
        value = keyspace._lookup(source, lists)
        if value is None:
            return None
        keyspace._lookup(destination, lists)  # its type is checked before anything changes
        element: str = value[0] if from_left else value[-1]
        if source == destination and len(value) == 1:
            return element
        ops: list[Any] = [
            ("edit", db, source, _CODE, OP_POP_LEFT if from_left else OP_POP_RIGHT, (element,)),
            (
                "edit",
                db,
                destination,
                _CODE,
                OP_PUSH_LEFT if to_left else OP_PUSH_RIGHT,
                (element,),
            ),
        ]
        ticket = keyspace._write(ops)
    store._commit(ticket)
    return element


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

    def __init__(self, keyspace: Keyspace, key: str) -> None:
        # View.__init__'s work without its calls: a view is made per access.
        self._keyspace = keyspace
        self._key = key if type(key) is str else checked_text(key, "key")

    # ----------------------------------------------------------------- push

    def _push(self, opcode: int, values: tuple[str, ...], existing: bool = False) -> int:
        """Push ``values`` at one end; the new length (0: ``existing`` and no list).

        The fast path is ``Keyspace._write`` spelt out for the usual case:
        a live list of the current save epoch whose key has no expiry time
        to check. Anything else (a new key, an expiring one, a list a save
        is reading) goes through ``_write``, which handles them.
        """
        ks = self._keyspace
        store = ks._store
        key = self._key
        writer = ticket = None
        with store._lock:
            data, expires, _ = ks._space
            value = data.get(key)
            if (
                value.__class__ is List
                and not (expires and key in expires)
                and value.epoch >= store._frozen_below
            ):
                writer = store._writer
                if writer is not None:
                    lsn = writer.append(_edit_record(ks._index, key, _CODE, opcode, values))
                if opcode == OP_PUSH_RIGHT:
                    value.extend(values)
                else:
                    value.extendleft(values)
                length = len(value)
            else:
                if self._current() is None and existing:
                    return 0
                ticket = self._edit(opcode, values)
                length = len(ks._space[0][key])
        if writer is not None:
            store._after_append(writer, lsn)
        elif ticket is not None:
            store._after_append(*ticket)
        return length

    def append(self, value: str) -> None:
        """Add ``value`` at the tail (RPUSH of one element). O(1).

        The producer's hot path: :meth:`_push`'s fast case inlined (a call
        and a tuple are a fifth of an unjournaled append).
        """
        if type(value) is not str:
            value = checked_text(value, "value")
        ks = self._keyspace
        store = ks._store
        key = self._key
        fast = False
        with store._lock:
            data, expires, _ = ks._space
            current = data.get(key)
            if (
                current.__class__ is List
                and not (expires and key in expires)
                and current.epoch >= store._frozen_below
            ):
                fast = True
                writer = store._writer
                if writer is not None:
                    lsn = writer.append(
                        _edit_record(ks._index, key, _CODE, OP_PUSH_RIGHT, (value,))
                    )
                current.append(value)
        if not fast:
            self._push(OP_PUSH_RIGHT, (value,))  # a new key, an expiring one, a save running
        elif writer is not None:
            store._after_append(writer, lsn)

    def appendleft(self, value: str) -> None:
        """Add ``value`` at the head (LPUSH of one element). O(1)."""
        self._push(OP_PUSH_LEFT, (value if type(value) is str else checked_text(value, "value"),))

    def extend(self, values: Iterable[str]) -> int:
        """Add ``values`` at the tail in order, in one record (RPUSH); returns the new length."""
        items = _texts(values)
        return self._push(OP_PUSH_RIGHT, items) if items else len(self)

    def extendleft(self, values: Iterable[str]) -> int:
        """Add ``values`` at the head one after the other, so the last ends up first (LPUSH).

        As ``deque.extendleft``; one record. Returns the new length.
        """
        items = _texts(values)
        return self._push(OP_PUSH_LEFT, items) if items else len(self)

    def push(self, values: Iterable[str], *, left: bool = False, existing: bool = False) -> int:
        """LPUSH / RPUSH (``left``), or LPUSHX / RPUSHX with ``existing``: the new length.

        With ``existing``, a missing list stays missing and the answer is 0.
        No values: nothing changes, the answer is the current length.
        """
        items = _texts(values)
        if not items:
            return len(self)
        return self._push(OP_PUSH_LEFT if left else OP_PUSH_RIGHT, items, existing)

    # ------------------------------------------------------------------ pop

    def pop(self) -> str:
        """Remove and return the tail element (RPOP); ``IndexError`` if the list is empty."""
        taken = pop(self._keyspace, self._key, False, 1)
        if not taken:
            raise IndexError("pop from an empty list")
        return taken[0]

    def popleft(self) -> str:
        """Remove and return the head element (LPOP); ``IndexError`` if the list is empty."""
        taken = pop(self._keyspace, self._key, True, 1)
        if not taken:
            raise IndexError("pop from an empty list")
        return taken[0]

    def pop_many(self, count: int, left: bool = True) -> list[str]:
        """Remove and return up to ``count`` elements from the head (or tail), in the
        order they left (LPOP/RPOP with a count). ``[]`` if the list is empty.

        :raises ValueError: ``count`` is negative.
        """
        return pop(self._keyspace, self._key, left, _count(count, "count")) or []

    def move_to(
        self, destination: str, *, from_left: bool = False, to_left: bool = True
    ) -> str | None:
        """Move one element to the list at ``destination`` of the same keyspace (LMOVE).

        The defaults are RPOPLPUSH's (tail of this list to the head of the
        other). Returns the element, or ``None`` if this list is empty.
        """
        return move(self._keyspace, self._key, checked_text(destination, "key"), from_left, to_left)

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
                if value is None:
                    return []
                start, stop, step = index.indices(len(value))
                if step == 1:
                    return window(value, start, stop - 1) if start < stop else []
                return list(value)[index]
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
            bounds = None if value is None else span(len(value), start, stop)
            return [] if bounds is None else window(value, *bounds)

    def __len__(self) -> int:
        return View.__len__(self)

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
            ticket = self._edit(OP_SPLICE, (index % n, 1, element))
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
            ticket = (
                self._edit(OP_SPLICE, (at, 0, element))
                if n
                else self._edit(OP_PUSH_RIGHT, (element,))
            )
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
            ticket = self._edit(OP_SPLICE, (at + after, 0, element))
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
            ticket = self._edit(OP_REMOVE, indices)
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
            bounds = span(n, start, stop)
            first, count = (0, 0) if bounds is None else (bounds[0], bounds[1] - bounds[0] + 1)
            if count == n:
                return 0
            ticket = self._edit(OP_TRIM, (first, count))
        store._commit(ticket)
        return n - count

    def clear(self) -> None:
        """Remove every element: the key no longer exists (if it held a list)."""
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is None:
                return
            ks = self._keyspace
            ticket = ks._write([("del", ks._index, self._key)])
        store._commit(ticket)


def _count(count: int, what: str) -> int:
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"{what} must be int, not {type(count).__name__}")
    if count < 0:
        raise ValueError(f"{what} must be >= 0, not {count}")
    return count
