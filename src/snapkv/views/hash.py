"""The view of a hash: ``store.hashes[key]``, a ``MutableMapping`` of field -> value."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, ClassVar

from snapkv.values import ValueType, hashes
from snapkv.views.base import View, checked_text

__all__ = ["HashView"]

_MISSING: Any = object()


class HashView(View, MutableMapping[str, str]):
    """A hash at a key: fields and values are ``str``; each method is one atomic step."""

    __slots__ = ()
    KIND: ClassVar[ValueType] = hashes

    def __getitem__(self, field: str) -> str:
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

    def __setitem__(self, field: str, value: str) -> None:
        """HSET of one field."""
        self.update({field: value})

    def update(self, other: Any = (), /, **kwargs: str) -> None:
        """Set several fields in one step and one journal record (HSET with pairs)."""
        pairs: list[str] = []
        for field, value in dict(other, **kwargs).items():
            pairs += (checked_text(field, "field"), checked_text(value, "value"))
        if not pairs:
            return
        store = self._keyspace._store
        with store._lock:
            self._current()
            ticket = self._edit(hashes.OP_SET, pairs)
        store._commit(ticket)

    def __delitem__(self, field: str) -> None:
        """HDEL of one field; ``KeyError`` if it is missing."""
        store = self._keyspace._store
        with store._lock:
            value = self._current()
            if value is None or field not in value:
                raise KeyError(field)
            ticket = self._edit(hashes.OP_DEL, (field,))
        store._commit(ticket)

    def __iter__(self) -> Iterator[str]:
        """The fields of a point-in-time copy."""
        with self._keyspace._store._lock:
            value = self._current()
            return iter(list(value) if value is not None else [])

    def __len__(self) -> int:
        return View.__len__(self)

    def __contains__(self, field: object) -> bool:
        with self._keyspace._store._lock:
            value = self._current()
            return value is not None and field in value
