"""What every view shares: a key of a keyspace, read and written under the Store's lock.

A view (``store.hashes["k"]``, ``store.lists["k"]``, ...) holds no data:
it names a key, and every method is one atomic step on whatever the key
holds at that moment, as redis-py's calls are. Reads take the Store's lock
(a container is mutable, unlike a string, so a lock-free read could see it
half changed); writes check the arguments and the key's type first, then
journal their effect and apply it through ``Keyspace._write`` (one record
per call, so a bulk call is all or nothing after a crash).

A missing key reads as an empty container; writing to it creates it;
removing its last element removes the key, as in Redis. A key that holds
another type raises :class:`~snapkv.errors.WrongTypeError` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from snapkv.values import Item, ValueType

if TYPE_CHECKING:
    from snapkv.keyspace import Keyspace

__all__ = ["View", "Views", "checked_text"]

V = TypeVar("V", bound="View")


def checked_text(value: object, what: str) -> str:
    """``value`` as a plain ``str``; ``TypeError`` naming ``what`` for anything else."""
    if type(value) is str:
        return value
    if not issubclass(type(value), str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    return str.__str__(value)


class View:
    """A key of a keyspace, seen as one value type (``KIND``)."""

    __slots__ = ("_key", "_keyspace")
    KIND: ClassVar[ValueType]

    def __init__(self, keyspace: Keyspace, key: str) -> None:
        self._keyspace = keyspace
        self._key = key if type(key) is str else checked_text(key, "key")

    @property
    def key(self) -> str:
        """The key this view reads and writes."""
        return self._key

    def _current(self) -> Any:
        """The container now (``None``: missing); caller holds the Store's lock."""
        return self._keyspace._lookup(self._key, self.KIND)

    def _edit(self, opcode: int, items: Iterable[Item]) -> tuple[Any, int] | None:
        """Journal and apply one effect on this key; caller holds the lock and checked it."""
        return self._keyspace._edit(self._key, self.KIND, opcode, tuple(items))

    def clear(self) -> None:
        """Remove every element: the key is deleted (one DEL record); a missing key stays so.

        :raises WrongTypeError: the key holds another type.
        """
        keyspace = self._keyspace
        store = keyspace._store
        with store._lock:
            if self._current() is None:
                return
            ticket = keyspace._write([("del", keyspace._index, self._key)])
        store._commit(ticket)

    def exists(self) -> bool:
        """Whether the key holds this type now (an empty container does not exist)."""
        with self._keyspace._store._lock:
            return self._current() is not None

    def __len__(self) -> int:
        with self._keyspace._store._lock:
            value = self._current()
            return 0 if value is None else self.KIND.size(value)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._key!r} of keyspace {self._keyspace.index}>"


class Views(Generic[V]):
    """``store.hashes`` and friends: ``views[key]`` is the view of that key."""

    __slots__ = ("_cls", "_keyspace")

    def __init__(self, keyspace: Keyspace, cls: type[V]) -> None:
        self._keyspace = keyspace
        self._cls = cls

    def __getitem__(self, key: str) -> V:
        return self._cls(self._keyspace, key)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` holds this type now."""
        return isinstance(key, str) and self._keyspace.key_type(key) == self._cls.KIND.NAME
