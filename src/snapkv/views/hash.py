"""The view of a hash: ``store.hashes[key]``, a ``MutableMapping`` of field -> value.

Every method is one atomic step under the Store's lock and, when it
writes, one journal record (:meth:`HashView.update` of many fields
included), so a crash never leaves half of a call. Besides the mapping,
the counters (:meth:`HashView.incr`, :meth:`HashView.incr_float`) compute
and record the *value* they write, never the increment, so replaying the
journal needs no arithmetic and cannot drift.

Numbers follow Redis's rules for HINCRBY and HINCRBYFLOAT (see
:func:`snapkv.values.hashes.as_int` and :func:`~snapkv.values.hashes.as_float`).
"""

from __future__ import annotations

import math
import random
from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from typing import Any, ClassVar

from snapkv.values import ValueType, hashes
from snapkv.views.base import View, checked_text

__all__ = ["HashView"]

_MISSING: Any = object()
_LLONG_MIN, _LLONG_MAX = -(2**63), 2**63 - 1


class HashView(View, MutableMapping[str, str]):
    """A hash at a key: fields and values are ``str``; each method is one atomic step.

    A missing key reads as an empty hash; removing the last field removes
    the key. Every method raises :class:`~snapkv.errors.WrongTypeError`
    (changing nothing) when the key holds another type, and ``TypeError``
    naming the argument for a field or value that is not a ``str``.
    """

    __slots__ = ()
    KIND: ClassVar[ValueType] = hashes

    # ------------------------------------------------------------ reading

    def __getitem__(self, field: str) -> str:
        """The value of ``field`` (HGET); ``KeyError`` if it (or the key) is missing."""
        with self._keyspace._store._lock:
            value = self._current()
            if value is None:
                raise KeyError(field)
            found: str = value[field]
            return found

    def get(self, field: str, default: Any = None) -> Any:
        """The value of ``field`` (HGET), or ``default``."""
        with self._keyspace._store._lock:
            value = self._current()
            return default if value is None else value.get(field, default)

    def get_many(self, fields: Iterable[str]) -> list[str | None]:
        """The values of ``fields`` in order, ``None`` for a missing one (HMGET), in one step."""
        wanted = list(fields)
        with self._keyspace._store._lock:
            value = self._current()
            if value is None:
                return [None] * len(wanted)
            return [value.get(field) for field in wanted]

    def __iter__(self) -> Iterator[str]:
        """The fields of a point-in-time copy."""
        return iter(self.to_dict())

    def __len__(self) -> int:
        """The number of fields (HLEN); 0 for a missing key."""
        return View.__len__(self)

    def __contains__(self, field: object) -> bool:
        """Whether ``field`` exists (HEXISTS)."""
        with self._keyspace._store._lock:
            value = self._current()
            return value is not None and field in value

    def to_dict(self) -> dict[str, str]:
        """A point-in-time copy of the whole hash (HGETALL), in the hash's field order."""
        with self._keyspace._store._lock:
            value = self._current()
            return {} if value is None else dict(value)

    def keys(self) -> KeysView[str]:
        """The fields of a point-in-time copy (HKEYS)."""
        return self.to_dict().keys()

    def values(self) -> ValuesView[str]:
        """The values of a point-in-time copy (HVALS)."""
        return self.to_dict().values()

    def items(self) -> ItemsView[str, str]:
        """The (field, value) pairs of a point-in-time copy (HGETALL)."""
        return self.to_dict().items()

    def random_fields(self, count: int = 1, with_values: bool = False) -> list[Any]:
        """Fields drawn at random (HRANDFIELD key count [WITHVALUES]).

        ``count >= 0``: that many distinct fields (all of them if fewer);
        ``count < 0``: ``-count`` fields that may repeat. With ``with_values``
        each is a ``(field, value)`` tuple.

        :raises TypeError: ``count`` is not an int.
        """
        if type(count) is not int:
            raise TypeError(f"count must be int, not {type(count).__name__}")
        with self._keyspace._store._lock:
            value = self._current()
            if value is None or count == 0:
                return []
            if count < 0:
                fields = random.choices(list(value), k=-count)
            elif count >= len(value):
                fields = list(value)
            else:
                fields = random.sample(list(value), count)
            if with_values:
                return [(field, value[field]) for field in fields]
            return fields

    # ------------------------------------------------------------ writing

    def __setitem__(self, field: str, value: str) -> None:
        """HSET of one field: the lean path (no mapping is built; one record).

        Without a journal (and outside a transaction, whose recorder is the
        writer then) a live hash that no running save reads is changed in
        place, exactly as its SET effect would change it: there is nothing
        to record, so even ``Keyspace._edit``'s general steps are skipped.
        """
        if type(field) is not str:
            field = checked_text(field, "field")
        if type(value) is not str:
            value = checked_text(value, "value")
        keyspace = self._keyspace
        store = keyspace._store
        with store._lock:
            current = keyspace._lookup(self._key, hashes)
            if (
                current is not None
                and store._writer is None
                and current.epoch >= store._frozen_below
            ):
                current[field] = value
                return
            ticket = keyspace._edit(self._key, hashes, hashes.OP_SET, (field, value))
        if ticket is not None:
            store._commit(ticket)

    def set_many(self, other: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> int:
        """Set several fields in one step and one record (HSET); return how many were new.

        :raises TypeError: a field or value is not a ``str``.
        """
        pairs: list[str] = []
        for field, value in dict(other).items():
            pairs += (checked_text(field, "field"), checked_text(value, "value"))
        store = self._keyspace._store
        with store._lock:
            current = self._current()
            if not pairs:
                return 0
            new = len(pairs) // 2 if current is None else sum(f not in current for f in pairs[::2])
            ticket = self._edit(hashes.OP_SET, pairs)
        store._commit(ticket)
        return new

    def update(self, other: Any = (), /, **kwargs: str) -> None:
        """Set several fields in one step and one journal record (HSET with pairs)."""
        self.set_many(dict(other, **kwargs))

    def set_if_missing(self, field: str, value: str) -> bool:
        """Set ``field`` only if it does not exist (HSETNX); return whether it was set."""
        field = checked_text(field, "field")
        value = checked_text(value, "value")
        store = self._keyspace._store
        with store._lock:
            current = self._current()
            if current is not None and field in current:
                return False
            ticket = self._edit(hashes.OP_SET, (field, value))
        store._commit(ticket)
        return True

    def setdefault(self, field: str, default: str = _MISSING) -> str:
        """The value of ``field``, first set to ``default`` if it is missing (one step).

        :raises TypeError: ``field`` or ``default`` is not a ``str`` (a hash
            holds no ``None``, so ``default`` is required when the field is missing).
        """
        field = checked_text(field, "field")
        store = self._keyspace._store
        with store._lock:
            current = self._current()
            if current is not None and field in current:
                found: str = current[field]
                return found
            default = checked_text(default, "default")
            ticket = self._edit(hashes.OP_SET, (field, default))
        store._commit(ticket)
        return default

    def __delitem__(self, field: str) -> None:
        """HDEL of one field; ``KeyError`` if it is missing."""
        self.pop(field)

    def delete_many(self, fields: Iterable[str]) -> int:
        """Remove ``fields`` in one step and one record (HDEL); return how many existed."""
        wanted = [checked_text(field, "field") for field in fields]
        store = self._keyspace._store
        with store._lock:
            current = self._current()
            if current is None:
                return 0
            gone = [field for field in dict.fromkeys(wanted) if field in current]
            if not gone:
                return 0
            ticket = self._edit(hashes.OP_DEL, gone)
        store._commit(ticket)
        return len(gone)

    def pop(self, field: str, default: Any = _MISSING) -> Any:
        """Remove ``field`` and return its value, or ``default``; ``KeyError`` without one."""
        store = self._keyspace._store
        with store._lock:
            current = self._current()
            if current is None or field not in current:
                if default is _MISSING:
                    raise KeyError(field)
                return default
            found = current[field]
            ticket = self._edit(hashes.OP_DEL, (field,))
        store._commit(ticket)
        return found

    def popitem(self) -> tuple[str, str]:
        """Remove and return the last (field, value) pair; ``KeyError`` if the hash is empty."""
        store = self._keyspace._store
        with store._lock:
            current = self._current()
            if not current:
                raise KeyError("popitem(): hash is empty")
            field = next(reversed(current))
            found = current[field]
            ticket = self._edit(hashes.OP_DEL, (field,))
        store._commit(ticket)
        return field, found

    def incr(self, field: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer in ``field`` (0 if missing) and return it (HINCRBY).

        :raises TypeError: ``field`` is not a ``str`` or ``amount`` not an ``int``.
        :raises ValueError: the field does not hold a 64-bit integer
            (``hash value is not an integer``) or the result would not be one
            (``increment or decrement would overflow``), in Redis's words.
        """
        field = checked_text(field, "field")
        if type(amount) is not int:
            raise TypeError(f"amount must be int, not {type(amount).__name__}")
        store = self._keyspace._store
        with store._lock:
            current = self._current()
            old = None if current is None else current.get(field)
            number = 0 if old is None else hashes.as_int(old)
            if number is None:
                raise ValueError("hash value is not an integer")
            number += amount
            if not _LLONG_MIN <= number <= _LLONG_MAX:
                raise ValueError("increment or decrement would overflow")
            ticket = self._edit(hashes.OP_SET, (field, str(number)))
        store._commit(ticket)
        return number

    def incr_float(self, field: str, amount: float = 1.0) -> str:
        """Add ``amount`` to the number in ``field`` (0 if missing) (HINCRBYFLOAT).

        Returns the text written (Redis's reply): the shortest decimal that
        reads back as the sum, without an exponent.

        :raises TypeError: ``field`` is not a ``str`` or ``amount`` not a number.
        :raises ValueError: ``amount`` is NaN or infinite (``value is NaN or
            Infinity``), the field does not hold a float (``hash value is not a
            float``) or the sum is not finite (``increment would produce NaN or
            Infinity``), in Redis's words.
        """
        field = checked_text(field, "field")
        if type(amount) not in (int, float):
            raise TypeError(f"amount must be float, not {type(amount).__name__}")
        if not math.isfinite(amount):
            raise ValueError("value is NaN or Infinity")
        store = self._keyspace._store
        with store._lock:
            current = self._current()
            old = None if current is None else current.get(field)
            number = 0.0 if old is None else hashes.as_float(old)
            if number is None:
                raise ValueError("hash value is not a float")
            total = number + amount
            if not math.isfinite(total):
                raise ValueError("increment would produce NaN or Infinity")
            text = hashes.human_float(total)
            ticket = self._edit(hashes.OP_SET, (field, text))
        store._commit(ticket)
        return text
